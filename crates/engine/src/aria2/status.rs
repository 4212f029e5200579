//! aria2's `tellStatus` answer → [`DownloadStatus`], and its error codes → [`ErrorKind`].

use std::path::PathBuf;
use std::time::Duration;

use aria2_ws::Map;
use serde_json::Value;

use crate::download::{DownloadId, DownloadState, DownloadStatus, DownloadedFile};
use crate::{Error, ErrorKind};

/// A `tellStatus` answer, read leniently: a missing or odd field gives its default rather
/// than failing the whole poll.
pub(crate) struct Raw<'a>(pub(crate) &'a Map<String, Value>);

impl Raw<'_> {
    fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn num(&self, key: &str) -> u64 {
        number(self.0.get(key))
    }

    pub(crate) fn status(&self) -> &str {
        self.str("status").unwrap_or("")
    }

    /// The first GID in `followedBy`.
    pub(crate) fn followed_by(&self) -> Option<String> {
        self.0.get("followedBy")?.as_array()?.first()?.as_str().map(str::to_string)
    }

    /// The download's status; `followed_by` is turned into an id by the caller.
    pub(crate) fn to_status(&self, followed_by: Option<DownloadId>) -> DownloadStatus {
        let state = match self.status() {
            "active" => DownloadState::Active,
            "waiting" => DownloadState::Waiting,
            "paused" => DownloadState::Paused,
            "complete" => DownloadState::Complete,
            // `removed` only happens behind our back (we forget what we cancel).
            _ => DownloadState::Failed,
        };
        let files: Vec<DownloadedFile> = self
            .0
            .get("files")
            .and_then(Value::as_array)
            .map(|files| files.iter().filter_map(file).collect())
            .unwrap_or_default();
        let torrent_name = self
            .0
            .get("bittorrent")
            .and_then(|b| b.get("info"))
            .and_then(|i| i.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let name = torrent_name.or_else(|| {
            files
                .iter()
                .find(|f| !f.path.as_os_str().is_empty())
                .and_then(|f| f.path.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| !n.starts_with("[METADATA]"))
        });
        let mut status = DownloadStatus::new(state);
        status.name = name;
        status.done = self.num("completedLength");
        status.total = self.num("totalLength");
        status.speed = self.num("downloadSpeed");
        status.files = files;
        status.followed_by = followed_by;
        if state == DownloadState::Failed {
            status.error = Some(match self.status() {
                "removed" => {
                    ErrorKind::Download { code: 0, message: "the download was removed from aria2".into() }
                        .into()
                }
                _ => error_for(self.str("errorCode").unwrap_or("1"), self.str("errorMessage").unwrap_or("")),
            });
        }
        status
    }
}

fn number(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn file(v: &Value) -> Option<DownloadedFile> {
    let path = v.get("path")?.as_str()?;
    Some(DownloadedFile {
        path: PathBuf::from(path),
        size: number(v.get("length")),
        done: number(v.get("completedLength")),
        selected: v.get("selected").and_then(Value::as_str) != Some("false"),
    })
}

/// aria2's error code and message as the engine's error.
///
/// The codes are aria2's exit statuses (aria2c(1), "EXIT STATUS").
pub(crate) fn error_for(code: &str, message: &str) -> Error {
    let message = redact(message);
    let text = if message.is_empty() { format!("aria2 error {code}") } else { message.clone() };
    let kind = match code {
        "3" => ErrorKind::NotFound { what: text },
        "24" => ErrorKind::AuthFailed { what: text },
        "9" => ErrorKind::DiskFull { what: text },
        "25" | "26" | "27" => ErrorKind::BadTorrent { reason: text },
        "6" | "19" => ErrorKind::Network { reason: text },
        // aria2 does not say how long it waited; its `--timeout` defaults to 60 s.
        "2" => ErrorKind::Timeout { what: text, after: Duration::from_secs(60) },
        "5" => ErrorKind::Network {
            reason: format!("the source was too slow (below the lowest speed limit): {text}"),
        },
        "13" => ErrorKind::Download {
            code: 13,
            message: format!("the file already exists and aria2 will not overwrite it: {text}"),
        },
        _ => ErrorKind::Download { code: code.parse().unwrap_or(1), message: text },
    };
    kind.into()
}

/// `text` with the credentials of any URL in it (`scheme://user:pass@`) replaced.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end =
            tail.find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'').unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_become_kinds() {
        assert!(matches!(error_for("3", "404 Not Found").kind(), ErrorKind::NotFound { .. }));
        assert!(matches!(error_for("24", "").kind(), ErrorKind::AuthFailed { .. }));
        assert!(matches!(error_for("9", "").kind(), ErrorKind::DiskFull { .. }));
        assert!(matches!(error_for("26", "").kind(), ErrorKind::BadTorrent { .. }));
        assert!(matches!(error_for("19", "").kind(), ErrorKind::Network { .. }));
        assert!(matches!(error_for("2", "").kind(), ErrorKind::Timeout { .. }));
        let e = error_for("22", "Unexpected status 500");
        assert!(matches!(e.kind(), ErrorKind::Download { code: 22, .. }), "{e:?}");
        assert!(e.to_string().contains("500"), "{e}");
        assert!(matches!(error_for("x", "").kind(), ErrorKind::Download { code: 1, .. }));
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact("GET http://u:p@h/a failed"), "GET http://***@h/a failed");
        assert_eq!(redact("ftp://h/a and http://x@y/"), "ftp://h/a and http://***@y/");
        assert_eq!(redact("no url"), "no url");
    }

    #[test]
    fn status_is_read_leniently() {
        let raw: Map<String, Value> = serde_json::from_str(
            r#"{"gid":"a","status":"complete","totalLength":"10","completedLength":"10","downloadSpeed":"0",
                "files":[{"index":"1","path":"/d/x.bin","length":"10","completedLength":"10","selected":"true"}]}"#,
        )
        .unwrap();
        let s = Raw(&raw).to_status(None);
        assert_eq!(s.state, DownloadState::Complete);
        assert_eq!((s.done, s.total), (10, 10));
        assert_eq!(s.name.as_deref(), Some("x.bin"));
        let raw: Map<String, Value> = serde_json::from_str(
            r#"{"status":"error","errorCode":"3","errorMessage":"Resource not found","files":[],
                "bittorrent":{"info":{"name":"t"}},"followedBy":["b"]}"#,
        )
        .unwrap();
        let s = Raw(&raw).to_status(None);
        assert_eq!(s.state, DownloadState::Failed);
        assert_eq!(s.name.as_deref(), Some("t"));
        assert!(matches!(s.error.unwrap().kind(), ErrorKind::NotFound { .. }));
        assert_eq!(Raw(&raw).followed_by().as_deref(), Some("b"));
    }
}
