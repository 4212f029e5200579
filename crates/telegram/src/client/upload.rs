//! Multipart bodies whose file parts count the bytes read, to report upload progress.

use std::path::PathBuf;

use bytes::Bytes;
use reqwest::multipart::{Form, Part};

use super::ProgressFn;
use crate::scheduler::{AbortFlag, BlockHook, SendDocumentSlice};
use crate::{Error, Result};

/// The block size of streamed uploads.
const CHUNK: usize = 256 * 1024;
/// Blocks read ahead of the connection, per upload.
const AHEAD: usize = 4;

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
        let file = std::fs::File::open(&path).map_err(file_err)?;
        let total = file.metadata().map_err(file_err)?.len();
        let file_name =
            path.file_name().map_or_else(|| "file".to_string(), |n| n.to_string_lossy().into_owned());
        let report =
            UploadProgress { field: field.to_string(), file_name: file_name.clone(), sent: 0, total };
        let progress = progress.clone();
        let stream = chunks(file, 0, total, None, None, move |sent| {
            if let Some(p) = &progress {
                p(&UploadProgress { sent, ..report.clone() });
            }
        });
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), total).file_name(file_name);
        form = form.part(field.to_string(), part);
    }
    Ok(form)
}

/// The multipart form of a `sendDocument` (or `sendVideo`) of a file slice: the fields,
/// then the slice's bytes streamed from disk by [`chunks`], reporting progress to `hook`.
pub(super) async fn slice_form(request: &SendDocumentSlice) -> Result<Form> {
    let slice = &request.slice;
    let path = slice.path.display().to_string();
    let file_err = |e: std::io::Error| Error::File { path: path.clone(), reason: e.to_string() };
    let file = std::fs::File::open(&slice.path).map_err(file_err)?;
    let size = file.metadata().map_err(file_err)?.len();
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
    let chat_id = match &request.chat_id {
        frankenstein::types::ChatId::Integer(i) => i.to_string(),
        frankenstein::types::ChatId::String(s) => s.clone(),
    };
    let mut form = Form::new().text("chat_id", chat_id);
    if request.as_video {
        form = form.text("supports_streaming", "true");
    }
    if let Some(caption) = &request.caption {
        form = form.text("caption", caption.clone());
    }
    if let Some(mode) = request.parse_mode {
        let mode =
            serde_json::to_value(mode).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        form = form.text("parse_mode", mode);
    }
    let hook = request.progress.clone();
    let total = slice.len;
    let stream =
        chunks(file, slice.offset, total, request.abort.clone(), request.observe.clone(), move |sent| {
            if let Some(h) = &hook {
                (h.0)(sent, total);
            }
        });
    let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), total)
        .file_name(slice.file_name.clone());
    Ok(form.part(request.field(), part))
}

/// Bytes `offset .. offset + len` of `file` as a body stream: one blocking thread reads
/// the whole range in [`CHUNK`] blocks ahead of the connection (at most [`AHEAD`] blocks
/// buffered), so the async side pays one channel receive per block rather than a
/// blocking-pool round trip per read. `observe` sees each block as it is read; `sent` is told the running total as each block is
/// handed to the connection; a set `abort` fails the stream at the next block.
fn chunks(
    file: std::fs::File,
    offset: u64,
    len: u64,
    abort: Option<AbortFlag>,
    observe: Option<BlockHook>,
    sent: impl Fn(u64) + Send + Sync + 'static,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(AHEAD);
    let reader_abort = abort.clone();
    tokio::task::spawn_blocking(move || {
        read_ahead(file, offset, len, reader_abort.as_ref(), observe.as_ref(), &tx);
    });
    futures_util::stream::unfold((rx, 0_u64, sent), move |(mut rx, done, sent)| {
        let aborted = abort.as_ref().is_some_and(AbortFlag::is_set);
        async move {
            if aborted {
                let e = std::io::Error::new(std::io::ErrorKind::Interrupted, "upload aborted");
                return Some((Err(e), (rx, done, sent)));
            }
            match rx.recv().await? {
                Ok(block) => {
                    let done = done + block.len() as u64;
                    sent(done);
                    Some((Ok(block), (rx, done, sent)))
                }
                Err(e) => Some((Err(e), (rx, done, sent))),
            }
        }
    })
}

/// The reading side of [`chunks`]: stops at the end of the range, at the first error (sent
/// on), when the stream is dropped, or when `abort` is set.
fn read_ahead(
    mut file: std::fs::File,
    offset: u64,
    len: u64,
    abort: Option<&AbortFlag>,
    observe: Option<&BlockHook>,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    use std::io::{Read, Seek};
    if let Err(e) = file.seek(std::io::SeekFrom::Start(offset)) {
        let _ = tx.blocking_send(Err(e));
        return;
    }
    let mut left = len;
    while left > 0 && !abort.is_some_and(AbortFlag::is_set) {
        let want = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        let mut block = vec![0u8; want];
        let result = match file.read(&mut block) {
            Ok(0) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the file ended {left} bytes before the end of the upload"),
            )),
            Ok(n) => {
                block.truncate(n);
                if let Some(hook) = observe {
                    (hook.0)(len - left, &block);
                }
                left -= n as u64;
                Ok(Bytes::from(block))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let failed = result.is_err();
        if tx.blocking_send(result).is_err() || failed {
            return;
        }
    }
}
