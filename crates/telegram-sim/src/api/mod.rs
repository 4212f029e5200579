//! The Bot API surface: `/bot<token>/<method>` and `/file/bot<token>/<file_path>`.

mod error;
pub(crate) mod methods;
pub(crate) mod params;

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

pub(crate) use error::ApiError;
use error::{ok_response, ok_with_description};

use crate::state::Shared;
use crate::types::Fault;

/// Put into each request's extensions by the connection task: notifying it closes the
/// TCP connection without a response.
#[derive(Debug, Clone)]
pub(crate) struct ConnDropper(pub(crate) Arc<Notify>);

/// The HTTP layer of the official server (td's `HttpReader::parse_head`) reads GET and
/// POST only; any other method is `501 Not Implemented` with no body.
pub(crate) fn method_allowed(method: &Method) -> Result<(), ApiError> {
    if method == Method::GET || method == Method::POST {
        Ok(())
    } else {
        Err(ApiError::http(StatusCode::NOT_IMPLEMENTED))
    }
}

/// `ANY /{bot_token}/{method}`.
pub(crate) async fn bot_method(
    State(shared): State<Arc<Shared>>,
    Path((bot_token, method)): Path<(String, String)>,
    req: Request,
) -> Response {
    if let Err(err) = method_allowed(req.method()) {
        return err.into_response();
    }
    if bot_token.strip_prefix("bot") != Some(shared.token.as_str()) {
        return ApiError::unauthorized().into_response();
    }
    let canonical = methods::canonical(&method);
    let lower = method.to_ascii_lowercase();
    let fault = {
        let mut st = shared.lock();
        st.stats.requests += 1;
        st.count_method(canonical.map_or_else(|| lower.clone(), str::to_owned));
        st.take_fault(&lower)
    };
    match fault {
        Some(Fault::TooManyRequests { retry_after }) => {
            return finish(&shared, Err(ApiError::retry_after(retry_after)));
        }
        Some(Fault::ServerError(code)) => return finish(&shared, Err(ApiError::server(code))),
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::DropConnection) => {
            shared.lock().stats.dropped_connections += 1;
            if let Some(dropper) = req.extensions().get::<ConnDropper>() {
                dropper.0.notify_one();
                // The connection task drops this future together with the connection.
                std::future::pending::<()>().await;
            }
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        None => {}
    }
    let Some(canonical) = canonical else {
        return finish(&shared, Err(ApiError::method_not_found()));
    };
    let upload_dir = shared.files_dir.join("uploads");
    let params = match params::parse(req, &upload_dir, shared.mode.upload_limit()).await {
        Ok(params) => params,
        Err(err) => return finish(&shared, Err(err)),
    };
    let result = methods::call(&shared, canonical, params).await;
    finish(&shared, result)
}

fn finish(shared: &Shared, result: Result<methods::Answer, ApiError>) -> Response {
    match result {
        Ok(methods::Answer { result, description: None }) => ok_response(result),
        Ok(methods::Answer { result, description: Some(d) }) => ok_with_description(result, d),
        Err(err) => {
            {
                let mut st = shared.lock();
                if err.code == 429 {
                    st.stats.responses_429 += 1;
                } else if err.code >= 500 {
                    st.stats.responses_5xx += 1;
                }
            }
            err.into_response()
        }
    }
}

/// `GET /file/{bot_token}/{*file_path}`: the bytes of a file `getFile` described.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Path((bot_token, file_path)): Path<(String, String)>,
    method: Method,
) -> Response {
    if let Err(err) = method_allowed(&method) {
        return err.into_response();
    }
    if bot_token.strip_prefix("bot") != Some(shared.token.as_str()) {
        return ApiError::unauthorized().into_response();
    }
    let disk = {
        let st = shared.lock();
        st.file_paths.get(&file_path).and_then(|id| st.files.get(id)).map(|f| f.disk_path.clone())
    };
    let Some(disk) = disk.filter(|_| !shared.mode.is_local()) else {
        return ApiError::new(404, "Not Found: file not found").into_response();
    };
    match tokio::fs::read(&disk).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => ApiError::new(404, "Not Found: file not found").into_response(),
    }
}
