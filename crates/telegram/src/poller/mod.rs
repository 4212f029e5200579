//! The update poller: long polling with `allowed_updates`, offsets that never re-deliver,
//! recovery from updates that do not decode, a distinct error for 409 Conflict, and
//! capped backoff on network errors.

use std::time::Duration;

use frankenstein::AsyncTelegramApi;
use frankenstein::methods::GetUpdatesParams;
use frankenstein::response::MethodResponse;
use frankenstein::types::AllowedUpdate;
use frankenstein::updates::Update;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::{Client, Error, Result};

/// What to do when another instance polls the same bot (409 Conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    /// Report [`Error::Conflict`] and stop. The default: two instances fighting over
    /// updates lose some to each other.
    #[default]
    Stop,
    /// Report [`Error::Conflict`], back off, and poll again.
    Backoff,
}

/// Builds a [`Poller`].
#[derive(Debug, Clone)]
pub struct PollerBuilder {
    client: Client,
    allowed_updates: Vec<AllowedUpdate>,
    timeout: u32,
    limit: u32,
    offset: Option<i64>,
    on_conflict: ConflictPolicy,
    base_backoff: Duration,
    max_backoff: Duration,
    channel: usize,
}

impl PollerBuilder {
    /// Update kinds to receive. Default: message and callback_query.
    pub fn allowed_updates(mut self, kinds: impl IntoIterator<Item = AllowedUpdate>) -> Self {
        self.allowed_updates = kinds.into_iter().collect();
        self
    }

    /// Long-poll timeout in seconds (0 = short polling). Default 30.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = seconds;
        self
    }

    /// Most updates per response, 1-100. Default 100.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, 100);
        self
    }

    /// The first offset (e.g. restored from storage). Default: none (the server's oldest).
    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// What a 409 Conflict does.
    pub fn on_conflict(mut self, policy: ConflictPolicy) -> Self {
        self.on_conflict = policy;
        self
    }

    /// Backoff after a failed poll: `base · 2^(failures-1)`, at most `max`; reset by a
    /// successful poll. Default 1 s and 60 s.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max.max(base);
        self
    }

    /// Capacity of the update channel; polling waits while it is full. Default 256.
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.channel = capacity.max(1);
        self
    }

    /// One `getUpdates` with these settings from `offset` (confirming to Telegram every
    /// update before it), without starting a poller: for a caller that must record an
    /// update before the next call confirms it, as several instances of one bot do with
    /// their shared offset. Updates that do not decode are skipped (logged), but counted
    /// in [`Batch::next_offset`], unless their `update_id` is missing or outside
    /// `0..=u32::MAX` (no update has such an id). Updates below `offset` (confirmed by
    /// this call, so delivered before) are skipped too.
    ///
    /// # Errors
    /// Those of the request, and [`Error::Decode`] when the server sent updates but
    /// none moved the offset: the next call would get the same ones at once, so the
    /// caller must back off (the spawned poller does).
    pub async fn fetch(&self, offset: Option<i64>) -> Result<Batch> {
        let params = GetUpdatesParams::builder()
            .maybe_offset(offset)
            .limit(self.limit)
            .timeout(self.timeout)
            .allowed_updates(self.allowed_updates.clone())
            .build();
        let response = self
            .client
            .request::<_, MethodResponse<Vec<serde_json::Value>>>("getUpdates", Some(params))
            .await?;
        let received = response.result.len();
        let mut batch = Batch { next_offset: offset, updates: Vec::with_capacity(received) };
        for value in response.result {
            // Past every element, decodable or not, so none is delivered again; but not
            // past an id no update can have (update ids are u32): such an id would skip,
            // and so lose, every real update below it, or overflow the offset.
            let id = value.get("update_id").and_then(serde_json::Value::as_i64);
            match id.filter(|id| (0..=i64::from(u32::MAX)).contains(id)) {
                // Below the offset: confirmed by this very call, so delivered before; a
                // server that sends it again must not have it served twice.
                Some(id) if offset.is_some_and(|o| id < o) => {
                    tracing::warn!(
                        update_id = id,
                        ?offset,
                        "skipping an update below the offset, sent again"
                    );
                    continue;
                }
                Some(id) => batch.next_offset = Some(batch.next_offset.map_or(id + 1, |o| o.max(id + 1))),
                None => {
                    tracing::warn!(update_id = ?id, "an update without a valid update_id leaves the offset")
                }
            }
            match serde_json::from_value::<Update>(value) {
                Ok(update) => batch.updates.push(update),
                Err(e) => {
                    tracing::warn!(update_id = ?id, error = %e, "skipping an update that does not decode")
                }
            }
        }
        if received > 0 && batch.next_offset == offset {
            // Updates, none of which moves the offset: the same call would get them again
            // at once. An error, so that the caller backs off instead of spinning.
            return Err(Error::Decode {
                method: "getUpdates".into(),
                reason: format!(
                    "{received} updates, none with an update_id at or past the offset {offset:?} \
                     (expected ids in 0..={}); the server would send them again",
                    u32::MAX
                ),
            });
        }
        Ok(batch)
    }

    /// The capped exponential backoff after `failures` failed polls in a row.
    pub fn backoff_after(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base_backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// Starts polling on the current tokio runtime.
    pub fn spawn(self) -> Poller {
        let (tx, rx) = mpsc::channel(self.channel);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (offset_tx, offset_rx) = watch::channel(self.offset);
        let handle = tokio::spawn(run(self, tx, stop_rx, offset_tx));
        Poller { rx, stop: stop_tx, offset: offset_rx, handle: Some(handle) }
    }
}

/// What one [`PollerBuilder::fetch`] received.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Batch {
    /// The offset of the next call: the last update id received + 1 (the call's own
    /// offset when nothing came).
    pub next_offset: Option<i64>,
    /// The updates that decode, in order.
    pub updates: Vec<Update>,
}

/// A running poller: receive updates with [`recv`](Self::recv).
///
/// Errors delivered in the stream are [`Error::Conflict`] (another instance polls; with
/// [`ConflictPolicy::Stop`] it is the last item) and fatal errors such as 401
/// Unauthorized (always the last item). Network errors and 5xx are retried with backoff
/// and only logged.
#[derive(Debug)]
pub struct Poller {
    rx: mpsc::Receiver<Result<Update>>,
    stop: watch::Sender<bool>,
    offset: watch::Receiver<Option<i64>>,
    handle: Option<JoinHandle<Result<()>>>,
}

impl Poller {
    /// A builder polling with `client`.
    pub fn builder(client: Client) -> PollerBuilder {
        PollerBuilder {
            client,
            allowed_updates: vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery],
            timeout: 30,
            limit: 100,
            offset: None,
            on_conflict: ConflictPolicy::default(),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            channel: 256,
        }
    }

    /// The next update, an error to act on, or `None` when polling has stopped.
    pub async fn recv(&mut self) -> Option<Result<Update>> {
        self.rx.recv().await
    }

    /// The offset the next poll uses: the last update id seen + 1 (store it to resume).
    pub fn offset(&self) -> Option<i64> {
        *self.offset.borrow()
    }

    /// Stops polling (the poll in progress is abandoned; its updates will be delivered
    /// again to the next poller, since their offset was not confirmed) and returns how
    /// the polling task ended.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        match self.handle.take() {
            Some(h) => h.await.unwrap_or(Err(Error::Closed)),
            None => Ok(()),
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn run(
    cfg: PollerBuilder,
    tx: mpsc::Sender<Result<Update>>,
    mut stop: watch::Receiver<bool>,
    offset_tx: watch::Sender<Option<i64>>,
) -> Result<()> {
    let mut offset = cfg.offset;
    let mut failures: u32 = 0;
    loop {
        let outcome = tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(()),
            outcome = cfg.fetch(offset) => outcome,
        };
        let wait = match outcome {
            Ok(batch) => {
                failures = 0;
                offset = batch.next_offset;
                for update in batch.updates {
                    if tx.send(Ok(update)).await.is_err() {
                        return Ok(());
                    }
                }
                let _ = offset_tx.send(offset);
                continue;
            }
            Err(e @ Error::Conflict { .. }) => {
                tracing::error!(error = %e, "another instance is polling this bot");
                let _ = tx.send(Err(e.clone())).await;
                if cfg.on_conflict == ConflictPolicy::Stop {
                    return Err(e);
                }
                failures += 1;
                cfg.backoff_after(failures)
            }
            Err(e)
                if matches!(e, Error::Api { code: 401 | 404, .. }) || matches!(e, Error::Invalid { .. }) =>
            {
                tracing::error!(error = %e, "polling cannot continue");
                let _ = tx.send(Err(e.clone())).await;
                return Err(e);
            }
            Err(e) => {
                failures += 1;
                let wait = e.retry_after().unwrap_or_else(|| cfg.backoff_after(failures));
                tracing::warn!(error = %e, ?wait, failures, "getUpdates failed; backing off");
                wait
            }
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};

    use super::*;

    /// A one-shot server: answers the first request with `body` as a 200 JSON response.
    fn serve_once(body: String) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            reader.by_ref().take(length).read_to_end(&mut Vec::new()).unwrap();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let mut stream = reader.into_inner();
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body.as_bytes()).unwrap();
        });
        url
    }

    #[tokio::test]
    async fn update_ids_no_update_can_have_leave_the_offset() {
        let message = serde_json::json!({
            "message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "hi"
        });
        let body = serde_json::json!({"ok": true, "result": [
            {"update_id": 7, "message": message},
            {"update_id": i64::MAX, "message": message},
            {"update_id": 1_i64 << 32, "message": message},
            {"update_id": -3, "message": message},
            {"message": message},
        ]});
        let client = Client::builder("123456:secret").api_url(serve_once(body.to_string())).build().unwrap();
        let batch = Poller::builder(client).timeout(0).fetch(Some(3)).await.unwrap();
        assert_eq!(batch.next_offset, Some(8));
        let ids: Vec<u32> = batch.updates.iter().map(|u| u.update_id).collect();
        assert_eq!(ids, vec![7]);
    }

    fn message() -> serde_json::Value {
        serde_json::json!({"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "hi"})
    }

    #[tokio::test]
    async fn updates_below_the_offset_are_not_served_again() {
        let body = serde_json::json!({"ok": true, "result": [
            {"update_id": 2, "message": message()},
            {"update_id": 3, "message": message()},
        ]});
        let client = Client::builder("123456:secret").api_url(serve_once(body.to_string())).build().unwrap();
        let batch = Poller::builder(client).timeout(0).fetch(Some(3)).await.unwrap();
        assert_eq!(batch.next_offset, Some(4));
        let ids: Vec<u32> = batch.updates.iter().map(|u| u.update_id).collect();
        assert_eq!(ids, vec![3]);
    }

    /// A server that keeps sending updates the offset cannot move past would have the
    /// poller ask again at once, forever: the batch is an error, which backs off.
    #[tokio::test]
    async fn a_batch_that_cannot_move_the_offset_is_an_error() {
        for (offset, result) in [
            (Some(3), serde_json::json!([{"update_id": 2, "message": message()}])),
            (Some(3), serde_json::json!([{"update_id": -1, "message": message()}, {"message": message()}])),
            (None, serde_json::json!([{"update_id": 1_i64 << 40, "message": message()}])),
        ] {
            let body = serde_json::json!({"ok": true, "result": result});
            let client =
                Client::builder("123456:secret").api_url(serve_once(body.to_string())).build().unwrap();
            let err = Poller::builder(client).timeout(0).fetch(offset).await.unwrap_err();
            assert!(
                matches!(&err, Error::Decode { method, reason } if method == "getUpdates" && reason.contains("send them again")),
                "{offset:?} {result}: {err:?}"
            );
        }
    }
}
