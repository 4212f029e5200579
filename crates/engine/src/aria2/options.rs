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
            // Else aria2 writes `<info hash>.torrent` into the task's directory when it
            // saves its session, and the upload would send it. The downloader adds the
            // torrent again from its bytes when aria2 loses it.
            options.extra_options.insert("rpc-save-upload-metadata".into(), Value::String("false".into()));
        }
    }
    if let Some(select) = &request.select {
        for (key, value) in selection(select)? {
            options.extra_options.insert(key.into(), Value::String(value));
        }
    } else if request.choose {
        // A torrent's bytes are parsed at once: the download is added paused. A magnet
        // or a link to a .torrent first downloads its metadata; the torrent download
        // that follows is paused.
        let key =
            if matches!(request.source, DownloadSource::Torrent(_)) { "pause" } else { "pause-metadata" };
        options.extra_options.insert(key.into(), Value::String("true".into()));
    }
    Ok(options)
}

/// aria2's options that download only `files` (1-based) of a torrent: `select-file`,
/// and the unselected files' pieces that aria2 writes at the boundaries removed at the
/// end.
pub(crate) fn selection(files: &[u32]) -> Result<[(&'static str, String); 2]> {
    if files.is_empty() || files.contains(&0) {
        return Err(invalid(&format!("{files:?}"), "1-based file indexes, at least one"));
    }
    let list: Vec<String> = files.iter().map(u32::to_string).collect();
    Ok([("select-file", list.join(",")), ("bt-remove-unselected-file", "true".into())])
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
        assert_eq!(o.extra_options["bt-remove-unselected-file"], "true");
        assert_eq!(o.r#continue, Some(true));
    }

    #[test]
    fn a_choice_pauses_once_the_file_list_is_known() {
        let gid = "0123456789abcdef";
        let torrent = DownloadRequest::new(DownloadSource::Torrent(b"d4:infod".to_vec()), "/d").choose();
        let o = task_options(&torrent, gid).unwrap();
        assert_eq!(
            (o.extra_options.get("pause"), o.extra_options.get("pause-metadata")),
            (Some(&"true".into()), None)
        );
        assert_eq!(o.extra_options["rpc-save-upload-metadata"], "false", "no .torrent among the files");
        let magnet =
            DownloadRequest::new(DownloadSource::Magnet("magnet:?xt=urn:btih:00".into()), "/d").choose();
        let o = task_options(&magnet, gid).unwrap();
        assert_eq!(
            (o.extra_options.get("pause"), o.extra_options.get("pause-metadata")),
            (None, Some(&"true".into()))
        );
        // Once chosen, the files are selected and nothing pauses.
        let o = task_options(&magnet.select(vec![2]), gid).unwrap();
        assert_eq!(o.extra_options.get("pause-metadata"), None);
        assert_eq!(o.extra_options["select-file"], "2");
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
