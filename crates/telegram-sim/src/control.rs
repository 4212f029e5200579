//! The test-side HTTP API under `/_sim/`, thin over the same functions as [`Sim`](crate::Sim).
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /_sim/text` | `{"chat_id","from","text","reply_to_message_id"?}` | `{"update_id"}` |
//! | `POST /_sim/callback` | `{"chat_id","from","message_id","data"}` | `{"update_id"}` |
//! | `POST /_sim/document?chat_id=&from=&file_name=&caption=` | the raw file bytes | `{"update_id"}` |
//! | `POST /_sim/update` | any update object (its `update_id` is replaced) | `{"update_id"}` |
//! | `GET /_sim/sent[?wait_for=N&timeout_ms=M]` | | the sent log (`at_ms` from the sim's start); with `wait_for`, once it has N entries, or 408 |
//! | `GET /_sim/wait_poll[?timeout_ms=M]` | | `{"ok":true}` once a `getUpdates` call is held open (a long poll), else 408 |
//! | `GET /_sim/callback_answers` | | the callback answers |
//! | `GET /_sim/message/{chat_id}/{message_id}` | | the message's current state, or 404 |
//! | `GET /_sim/stats` | | [`SimStats`](crate::SimStats) |
//! | `POST /_sim/fault` | `{"kind":"too_many_requests"\|"server_error"\|"slow"\|"drop_connection","count","method"?,"retry_after"?,"status"?,"millis"?}` | `{"ok":true}` |
//! | `POST /_sim/rate_limits` | `{"enabled"}` | `{"ok":true}` |
//! | `POST /_sim/blocked` | `{"chat_id","blocked"}` | `{"ok":true}` |
//! | `POST /_sim/chat` | `{"chat_id","type"?,"title"?,"username"?}` | `{"ok":true}` |
//! | `GET /_sim/file/{file_id}` | | a stored file's bytes, as an attachment with its name, or 404 |
//! | `GET /_sim/chat_page[?chat=&from=]` | | the sandbox chat page (HTML; `chat.js`, `chat.css` beside it) |

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{FaultRule, Shared};
use crate::types::{ChatKind, Fault, Outbound, SimChat};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/text", post(text))
        .route("/callback", post(callback))
        .route("/document", post(document))
        .route("/update", post(update))
        .route("/sent", get(sent))
        .route("/wait_poll", get(wait_poll))
        .route("/callback_answers", get(callback_answers))
        .route("/message/{chat_id}/{message_id}", get(message))
        .route("/stats", get(stats))
        .route("/fault", post(fault))
        .route("/rate_limits", post(rate_limits))
        .route("/blocked", post(blocked))
        .route("/chat", post(chat))
        .route("/file/{file_id}", get(file))
        .route("/chat_page", get(chat_page))
        .route("/chat.js", get(chat_script))
        .route("/chat.css", get(chat_style))
}

/// The policy of the chat page: scripts and styles from the simulator only.
const CHAT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                        connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (axum::http::header::CONTENT_SECURITY_POLICY, CHAT_CSP),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn chat_page() -> Response {
    page("text/html; charset=utf-8", include_str!("chat/index.html"))
}

async fn chat_script() -> Response {
    page("text/javascript; charset=utf-8", include_str!("chat/chat.js"))
}

async fn chat_style() -> Response {
    page("text/css; charset=utf-8", include_str!("chat/chat.css"))
}

/// `Content-Disposition` for `name`: an ASCII fallback and the UTF-8 name (RFC 6266).
fn attachment(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn file(State(shared): State<Arc<Shared>>, Path(file_id): Path<String>) -> Response {
    let found = {
        let st = shared.lock();
        st.files.get(&file_id).map(|f| (f.disk_path.clone(), f.record.name.clone()))
    };
    let Some((disk, name)) = found else {
        return (StatusCode::NOT_FOUND, Json(json!({"ok": false, "description": "no such file"})))
            .into_response();
    };
    match tokio::fs::read(&disk).await {
        Ok(bytes) => {
            let disposition = attachment(&name);
            let mut response =
                ([(axum::http::header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
            if let Ok(v) = axum::http::HeaderValue::from_str(&disposition) {
                response.headers_mut().insert(axum::http::header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(e) => {
            (StatusCode::NOT_FOUND, Json(json!({"ok": false, "description": e.to_string()}))).into_response()
        }
    }
}

fn bad(what: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "ok": false, "description": what }))).into_response()
}

#[derive(Debug, Deserialize)]
struct TextBody {
    chat_id: i64,
    from: i64,
    text: String,
    reply_to_message_id: Option<i32>,
}

async fn text(State(shared): State<Arc<Shared>>, Json(body): Json<TextBody>) -> Json<Value> {
    let id = shared.send_text(body.chat_id, body.from, &body.text, body.reply_to_message_id);
    Json(json!({ "update_id": id }))
}

#[derive(Debug, Deserialize)]
struct CallbackBody {
    chat_id: i64,
    from: i64,
    message_id: i32,
    data: String,
}

async fn callback(State(shared): State<Arc<Shared>>, Json(b): Json<CallbackBody>) -> Json<Value> {
    Json(json!({ "update_id": shared.press_button(b.chat_id, b.from, b.message_id, &b.data) }))
}

#[derive(Debug, Deserialize)]
struct DocumentQuery {
    chat_id: i64,
    from: i64,
    file_name: String,
    caption: Option<String>,
}

async fn document(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<DocumentQuery>,
    body: Bytes,
) -> Response {
    match shared.send_document(q.chat_id, q.from, &q.file_name, &body, q.caption.as_deref()) {
        Ok(id) => Json(json!({ "update_id": id })).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn update(State(shared): State<Arc<Shared>>, Json(value): Json<Value>) -> Response {
    match shared.push_raw_update(value) {
        Ok(id) => Json(json!({ "update_id": id })).into_response(),
        Err(err) => bad(err.to_string()),
    }
}

pub(crate) fn outbound_json(shared: &Shared, o: &Outbound) -> Value {
    json!({
        "seq": o.seq,
        "at_ms": o.at.saturating_duration_since(shared.started).as_millis() as u64,
        "method": o.method,
        "chat_id": o.chat_id,
        "message_id": o.message_id,
        "text": o.text,
        "caption": o.caption,
        "entities": o.entities,
        "reply_markup": o.reply_markup,
        "file": o.file,
    })
}

#[derive(Debug, Deserialize)]
struct SentQuery {
    /// Wait until the log has at least this many entries.
    wait_for: Option<usize>,
    /// How long to wait, in milliseconds (default 10 000, at most 600 000).
    timeout_ms: Option<u64>,
}

async fn sent(State(shared): State<Arc<Shared>>, Query(q): Query<SentQuery>) -> Response {
    let log = match q.wait_for {
        Some(n) => {
            let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(10_000).min(600_000));
            match shared.wait_for_sent(n, timeout).await {
                Ok(log) => log,
                Err(err) => {
                    let body = Json(json!({ "ok": false, "description": err.to_string() }));
                    return (StatusCode::REQUEST_TIMEOUT, body).into_response();
                }
            }
        }
        None => shared.lock().sent(),
    };
    Json(Value::Array(log.iter().map(|o| outbound_json(&shared, o)).collect())).into_response()
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    /// How long to wait, in milliseconds (default 10 000, at most 600 000).
    timeout_ms: Option<u64>,
}

async fn wait_poll(State(shared): State<Arc<Shared>>, Query(q): Query<WaitQuery>) -> Response {
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(10_000).min(600_000));
    match shared.wait_for_poll(timeout).await {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(err) => {
            let body = Json(json!({ "ok": false, "description": err.to_string() }));
            (StatusCode::REQUEST_TIMEOUT, body).into_response()
        }
    }
}

async fn callback_answers(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let answers = shared.lock().callback_answers();
    Json(Value::Array(
        answers
            .iter()
            .map(|a| {
                json!({
                    "callback_query_id": a.callback_query_id,
                    "text": a.text,
                    "show_alert": a.show_alert,
                    "url": a.url,
                    "at_ms": a.at.saturating_duration_since(shared.started).as_millis() as u64,
                })
            })
            .collect(),
    ))
}

async fn message(
    State(shared): State<Arc<Shared>>,
    Path((chat_id, message_id)): Path<(i64, i32)>,
) -> Response {
    match shared.message_state(chat_id, message_id) {
        Some(m) => Json(json!({
            "chat_id": m.chat_id,
            "message_id": m.message_id,
            "from_bot": m.from_bot,
            "text": m.text,
            "caption": m.caption,
            "entities": m.entities,
            "reply_markup": m.reply_markup,
            "edit_count": m.edit_count,
            "deleted": m.deleted,
            "file": m.file,
        }))
        .into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({ "ok": false, "description": "no such message" })))
            .into_response(),
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<crate::SimStats> {
    Json(shared.stats())
}

#[derive(Debug, Deserialize)]
struct FaultBody {
    kind: String,
    #[serde(default = "one")]
    count: usize,
    method: Option<String>,
    retry_after: Option<u32>,
    status: Option<u16>,
    millis: Option<u64>,
}

fn one() -> usize {
    1
}

async fn fault(State(shared): State<Arc<Shared>>, Json(b): Json<FaultBody>) -> Response {
    let fault = match b.kind.as_str() {
        "too_many_requests" => Fault::TooManyRequests { retry_after: b.retry_after.unwrap_or(1) },
        "server_error" => Fault::ServerError(b.status.unwrap_or(502)),
        "slow" => Fault::Slow(Duration::from_millis(b.millis.unwrap_or(1000))),
        "drop_connection" => Fault::DropConnection,
        other => {
            return bad(format!(
                "unknown fault kind {other:?}: expected too_many_requests, server_error, slow or drop_connection"
            ));
        }
    };
    if let Fault::ServerError(code) = fault
        && !(100..=999).contains(&code)
    {
        return bad(format!("status {code} is not an HTTP status code"));
    }
    if b.count > 0 {
        let method = b.method.map(|m| m.to_ascii_lowercase());
        shared.lock().faults.push_back(FaultRule { fault, remaining: b.count, method });
    }
    Json(json!({ "ok": true })).into_response()
}

#[derive(Debug, Deserialize)]
struct RateLimitsBody {
    enabled: bool,
}

async fn rate_limits(State(shared): State<Arc<Shared>>, Json(b): Json<RateLimitsBody>) -> Json<Value> {
    shared.lock().rate_limits_enabled = b.enabled;
    Json(json!({ "ok": true }))
}

#[derive(Debug, Deserialize)]
struct BlockedBody {
    chat_id: i64,
    blocked: bool,
}

async fn blocked(State(shared): State<Arc<Shared>>, Json(b): Json<BlockedBody>) -> Json<Value> {
    shared.lock().set_blocked(b.chat_id, b.blocked);
    Json(json!({ "ok": true }))
}

#[derive(Debug, Deserialize)]
struct ChatBody {
    chat_id: i64,
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    username: Option<String>,
}

async fn chat(State(shared): State<Arc<Shared>>, Json(b): Json<ChatBody>) -> Response {
    let mut chat = SimChat::from(b.chat_id);
    chat.kind = match b.kind.as_deref() {
        None => chat.kind,
        Some("private") => ChatKind::Private,
        Some("group") => ChatKind::Group,
        Some("supergroup") => ChatKind::Supergroup,
        Some("channel") => ChatKind::Channel,
        Some(other) => {
            return bad(format!(
                "unknown chat type {other:?}: expected private, group, supergroup or channel"
            ));
        }
    };
    if let Some(title) = b.title {
        chat.title = title;
    }
    chat.username = b.username;
    shared.lock().add_chat(chat);
    Json(json!({ "ok": true })).into_response()
}
