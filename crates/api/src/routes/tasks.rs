//! `/api/v1/tasks`: list, get, cancel.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use http::StatusCode;

use super::{ApiError, AppState};
use crate::model::{CancelAccepted, TaskInfo, TaskList};

pub(crate) fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::bad_request(format!("task id: expected a positive whole number, got {text:?}"))
    })
}

/// `finished=N` from the query string (0 when absent); any other parameter is refused so
/// that a typo does not pass silently.
fn parse_finished(query: Option<&str>, max: u32) -> Result<u32, ApiError> {
    let mut finished = 0;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "finished" => {
                finished = value.parse::<u32>().ok().filter(|n| *n <= max).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "finished: expected a whole number from 0 to {max}, got {value:?}"
                    ))
                })?;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}; expected only `finished`"
                )));
            }
        }
    }
    Ok(finished)
}

/// `GET /api/v1/tasks[?finished=N]`: every unfinished task in the store (merged with its
/// live view when it runs here), tasks running here that the store lists as finished
/// (seeding), then the finished ones among the N most recent.
pub(crate) async fn list(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<TaskList>, ApiError> {
    let finished = parse_finished(query.as_deref(), s.max_finished)?;
    Ok(Json(TaskList { tasks: collect(&s, finished).await? }))
}

/// Every unfinished task, tasks running here that the store lists as finished, then the
/// finished ones among the `finished` most recent (see [`list`]).
pub(crate) async fn collect(s: &AppState, finished: u32) -> Result<Vec<TaskInfo>, ApiError> {
    let live = s.engine.live();
    let unfinished = s.engine.unfinished().await.map_err(|e| ApiError::store(&e))?;
    let recent = if finished > 0 {
        s.engine.recent(finished).await.map_err(|e| ApiError::store(&e))?
    } else {
        Vec::new()
    };
    let views: HashMap<i64, _> = live.iter().map(|v| (v.id, v)).collect();
    let mut seen = HashSet::new();
    let mut tasks: Vec<TaskInfo> = unfinished
        .iter()
        .filter_map(|t| {
            seen.insert(t.id);
            TaskInfo::new(Some(t), views.get(&t.id).copied())
        })
        .collect();
    let rows: HashMap<i64, _> = recent.iter().map(|t| (t.id, t)).collect();
    tasks.extend(
        live.iter()
            .filter(|v| seen.insert(v.id))
            .filter_map(|v| TaskInfo::new(rows.get(&v.id).copied(), Some(v))),
    );
    tasks.extend(
        recent
            .iter()
            .filter(|t| t.state.is_finished() && seen.insert(t.id))
            .filter_map(|t| TaskInfo::new(Some(t), None)),
    );
    Ok(tasks)
}

/// `GET /api/v1/tasks/{id}`.
pub(crate) async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TaskInfo>, ApiError> {
    let id = parse_id(&id)?;
    let row = s.engine.stored(id).await.map_err(|e| ApiError::store(&e))?;
    let live = s.engine.live();
    let view = live.iter().find(|v| v.id == id);
    TaskInfo::new(row.as_ref(), view).map(Json).ok_or_else(|| ApiError::not_found(format!("no task {id}")))
}

/// `POST /api/v1/tasks/{id}/cancel`: 202 when the task was running (here, or with several
/// instances on any of them); 409 when it exists but is finished or runs in a process
/// that does not share this one's database; 404 when there is no such task.
pub(crate) async fn cancel(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CancelAccepted>), ApiError> {
    let id = parse_id(&id)?;
    cancel_task(&s, id).await.map(|accepted| (StatusCode::ACCEPTED, Json(accepted)))
}

/// Cancels task `id` wherever it runs (see [`cancel`]).
pub(crate) async fn cancel_task(s: &AppState, id: i64) -> Result<CancelAccepted, ApiError> {
    let cancelled = s.engine.cancel_anywhere(id).await.map_err(|e| {
        tracing::warn!(task = id, error = %e, "could not cancel");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("task {id} could not be cancelled now; try again"))
    })?;
    if cancelled {
        tracing::info!(task = id, "cancelled through the API");
        return Ok(CancelAccepted { id, cancelling: true });
    }
    match s.engine.stored(id).await.map_err(|e| ApiError::store(&e))? {
        None => Err(ApiError::not_found(format!("no task {id}"))),
        Some(t) if t.state.is_finished() => {
            Err(ApiError(StatusCode::CONFLICT, format!("task {id} is already {}", t.state)))
        }
        Some(t) => Err(ApiError(
            StatusCode::CONFLICT,
            format!("task {id} is {} but not running in this process", t.state),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_query_are_checked_with_the_input_named() {
        assert_eq!(parse_id("42").unwrap(), 42);
        assert_eq!(parse_id("x").unwrap_err().1, "task id: expected a positive whole number, got \"x\"");
        assert!(parse_id("0").is_err());
        assert_eq!(parse_finished(None, 100).unwrap(), 0);
        assert_eq!(parse_finished(Some("finished=20"), 100).unwrap(), 20);
        assert_eq!(
            parse_finished(Some("finished=101"), 100).unwrap_err().1,
            "finished: expected a whole number from 0 to 100, got \"101\""
        );
        assert!(parse_finished(Some("limit=1"), 100).unwrap_err().1.contains("\"limit\""));
    }
}
