//! Coalescing status edits with [`mltb_batch`] and keeping them within Telegram's limits
//! with [`mltb_ratelimit`].
//!
//! Progress updates are submitted to a [`Batcher`]; while the handler is busy waiting
//! on the limiters, new updates pile up and the next batch keeps only the latest update
//! per chat. Each chat's edit needs a cell from its per-chat bucket (1/s) and from the
//! global bucket (30/s) at the instant it is sent; different chats wait concurrently.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use mltb_batch::Batcher;
use mltb_ratelimit::{DirectLimiter, KeyedLimiter, Quota, RateLimiter, RateLimiterExt, TokioClock};
use tokio::time::Instant;

/// What to simulate.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How many chats have a live status message.
    pub chats: i64,
    /// Progress updates each chat produces.
    pub updates_per_chat: usize,
    /// Time between two updates of one chat.
    pub update_every: Duration,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Updates submitted in all.
    pub submitted: usize,
    /// Edits that reached "Telegram".
    pub sent: usize,
    /// Updates replaced by a newer one for the same chat before they were sent.
    pub superseded: usize,
    /// From the first update to the last edit.
    pub elapsed: Duration,
    /// The most edits any one chat received.
    pub max_edits_in_one_chat: usize,
    /// Per chat, the times (since the start) at which its edits were sent.
    pub edit_times: HashMap<i64, Vec<Duration>>,
    /// Mean number of updates per handler call.
    pub mean_batch_size: f64,
}

/// The fate of one progress update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Superseded,
}

/// Errors the simulation can meet.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

struct Sender {
    per_chat: KeyedLimiter<i64, TokioClock>,
    global: DirectLimiter<TokioClock>,
    start: Instant,
    log: std::sync::Mutex<HashMap<i64, Vec<Duration>>>,
}

impl Sender {
    /// Sends one edit once both the global and the chat's bucket admit it.
    ///
    /// Both cells must be taken at the instant of sending: waiting for the chat's cell
    /// and then for the global one would send later than the chat's cell was taken, and
    /// two edits of a chat could land less than a second apart. So the global cell is
    /// taken first and the chat's is checked with no `.await` in between; when the chat
    /// is not ready the global cell is forfeited (under-admitting, never over-admitting).
    async fn edit(&self, chat: i64) -> Result<(), Error> {
        loop {
            self.global.until_ready(&()).await?;
            match self.per_chat.check(&chat) {
                Ok(()) => break,
                Err(denied) => {
                    let wait = denied.retry_after().ok_or("the per-chat quota can never admit one edit")?;
                    tokio::time::sleep(wait).await;
                }
            }
        }
        let at = self.start.elapsed();
        self.log.lock().map_err(|_| "edit log poisoned")?.entry(chat).or_default().push(at);
        Ok(())
    }
}

/// Runs the simulation on the current tokio runtime (paused clock recommended).
pub async fn simulate(config: Config) -> Result<Report, Error> {
    let per_chat_quota: Quota = "1/s".parse()?;
    // Burst 1: a GCRA bucket admits up to burst + rate·t in any window of length t, so
    // "30/s" with its default burst of 30 could send ~59 edits in one second. With burst 1
    // no one-second window holds more than 30.
    let global_quota: Quota = "30/s burst 1".parse()?;
    let sender = Arc::new(Sender {
        per_chat: KeyedLimiter::builder(per_chat_quota).clock(TokioClock::new()).max_keys(10_000).build()?,
        global: DirectLimiter::with_clock(global_quota, TokioClock::new()),
        start: Instant::now(),
        log: std::sync::Mutex::new(HashMap::new()),
    });

    let handler_sender = Arc::clone(&sender);
    let batcher = Batcher::builder().max_items(1_000).build(move |updates: Vec<(i64, usize)>| {
        let sender = Arc::clone(&handler_sender);
        async move {
            // The newest update of each chat in this batch wins.
            let mut newest: HashMap<i64, usize> = HashMap::new();
            for (i, (chat, _)) in updates.iter().enumerate() {
                newest.insert(*chat, i);
            }
            let sends = newest.keys().map(|chat| sender.edit(*chat));
            for result in join_all(sends).await {
                result?;
            }
            let outcomes =
                (0..updates.len())
                    .map(|i| {
                        if newest.get(&updates[i].0) == Some(&i) {
                            Outcome::Sent
                        } else {
                            Outcome::Superseded
                        }
                    })
                    .collect();
            Ok::<_, Error>(outcomes)
        }
    })?;

    let producers = (0..config.chats).map(|chat| {
        let batcher = batcher.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::with_capacity(config.updates_per_chat);
            for step in 0..config.updates_per_chat {
                // Wait for the result in the background so this chat keeps its pace.
                outcomes.push(batcher.enqueue((chat, step)).await?);
                tokio::time::sleep(config.update_every).await;
            }
            let mut results = Vec::with_capacity(outcomes.len());
            for pending in outcomes {
                results.push(pending.await?);
            }
            Ok::<_, mltb_batch::Error>(results)
        })
    });
    let mut sent = 0;
    let mut superseded = 0;
    for producer in join_all(producers).await {
        for outcome in producer?? {
            match outcome {
                Outcome::Sent => sent += 1,
                Outcome::Superseded => superseded += 1,
            }
        }
    }
    let elapsed = sender.start.elapsed();
    let stats = batcher.stats();
    batcher.shutdown().await;

    let edit_times = sender.log.lock().map_err(|_| "edit log poisoned")?.clone();
    Ok(Report {
        submitted: sent + superseded,
        sent,
        superseded,
        elapsed,
        max_edits_in_one_chat: edit_times.values().map(Vec::len).max().unwrap_or(0),
        edit_times,
        mean_batch_size: stats.mean_batch_size(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn edits_stay_within_telegram_limits_and_nothing_is_lost() {
        let config = Config { chats: 40, updates_per_chat: 50, update_every: Duration::from_millis(100) };
        let report = simulate(config).await.unwrap();

        assert_eq!(report.submitted, 40 * 50, "every update has an outcome");
        assert_eq!(report.sent, report.edit_times.values().map(Vec::len).sum::<usize>());
        assert!(report.superseded > report.sent, "fast updates must be coalesced: {report:?}");
        // Each chat's last update is always sent, so every chat got at least one edit.
        assert_eq!(report.edit_times.len(), 40);

        // 1 edit per second per chat: consecutive edits of a chat are >= 1 s apart.
        for (chat, times) in &report.edit_times {
            for pair in times.windows(2) {
                assert!(
                    pair[1] - pair[0] >= Duration::from_secs(1),
                    "chat {chat} edited too fast: {times:?}"
                );
            }
        }
        // 30 messages per second overall: no one-second window holds more than 30 edits.
        let mut all: Vec<Duration> = report.edit_times.values().flatten().copied().collect();
        all.sort();
        for (i, start) in all.iter().enumerate() {
            let in_window = all[i..].iter().take_while(|t| **t < *start + Duration::from_secs(1)).count();
            assert!(in_window <= 30, "{in_window} edits in the second from {start:?}");
        }
    }
}
