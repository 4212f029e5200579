//! Multipart bodies whose file parts count the bytes read, to report upload progress.

use std::path::PathBuf;

use bytes::Bytes;
use reqwest::multipart::{Form, Part};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::ProgressFn;
use crate::scheduler::SendDocumentSlice;
use crate::{Error, Result};

const CHUNK: usize = 64 * 1024;

/// Progress of one file part of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadProgress {
    /// The form field, e.g. `document`.
    pub field: String,
    /// The file's name.
    pub file_name: String,
    /// Bytes handed to the connection so far.
    pub sent: u64,
    /// The file's size.
    pub total: u64,
}

pub(super) async fn form(
    value: serde_json::Value,
    files: Vec<(&str, PathBuf)>,
    progress: Option<ProgressFn>,
) -> Result<Form> {
    let mut form = Form::new();
    if let serde_json::Value::Object(map) = value {
        for (key, val) in map {
            if files.iter().any(|(f, _)| *f == key) {
                continue;
            }
            form = match val {
                serde_json::Value::String(s) => form.text(key, s),
                other => form.text(key, other.to_string()),
            };
        }
    }
    for (field, path) in files {
        let file_err =
            |e: std::io::Error| Error::File { path: path.display().to_string(), reason: e.to_string() };
        let file = tokio::fs::File::open(&path).await.map_err(file_err)?;
        let total = file.metadata().await.map_err(file_err)?.len();
        let file_name =
            path.file_name().map_or_else(|| "file".to_string(), |n| n.to_string_lossy().into_owned());
        let report =
            UploadProgress { field: field.to_string(), file_name: file_name.clone(), sent: 0, total };
        let stream = counting(file, report, progress.clone());
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), total).file_name(file_name);
        form = form.part(field.to_string(), part);
    }
    Ok(form)
}

/// The multipart form of a `sendDocument` of a file slice: the fields, then the slice's
/// bytes streamed from disk in 64 KiB reads, reporting progress to `hook`.
pub(super) async fn slice_form(request: &SendDocumentSlice) -> Result<Form> {
    let slice = &request.slice;
    let path = slice.path.display().to_string();
    let file_err = |e: std::io::Error| Error::File { path: path.clone(), reason: e.to_string() };
    let mut file = tokio::fs::File::open(&slice.path).await.map_err(file_err)?;
    let size = file.metadata().await.map_err(file_err)?.len();
    if slice.offset.checked_add(slice.len).is_none_or(|end| end > size) {
        return Err(Error::File {
            path,
            reason: format!(
                "bytes {}..{} are past the end of the file ({size} bytes)",
                slice.offset,
                slice.offset.saturating_add(slice.len)
            ),
        });
    }
    file.seek(std::io::SeekFrom::Start(slice.offset)).await.map_err(file_err)?;
    let chat_id = match &request.chat_id {
        frankenstein::types::ChatId::Integer(i) => i.to_string(),
        frankenstein::types::ChatId::String(s) => s.clone(),
    };
    let mut form = Form::new().text("chat_id", chat_id);
    if let Some(caption) = &request.caption {
        form = form.text("caption", caption.clone());
    }
    if let Some(mode) = request.parse_mode {
        let mode =
            serde_json::to_value(mode).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        form = form.text("parse_mode", mode);
    }
    let hook = request.progress.clone();
    let abort = request.abort.clone();
    let total = slice.len;
    let stream = futures_util::stream::unfold((file.take(total), 0_u64), move |(mut reader, sent)| {
        let hook = hook.clone();
        let abort = abort.clone();
        async move {
            if abort.as_ref().is_some_and(super::super::scheduler::AbortFlag::is_set) {
                let e = std::io::Error::new(std::io::ErrorKind::Interrupted, "upload aborted");
                return Some((Err(e), (reader, sent)));
            }
            let mut buf = vec![0u8; CHUNK];
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    let sent = sent + n as u64;
                    if let Some(h) = &hook {
                        (h.0)(sent, total);
                    }
                    Some((Ok::<_, std::io::Error>(Bytes::from(buf)), (reader, sent)))
                }
                Err(e) => Some((Err(e), (reader, sent))),
            }
        }
    });
    let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), total)
        .file_name(slice.file_name.clone());
    Ok(form.part("document", part))
}

fn counting(
    file: tokio::fs::File,
    report: UploadProgress,
    progress: Option<ProgressFn>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(
        (file, report, progress, false),
        |(mut file, mut report, progress, done)| async move {
            if done {
                return None;
            }
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    report.sent += n as u64;
                    if let Some(p) = &progress {
                        p(&report);
                    }
                    Some((Ok(Bytes::from(buf)), (file, report, progress, false)))
                }
                Err(e) => Some((Err(e), (file, report, progress, true))),
            }
        },
    )
}
