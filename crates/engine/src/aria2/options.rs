//! A [`DownloadRequest`] as aria2's per-download options.

use aria2_ws::TaskOptions;
use serde_json::Value;

use super::status;
use crate::download::{DownloadRequest, DownloadSource};
use crate::{Error, ErrorKind, Result};

/// aria2's options for `request`, added as `gid`.
pub(crate) fn task_options(request: &DownloadRequest, gid: &str) -> Result<TaskOptions> {
    let dir = std::path::absolute(&request.dir).map_err(|e| Error::io(request.dir.display(), &e))?;
    let mut options = TaskOptions {
        dir: Some(dir.to_string_lossy().into_owned()),
        gid: Some(gid.to_string()),
        r#continue: Some(true),
        ..TaskOptions::default()
    };
    match &request.source {
        DownloadSource::Url(url) => {
            if url.url.trim().is_empty() {
                return Err(invalid(&url.url, "an HTTP(S) or FTP URL"));
            }
            if !url.headers.is_empty() {
                options.header = Some(url.headers.clone());
            }
            if let Some((user, password)) = &url.basic_auth {
                let (u, p) = if url.url.starts_with("ftp") {
                    ("ftp-user", "ftp-passwd")
                } else {
                    ("http-user", "http-passwd")
                };
                options.extra_options.insert(u.into(), Value::String(user.clone()));
                options.extra_options.insert(p.into(), Value::String(password.clone()));
            }
            if let Some(name) = &request.name {
                if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
                    return Err(invalid(
                        name,
                        "a file name without '/', '\\' or NUL, other than '.' and '..'",
                    ));
                }
                options.out = Some(name.clone());
            }
        }
        DownloadSource::Magnet(magnet) => {
            if !magnet.starts_with("magnet:?") {
                return Err(invalid(magnet, "a magnet link (magnet:?xt=urn:btih:…)"));
            }
        }
        DownloadSource::Torrent(bytes) => {
            if bytes.first() != Some(&b'd') {
                return Err(ErrorKind::BadTorrent {
                    reason: format!("{} bytes that are not a bencoded .torrent", bytes.len()),
                }
                .into());
            }
        }
    }
    if let Some(select) = &request.select {
        if select.is_empty() || select.contains(&0) {
            return Err(invalid(&format!("{select:?}"), "1-based file indexes, at least one"));
        }
        let list: Vec<String> = select.iter().map(u32::to_string).collect();
        options.extra_options.insert("select-file".into(), Value::String(list.join(",")));
    }
    Ok(options)
}

fn invalid(input: &str, expected: &str) -> Error {
    ErrorKind::InvalidSource { input: status::redact(input), expected: expected.into() }.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UrlSource;

    #[test]
    fn options_for_a_url() {
        let source = DownloadSource::Url(UrlSource::new("http://h/a").header("X-A: 1").basic_auth("u", "p"));
        let o = task_options(
            &DownloadRequest::new(source, "/d/1").name("a.bin").select(vec![1, 3]),
            "0123456789abcdef",
        )
        .unwrap();
        assert_eq!(o.dir.as_deref(), Some("/d/1"));
        assert_eq!(o.out.as_deref(), Some("a.bin"));
        assert_eq!(o.header, Some(vec!["X-A: 1".to_string()]));
        assert_eq!(o.extra_options["http-user"], "u");
        assert_eq!(o.extra_options["select-file"], "1,3");
        assert_eq!(o.r#continue, Some(true));
    }

    #[test]
    fn bad_input_is_refused() {
        let url = || DownloadSource::Url(UrlSource::new("http://h/a"));
        for name in ["../x", "..", "a/b", ""] {
            let e =
                task_options(&DownloadRequest::new(url(), "/d").name(name), "0123456789abcdef").unwrap_err();
            assert!(matches!(e.kind(), ErrorKind::InvalidSource { .. }), "{name}: {e}");
        }
        let e = task_options(
            &DownloadRequest::new(DownloadSource::Magnet("http://x".into()), "/d"),
            "0123456789abcdef",
        )
        .unwrap_err();
        assert!(e.to_string().contains("magnet"), "{e}");
        let e = task_options(
            &DownloadRequest::new(DownloadSource::Torrent(b"xx".to_vec()), "/d"),
            "0123456789abcdef",
        )
        .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::BadTorrent { .. }), "{e}");
        let e =
            task_options(&DownloadRequest::new(url(), "/d").select(vec![0]), "0123456789abcdef").unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidSource { .. }), "{e}");
    }
}
