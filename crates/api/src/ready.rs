//! Readiness: [`ReadyCheck`]s the binary supplies, run together with a timeout each.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mltb_store::{Backend, Store};
use serde::{Deserialize, Serialize};

/// Longest reason a failed check reports, in bytes (longer ones are cut).
const MAX_REASON: usize = 300;

/// One part the process needs to do its work (the store, aria2, Telegram), asked
/// whether it answers. `/ready` runs every check at once, each within the configured
/// timeout, and answers 503 naming those that failed.
///
/// `/ready` is not behind the token: a check's error text is shown to whoever asks, so
/// it must not carry secrets (URLs with credentials, tokens). The ready-made checks and
/// `mltb-telegram`'s errors are redacted already.
///
/// ```
/// use mltb_api::ReadyCheck;
///
/// struct Always;
///
/// #[async_trait::async_trait]
/// impl ReadyCheck for Always {
///     fn name(&self) -> &str {
///         "always"
///     }
///     async fn check(&self) -> Result<(), String> {
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait ReadyCheck: Send + Sync + 'static {
    /// A short name for the part, shown in `/ready`'s answer (`store`, `aria2`, `telegram`).
    fn name(&self) -> &str;

    /// `Ok` if the part answers now; otherwise why not, in words an operator can act on.
    async fn check(&self) -> Result<(), String>;
}

type CheckFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// A [`ReadyCheck`] made of a name and an async closure, for parts the API does not know
/// (aria2's RPC, Telegram's `getMe`).
///
/// ```
/// use mltb_api::FnCheck;
///
/// let aria2 = FnCheck::new("aria2", || async { Ok(()) });
/// let telegram = FnCheck::new("telegram", || async { Err("getMe: 401 Unauthorized".to_string()) });
/// # let _ = (aria2, telegram);
/// ```
#[derive(Clone)]
pub struct FnCheck {
    name: String,
    f: CheckFn,
}

impl FnCheck {
    /// A check named `name` that runs `f`.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self { name: name.into(), f: Arc::new(move || Box::pin(f())) }
    }
}

impl fmt::Debug for FnCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnCheck").field("name", &self.name).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ReadyCheck for FnCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<(), String> {
        (self.f)().await
    }
}

/// The store answers a trivial query (reading a task by a primary key that never
/// exists), through the same pool the bot uses. Named `store`.
pub struct StoreCheck<B: Backend> {
    store: Arc<Store<B>>,
}

impl<B: Backend> StoreCheck<B> {
    /// A check of `store`.
    pub fn new(store: Arc<Store<B>>) -> Self {
        Self { store }
    }
}

impl<B: Backend> fmt::Debug for StoreCheck<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCheck").field("store", &self.store).finish()
    }
}

#[async_trait::async_trait]
impl<B: Backend> ReadyCheck for StoreCheck<B> {
    fn name(&self) -> &str {
        "store"
    }

    async fn check(&self) -> Result<(), String> {
        // Ids start at 1: this reads no row, but goes through the pool and the database.
        self.store.task(0).await.map(drop).map_err(|e| e.to_string())
    }
}

/// One check's outcome in `/ready`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckResult {
    /// The check's [`name`](ReadyCheck::name).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed (absent when it passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
}

/// `/ready`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Readiness {
    /// Whether every check passed (HTTP 200; otherwise 503).
    pub ready: bool,
    /// Every check, in the order they were added.
    pub checks: Vec<CheckResult>,
}

/// Runs every check at once, each within `timeout`.
pub(crate) async fn run(checks: &[Arc<dyn ReadyCheck>], timeout: Duration) -> Readiness {
    let results = futures_util::future::join_all(checks.iter().map(|c| async move {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(timeout, c.check()).await {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(cut(&reason)),
            Err(_) => Some(format!("timed out after {timeout:?}")),
        };
        if let Some(reason) = &outcome {
            tracing::warn!(check = c.name(), reason = %reason, "readiness check failed");
        }
        CheckResult {
            name: c.name().to_owned(),
            ok: outcome.is_none(),
            error: outcome,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }))
    .await;
    Readiness { ready: results.iter().all(|r| r.ok), checks: results }
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_REASON {
        return text.to_owned();
    }
    let mut end = MAX_REASON;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_check_fails_at_its_timeout_and_the_others_still_pass() {
        let checks: Vec<Arc<dyn ReadyCheck>> = vec![
            Arc::new(FnCheck::new("fast", || async { Ok(()) })),
            Arc::new(FnCheck::new("slow", || async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            })),
            Arc::new(FnCheck::new("broken", || async { Err("x".repeat(1000)) })),
        ];
        let r = run(&checks, Duration::from_secs(2)).await;
        assert!(!r.ready);
        assert_eq!(
            r.checks.iter().map(|c| (c.name.as_str(), c.ok)).collect::<Vec<_>>(),
            [("fast", true), ("slow", false), ("broken", false)]
        );
        assert_eq!(r.checks[1].error.as_deref(), Some("timed out after 2s"));
        assert!(r.checks[2].error.as_ref().unwrap().len() <= MAX_REASON + 3);
    }
}
