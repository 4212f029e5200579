//! The torrent file-selection page at `/select/{id}`: a task sent with `-s` pauses once
//! its torrent's file list is known, and the bot sends a link to this page. The page
//! shows the file tree with sizes; folders are chosen as a whole; the choice starts the
//! download of the files chosen.
//!
//! Access: the task's key (128 random bits, made when the task was submitted) travels in
//! the link's fragment (`/select/7#k=…`), which browsers never send to a server or put
//! in a `Referer`; the page's script sends it in the `X-Select-Key` header. Without the
//! right key, a task's files are not shown and nothing is chosen: the answer is the
//! same 404 whether the task exists or not. The link expires when the download starts
//! and when the task is cancelled or ends (410). A choice must also come from this
//! site (`Origin`, `Sec-Fetch-Site`). Every answer carries the dashboard's security
//! headers (strict CSP, `nosniff`, `frame-ancestors 'none'`).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};
use mltb_engine::ChoiceError;
use serde::{Deserialize, Serialize};

use super::dashboard::{same_site, security_headers};
use super::{ApiError, AppState, tasks};

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("select.js");
const STYLE: &str = include_str!("select.css");

/// The header the page sends the key in.
const KEY_HEADER: &str = "x-select-key";

/// The page's routes, with their security headers.
pub(crate) fn routes(state: AppState) -> Router {
    Router::new()
        .route("/select/select.js", get(script))
        .route("/select/select.css", get(style))
        .route("/select/{id}", get(page).post(choose))
        .route("/select/{id}/files", get(files))
        .with_state(state)
        .layer(axum::middleware::from_fn(security_headers))
}

/// `GET /select/{id}/files`.
#[derive(Debug, Serialize)]
struct FileList {
    task: i64,
    name: Option<String>,
    files: Vec<mltb_engine::ChoiceFile>,
    total_bytes: u64,
}

/// The body of `POST /select/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChooseBody {
    files: Vec<u32>,
}

/// The answer to a choice.
#[derive(Debug, Serialize)]
struct Started {
    task: i64,
    files: usize,
    bytes: u64,
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// The page: the same for every task (it holds no data; its script asks with the key).
async fn page(Path(id): Path<String>) -> Response {
    match tasks::parse_id(&id) {
        Ok(_) => Html(PAGE).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The key the request carries; an empty one when it carries none.
fn key(headers: &HeaderMap) -> &str {
    headers.get(KEY_HEADER).and_then(|v| v.to_str().ok()).map_or("", str::trim)
}

fn refusal(id: i64, e: &ChoiceError) -> ApiError {
    let status = match e {
        ChoiceError::Unknown => {
            return ApiError::not_found(format!(
                "no selection for task {id} with this key: open the link the bot sent"
            ));
        }
        ChoiceError::NotReady => StatusCode::CONFLICT,
        ChoiceError::Closed => StatusCode::GONE,
        ChoiceError::Invalid(_) => StatusCode::BAD_REQUEST,
        ChoiceError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError(status, e.to_string())
}

async fn files(State(app): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let id = match tasks::parse_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match app.engine.choice(id, key(&headers)).await {
        Ok(c) => {
            // Sizes come from the torrent: a crafted one may sum past u64::MAX.
            let total_bytes = super::saturating_sum(c.files.iter().map(|f| f.size));
            axum::Json(FileList { task: c.task, name: c.name, files: c.files, total_bytes }).into_response()
        }
        Err(e) => refusal(id, &e).into_response(),
    }
}

async fn choose(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let id = match tasks::parse_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    if !same_site(&headers) {
        return ApiError(StatusCode::FORBIDDEN, "a choice must come from the selection page itself".into())
            .into_response();
    }
    let body: ChooseBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_request(format!(
                "the body is not a choice: expected {{\"files\": [1-based file indexes]}} ({e})"
            ))
            .into_response();
        }
    };
    let key = key(&headers);
    match app.engine.choose(id, key, &body.files) {
        Ok(chosen) => {
            tracing::info!(task = id, files = chosen.files, "files chosen on the selection page");
            (StatusCode::ACCEPTED, axum::Json(Started { task: id, files: chosen.files, bytes: chosen.bytes }))
                .into_response()
        }
        // A task not waiting for a choice: only the key's holder learns that it is
        // closed (the store's key tells).
        Err(ChoiceError::Closed) => match app.engine.choice(id, key).await {
            Err(ChoiceError::Unknown) => refusal(id, &ChoiceError::Unknown).into_response(),
            _ => refusal(id, &ChoiceError::Closed).into_response(),
        },
        Err(e) => refusal(id, &e).into_response(),
    }
}
