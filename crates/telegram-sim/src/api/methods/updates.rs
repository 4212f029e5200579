//! `getUpdates`: the queue, offsets, `allowed_updates`, long polls and the 409 conflict.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{DEFAULT_EXCLUDED, MAX_POLL_TIMEOUT};
use crate::api::error::{ApiError, CONFLICT_POLL, CONFLICT_WEBHOOK};
use crate::api::params::Params;
use crate::state::{Shared, State};

// getUpdates

/// Clears the poller slot when a getUpdates call ends (or its connection goes away).
struct PollerGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PollerGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if st.poller.as_ref().is_some_and(|(id, _)| *id == self.id) {
            st.poller = None;
        }
        if st.poll_waiting == Some(self.id) {
            st.poll_waiting = None;
        }
    }
}

fn allowed(st: &State, kind: &str) -> bool {
    match &st.allowed_updates {
        Some(list) => list.iter().any(|k| k == kind),
        None => !DEFAULT_EXCLUDED.contains(&kind),
    }
}

pub(super) async fn get_updates(shared: &Arc<Shared>, p: &Params) -> Result<Value, ApiError> {
    // `Client::process_get_updates_query`: integers as `get_integer_arg` reads them, the
    // timeout clamped to `LONG_POLL_MAX_TIMEOUT`; `allowed_updates` that do not parse are
    // ignored (`get_allowed_update_types`).
    let offset = i64::from(p.int32("offset", 0, i32::MIN, i32::MAX));
    let limit = usize::try_from(p.int32("limit", 100, 1, 100)).unwrap_or(100);
    let timeout = p.int32("timeout", 0, 0, MAX_POLL_TIMEOUT);
    let allowed_updates = match p.json("allowed_updates") {
        Some(Ok(Value::Array(list))) => {
            Some(list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect::<Vec<_>>())
        }
        _ => None,
    };
    let deadline = Instant::now() + Duration::from_secs(timeout.unsigned_abs().into());
    let (id, mut conflict) = {
        let mut st = shared.lock();
        if !st.webhook_url.is_empty() {
            return Err(ApiError::conflict(CONFLICT_WEBHOOK));
        }
        if let Some((_, older)) = st.poller.take() {
            let _ = older.send(());
        }
        st.poll_seq += 1;
        let id = st.poll_seq;
        let (tx, rx) = tokio::sync::oneshot::channel();
        st.poller = Some((id, tx));
        if let Some(list) = allowed_updates {
            st.allowed_updates = (!list.is_empty()).then_some(list);
        }
        if offset > 0 {
            st.updates.retain(|u| u.id >= offset);
        } else if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            let len = st.updates.len();
            st.updates.drain(..len.saturating_sub(keep));
        }
        (id, rx)
    };
    let _guard = PollerGuard { shared, id };
    let mut announced = false;
    loop {
        let notified = shared.update_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut st = shared.lock();
            let kept: std::collections::VecDeque<_> =
                std::mem::take(&mut st.updates).into_iter().filter(|u| allowed(&st, &u.kind)).collect();
            st.updates = kept;
            if !st.updates.is_empty() {
                let batch: Vec<Value> = st.updates.iter().take(limit).map(|u| u.value.clone()).collect();
                return Ok(Value::Array(batch));
            }
        }
        if !announced {
            announced = true;
            shared.lock().poll_waiting = Some(id);
            shared.poll_notify.notify_waiters();
        }
        tokio::select! {
            _ = &mut conflict => return Err(ApiError::conflict(CONFLICT_POLL)),
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => return Ok(json!([])),
        }
    }
}
