//! Files: uploads, `file_id` reuse, local paths, documents/videos/photos, albums, `getFile`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{
    admit, caption_param, check_markup, check_reply, finish_caption, inline_markup, known_chat, markup_param,
    new_bot_message, outbound, put_text, reply_param,
};
use crate::api::error::ApiError;
use crate::api::params::{Params, Upload, hex};
use crate::entities::{FormattedText, td_error};
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

/// A file input as the Bot API layer reads it (`Client::get_input_file`), before tdlib
/// resolves it.
#[derive(Debug)]
enum Input {
    Upload(Upload),
    /// `file:///abs/path`, local mode only.
    Local(String),
    /// A `file_id` or a URL.
    Remote(String),
}

fn wrong_file_id() -> ApiError {
    ApiError::bad_request("wrong file identifier/HTTP URL specified")
}

/// `Client::get_input_file` for a string value (`field` names the part of a plain upload).
fn take_input(shared: &Shared, p: &mut Params, field: &str, value: &str) -> Option<Input> {
    if !value.is_empty() {
        if shared.mode.is_local()
            && let Some(rest) = value.strip_prefix("file:/")
        {
            // `Client::get_local_file_path`
            let path = rest.strip_prefix("/localhost").or_else(|| rest.strip_prefix('/')).unwrap_or(rest);
            return Some(Input::Local(path.to_owned()));
        }
        match value.strip_prefix("attach://") {
            Some(name) => return p.uploads.remove(name).map(Input::Upload),
            None => return Some(Input::Remote(value.to_owned())),
        }
    }
    p.uploads.remove(field).map(Input::Upload)
}

/// What tdlib makes of an input: a stored file, an upload, a local file.
async fn resolve(shared: &Shared, input: Input) -> Result<Source, ApiError> {
    match input {
        Input::Upload(upload) => Ok(Source::Upload(upload)),
        Input::Local(path) => local_file(Path::new(&path), shared.mode.upload_limit()).await,
        Input::Remote(value) => {
            if value.starts_with("file://") {
                return Err(ApiError::bad_request(
                    "invalid file HTTP URL specified: Unsupported URL protocol",
                ));
            }
            if value.starts_with("http://") || value.starts_with("https://") {
                return Err(ApiError::bad_request("failed to get HTTP URL content"));
            }
            shared.lock().files.get(&value).cloned().map(Source::Existing).ok_or_else(wrong_file_id)
        }
    }
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
    let (name, mime, size, sha256, disk_path, owned) = match source {
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
            (name, mime, up.size, up.sha256, disk, true)
        }
        Source::LocalPath { path, size, sha256 } => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mime = guess_mime(&name).to_owned();
            (name, mime, size, sha256, path, false)
        }
    };
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
        record: FileRecord { name, size, sha256: sha256.clone(), mime: Some(mime), file_id },
        unique_id: format!("AgADSim{}", &sha256[..16]),
        disk_path,
        file_path,
        owned,
    };
    st.add_file(file.clone());
    Ok(file)
}

/// Width, height and duration of a video, as given (`get_integer_arg` clamps them).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Dimensions {
    width: i32,
    height: i32,
    duration: i32,
}

impl Dimensions {
    fn from_params(p: &Params) -> Self {
        Self {
            width: p.int32("width", 0, 0, MAX_LENGTH),
            height: p.int32("height", 0, 0, MAX_LENGTH),
            duration: p.int32("duration", 0, 0, MAX_DURATION),
        }
    }
}

/// `MAX_LENGTH` and `MAX_DURATION` of telegram-bot-api's `Client.h`.
const MAX_LENGTH: i32 = 10_000;
const MAX_DURATION: i32 = 24 * 60 * 60;

/// The JSON object of a file of `kind` inside a Message.
pub(crate) fn file_json(kind: Kind, file: &StoredFile, dims: Dimensions) -> Value {
    let r = &file.record;
    match kind {
        Kind::Document => json!({
            "file_id": r.file_id, "file_unique_id": file.unique_id, "file_name": r.name,
            "mime_type": r.mime, "file_size": r.size,
        }),
        Kind::Video => json!({
            "file_id": r.file_id, "file_unique_id": file.unique_id, "file_name": r.name,
            "mime_type": r.mime, "file_size": r.size,
            "width": dims.width, "height": dims.height, "duration": dims.duration,
        }),
        Kind::Photo => json!([{
            "file_id": r.file_id, "file_unique_id": file.unique_id, "file_size": r.size,
            "width": 0, "height": 0,
        }]),
    }
}

/// `sendDocument`, `sendVideo`, `sendPhoto`: the file must be given, then the caption,
/// reply parameters and markup are read, then the chat is checked, and only then is the
/// file resolved (`wrong file identifier…`) and the caption's length checked.
pub(super) async fn send_file(shared: &Arc<Shared>, mut p: Params, kind: Kind) -> Result<Value, ApiError> {
    let value = p.arg(kind.field()).to_owned();
    let Some(input) = take_input(shared, &mut p, kind.field(), &value) else {
        return Err(td_error(&format!("There is no {} in the request", kind.field())));
    };
    let caption = caption_param(&p)?;
    let reply = reply_param(&p)?;
    let markup = markup_param(&p)?;
    let (chat, reply) = {
        let st = shared.lock();
        let chat = known_chat(&st, &p)?;
        (chat, check_reply(&st, chat, &reply)?)
    };
    let source = resolve(shared, input).await?;
    let caption = finish_caption(caption)?;
    check_markup(markup.as_ref())?;
    let dims = Dimensions::from_params(&p);
    let json = {
        let mut st = shared.lock();
        if st.chat(chat).is_none() {
            return Err(ApiError::bad_request("chat not found"));
        }
        admit(&mut st, chat)?;
        let file = register(shared, &mut st, kind, source)?;
        let (message_id, json) = new_bot_message(shared, &mut st, chat, reply, |m| {
            m.insert(kind.field().into(), file_json(kind, &file, dims));
            put_text(m, "caption", "caption_entities", caption.as_ref());
            if let Some(k) = inline_markup(markup.as_ref()) {
                m.insert("reply_markup".into(), k);
            }
        });
        let mut entry = outbound(kind.method(), chat, Some(message_id));
        entry.caption = caption.as_ref().map(|c| c.text.clone());
        entry.entities = caption.as_ref().and_then(FormattedText::entities_json);
        entry.reply_markup = markup.clone();
        entry.file = Some(file.record.clone());
        st.insert_message(
            chat,
            message_id,
            StoredMessage {
                json: json.clone(),
                from_bot: true,
                text: None,
                caption,
                reply_markup: markup,
                edit_count: 0,
                deleted: false,
                file: Some(file.record),
            },
        );
        st.log(entry);
        json
    };
    shared.sent_notify.notify_waiters();
    Ok(json)
}

/// An album item as read by `Client::get_input_media`.
fn media_item(shared: &Shared, p: &mut Params, item: &Value) -> Result<(Kind, FormattedText, Input), String> {
    let Some(obj) = item.as_object() else { return Err("expected an Object".into()) };
    let string = |key: &str| obj.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let entities = obj.get("caption_entities").map(Value::to_string);
    let caption =
        crate::entities::formatted_text(&string("caption"), &string("parse_mode"), entities.as_deref())?;
    let input = take_input(shared, p, "", &string("media")).ok_or("media not found")?;
    let kind = match string("type").as_str() {
        "document" => Kind::Document,
        "video" => Kind::Video,
        "photo" => Kind::Photo,
        "" => return Err("Field \"type\" must be of type String".into()),
        _ => return Err("unsupported media type: the simulator takes photo, video, document".into()),
    };
    Ok((kind, caption, input))
}

pub(super) async fn send_media_group(shared: &Arc<Shared>, mut p: Params) -> Result<Value, ApiError> {
    let reply = reply_param(&p)?;
    let media = match p.json("media") {
        Some(Ok(Value::Array(items))) => items,
        Some(Ok(_)) => return Err(td_error("Expected an Array of InputMedia")),
        Some(Err(())) | None => return Err(td_error("Can't parse media JSON object")),
    };
    let mut items = Vec::with_capacity(media.len());
    for item in &media {
        let item = media_item(shared, &mut p, item)
            .map_err(|m| td_error(&format!("Can't parse InputMedia: {m}")))?;
        items.push(item);
    }
    let (chat, reply) = {
        let st = shared.lock();
        let chat = known_chat(&st, &p)?;
        (chat, check_reply(&st, chat, &reply)?)
    };
    if !(2..=10).contains(&items.len()) {
        return Err(ApiError::bad_request("wrong number of media in the album: must include 2-10 items"));
    }
    let mut ready = Vec::with_capacity(items.len());
    for (kind, caption, input) in items {
        let source = resolve(shared, input).await?;
        ready.push((kind, finish_caption(caption)?, source));
    }
    let messages = {
        let mut st = shared.lock();
        if st.chat(chat).is_none() {
            return Err(ApiError::bad_request("chat not found"));
        }
        admit(&mut st, chat)?;
        let group_id = format!("{}", 13_000_000_000_000_000_u64 + st.next_media_group);
        st.next_media_group += 1;
        let mut messages = Vec::with_capacity(ready.len());
        for (index, (kind, caption, source)) in ready.into_iter().enumerate() {
            let file = register(shared, &mut st, kind, source)?;
            let reply = if index == 0 { reply } else { None };
            let (message_id, json) = new_bot_message(shared, &mut st, chat, reply, |m| {
                m.insert(kind.field().into(), file_json(kind, &file, Dimensions::default()));
                m.insert("media_group_id".into(), json!(group_id));
                put_text(m, "caption", "caption_entities", caption.as_ref());
            });
            let mut entry = outbound("sendMediaGroup", chat, Some(message_id));
            entry.caption = caption.as_ref().map(|c| c.text.clone());
            entry.entities = caption.as_ref().and_then(FormattedText::entities_json);
            entry.file = Some(file.record.clone());
            st.insert_message(
                chat,
                message_id,
                StoredMessage {
                    json: json.clone(),
                    from_bot: true,
                    text: None,
                    caption,
                    reply_markup: None,
                    edit_count: 0,
                    deleted: false,
                    file: Some(file.record),
                },
            );
            st.log(entry);
            messages.push(json);
        }
        messages
    };
    shared.sent_notify.notify_waiters();
    Ok(Value::Array(messages))
}

pub(super) fn get_file(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    let id = p.arg("file_id");
    if id.is_empty() {
        return Err(ApiError::bad_request("file_id not specified"));
    }
    let st = shared.lock();
    let file = st.files.get(id).ok_or_else(|| ApiError::bad_request("invalid file_id"))?;
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
