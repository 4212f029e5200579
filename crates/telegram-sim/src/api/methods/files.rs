//! Files: uploads, `file_id` reuse, local paths, documents/videos/photos, albums, `getFile`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{
    MAX_CAPTION, admit, caption_param, chat_id, check_reply, inline_markup, markup_param, new_bot_message,
    outbound, reply_to, visible_len,
};
use crate::api::error::ApiError;
use crate::api::params::{Params, Upload, hex};
use crate::state::{Shared, State, StoredFile, StoredMessage};
use crate::types::FileRecord;

// files

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Document,
    Video,
    Photo,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Self::Document => "document",
            Self::Video => "video",
            Self::Photo => "photo",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Self::Document => "sendDocument",
            Self::Video => "sendVideo",
            Self::Photo => "sendPhoto",
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Self::Document => "documents",
            Self::Video => "videos",
            Self::Photo => "photos",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Self::Document => "BQACAgSim",
            Self::Video => "BAACAgSim",
            Self::Photo => "AgACAgSim",
        }
    }
}

/// Where the bytes of a file input come from.
#[derive(Debug)]
pub(crate) enum Source {
    Existing(StoredFile),
    Upload(Upload),
    LocalPath { path: PathBuf, size: u64, sha256: String },
}

fn wrong_file_id() -> ApiError {
    ApiError::bad_request("wrong file identifier/HTTP URL specified")
}

async fn resolve(shared: &Shared, p: &mut Params, field: &str) -> Result<Source, ApiError> {
    if let Some(upload) = p.uploads.remove(field) {
        return Ok(Source::Upload(upload));
    }
    let Some(value) = p.str(field).filter(|v| !v.is_empty()) else {
        return Err(ApiError::bad_request(format!("there is no {field} in the request")));
    };
    resolve_str(shared, p, &value).await
}

async fn resolve_str(shared: &Shared, p: &mut Params, value: &str) -> Result<Source, ApiError> {
    if let Some(name) = value.strip_prefix("attach://") {
        return p.uploads.remove(name).map(Source::Upload).ok_or_else(wrong_file_id);
    }
    if let Some(path) = value.strip_prefix("file://") {
        if !shared.mode.is_local() {
            return Err(ApiError::bad_request("invalid file HTTP URL specified: Unsupported URL protocol"));
        }
        return local_file(Path::new(path), shared.mode.upload_limit()).await;
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        return Err(ApiError::bad_request("failed to get HTTP URL content"));
    }
    shared.lock().files.get(value).cloned().map(Source::Existing).ok_or_else(wrong_file_id)
}

async fn local_file(path: &Path, limit: u64) -> Result<Source, ApiError> {
    let not_found =
        || ApiError::bad_request("file not found: local mode takes an absolute path to an existing file");
    if !path.is_absolute() {
        return Err(not_found());
    }
    let mut file = tokio::fs::File::open(path).await.map_err(|_| not_found())?;
    let meta = file.metadata().await.map_err(|_| not_found())?;
    if !meta.is_file() {
        return Err(not_found());
    }
    if meta.len() > limit {
        return Err(ApiError::too_large());
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 256 * 1024];
    let mut size = 0_u64;
    loop {
        let n = file.read(&mut buf).await.map_err(|_| not_found())?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(Source::LocalPath { path: path.to_owned(), size, sha256: hex(&hasher.finalize()) })
}

pub(crate) fn guess_mime(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "mp4" => "video/mp4",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "txt" => "text/plain",
        "zip" => "application/zip",
        "pdf" => "application/pdf",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Stores a new file (or returns the existing one) and registers its `file_id`.
pub(crate) fn register(
    shared: &Shared,
    st: &mut State,
    kind: Kind,
    source: Source,
) -> Result<StoredFile, ApiError> {
    let (name, mime, size, sha256, disk_path) = match source {
        Source::Existing(file) => return Ok(file),
        Source::Upload(up) => {
            let n = st.next_file;
            let name = up.file_name.clone().unwrap_or_else(|| format!("file_{n}"));
            let ext = name.rsplit_once('.').map(|(_, e)| format!(".{e}")).unwrap_or_default();
            let dir = shared.files_dir.join(kind.dir());
            let io = |e: std::io::Error| ApiError::new(500, format!("Internal Server Error: {e}"));
            std::fs::create_dir_all(&dir).map_err(io)?;
            let disk = dir.join(format!("file_{n}{ext}"));
            up.tmp.persist(&disk).map_err(|e| io(e.error))?;
            let mime = up
                .mime
                .filter(|m| m != "application/octet-stream")
                .unwrap_or_else(|| guess_mime(&name).to_owned());
            (name, mime, up.size, up.sha256, disk)
        }
        Source::LocalPath { path, size, sha256 } => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mime = guess_mime(&name).to_owned();
            (name, mime, size, sha256, path)
        }
    };
    Ok(store_file(shared, st, kind, name, Some(mime), size, sha256, disk_path))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn store_file(
    shared: &Shared,
    st: &mut State,
    kind: Kind,
    name: String,
    mime: Option<String>,
    size: u64,
    sha256: String,
    disk_path: PathBuf,
) -> StoredFile {
    let n = st.next_file;
    st.next_file += 1;
    let file_id = format!("{}{n}_{}", kind.id_prefix(), &sha256[..12]);
    let file_path = if shared.mode.is_local() {
        disk_path.to_string_lossy().into_owned()
    } else {
        let rel = disk_path.strip_prefix(&shared.files_dir).map(|r| r.to_string_lossy().replace('\\', "/"));
        rel.unwrap_or_else(|_| format!("{}/file_{n}", kind.dir()))
    };
    let file = StoredFile {
        record: FileRecord { name, size, sha256: sha256.clone(), mime, file_id: file_id.clone() },
        unique_id: format!("AgADSim{}", &sha256[..16]),
        disk_path,
        file_path: file_path.clone(),
    };
    st.files.insert(file_id.clone(), file.clone());
    st.file_paths.insert(file_path, file_id);
    file
}

/// The JSON object of a file of `kind` inside a Message.
pub(crate) fn file_json(kind: Kind, file: &StoredFile, p: Option<&Params>) -> Value {
    let dim = |key: &str| p.and_then(|p| p.i64(key).ok().flatten()).unwrap_or(0);
    let r = &file.record;
    match kind {
        Kind::Document => json!({
            "file_id": r.file_id, "file_unique_id": file.unique_id, "file_name": r.name,
            "mime_type": r.mime, "file_size": r.size,
        }),
        Kind::Video => json!({
            "file_id": r.file_id, "file_unique_id": file.unique_id, "file_name": r.name,
            "mime_type": r.mime, "file_size": r.size,
            "width": dim("width"), "height": dim("height"), "duration": dim("duration"),
        }),
        Kind::Photo => json!([{
            "file_id": r.file_id, "file_unique_id": file.unique_id, "file_size": r.size,
            "width": 0, "height": 0,
        }]),
    }
}

pub(super) async fn send_file(shared: &Arc<Shared>, mut p: Params, kind: Kind) -> Result<Value, ApiError> {
    let chat = chat_id(&p)?;
    let caption = caption_param(&p)?;
    let markup = markup_param(&p)?;
    let reply = reply_to(&p)?;
    let source = resolve(shared, &mut p, kind.field()).await?;
    let json = {
        let mut st = shared.lock();
        check_reply(&st, &p, chat, reply)?;
        admit(&mut st, chat)?;
        let file = register(shared, &mut st, kind, source)?;
        let (message_id, json) = new_bot_message(shared, &mut st, chat, reply, |m| {
            m.insert(kind.field().into(), file_json(kind, &file, Some(&p)));
            if let Some(c) = &caption {
                m.insert("caption".into(), json!(c));
            }
            if let Some(k) = inline_markup(&markup) {
                m.insert("reply_markup".into(), k);
            }
        });
        st.messages.insert(
            (chat, message_id),
            StoredMessage {
                json: json.clone(),
                from_bot: true,
                text: None,
                caption: caption.clone(),
                reply_markup: markup.clone(),
                edit_count: 0,
                deleted: false,
                file: Some(file.record.clone()),
            },
        );
        let mut entry = outbound(kind.method(), chat, Some(message_id));
        entry.caption = caption;
        entry.reply_markup = markup;
        entry.file = Some(file.record);
        st.log(entry);
        json
    };
    shared.sent_notify.notify_waiters();
    Ok(json)
}

pub(super) async fn send_media_group(shared: &Arc<Shared>, mut p: Params) -> Result<Value, ApiError> {
    let chat = chat_id(&p)?;
    let media = match p.json("media", "media")? {
        Some(Value::Array(items)) => items,
        _ => return Err(ApiError::bad_request("can't parse media JSON object")),
    };
    if !(2..=10).contains(&media.len()) {
        return Err(ApiError::bad_request("wrong number of media in the album: must include 2-10 items"));
    }
    let mut items = Vec::with_capacity(media.len());
    for item in &media {
        let kind = match item.get("type").and_then(Value::as_str) {
            Some("document") => Kind::Document,
            Some("video") => Kind::Video,
            Some("photo") => Kind::Photo,
            _ => {
                return Err(ApiError::bad_request(
                    "unsupported media type: the simulator takes photo, video, document",
                ));
            }
        };
        let caption =
            item.get("caption").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned);
        let mode = item.get("parse_mode").and_then(Value::as_str);
        if caption.as_deref().is_some_and(|c| visible_len(c, mode) > MAX_CAPTION) {
            return Err(ApiError::bad_request("message caption is too long"));
        }
        let reference = item.get("media").and_then(Value::as_str).unwrap_or_default().to_owned();
        if reference.is_empty() {
            return Err(wrong_file_id());
        }
        let source = resolve_str(shared, &mut p, &reference).await?;
        items.push((kind, caption, source));
    }
    let messages = {
        let mut st = shared.lock();
        admit(&mut st, chat)?;
        let group_id = format!("{}", 13_000_000_000_000_000_u64 + st.next_media_group);
        st.next_media_group += 1;
        let mut messages = Vec::with_capacity(items.len());
        for (kind, caption, source) in items {
            let file = register(shared, &mut st, kind, source)?;
            let (message_id, json) = new_bot_message(shared, &mut st, chat, None, |m| {
                m.insert(kind.field().into(), file_json(kind, &file, None));
                m.insert("media_group_id".into(), json!(group_id));
                if let Some(c) = &caption {
                    m.insert("caption".into(), json!(c));
                }
            });
            st.messages.insert(
                (chat, message_id),
                StoredMessage {
                    json: json.clone(),
                    from_bot: true,
                    text: None,
                    caption: caption.clone(),
                    reply_markup: None,
                    edit_count: 0,
                    deleted: false,
                    file: Some(file.record.clone()),
                },
            );
            let mut entry = outbound("sendMediaGroup", chat, Some(message_id));
            entry.caption = caption;
            entry.file = Some(file.record);
            st.log(entry);
            messages.push(json);
        }
        messages
    };
    shared.sent_notify.notify_waiters();
    Ok(Value::Array(messages))
}

pub(super) fn get_file(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let id = p.str("file_id").unwrap_or_default();
    let st = shared.lock();
    let file = st.files.get(&id).ok_or_else(|| ApiError::bad_request("invalid file_id"))?;
    if let crate::Mode::Cloud { download_limit, .. } = shared.mode
        && file.record.size > download_limit
    {
        return Err(ApiError::bad_request("file is too big"));
    }
    Ok(json!({
        "file_id": file.record.file_id,
        "file_unique_id": file.unique_id,
        "file_size": file.record.size,
        "file_path": file.file_path,
    }))
}
