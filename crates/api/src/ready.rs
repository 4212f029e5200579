//! Readiness: [`ReadyCheck`]s the binary supplies, run together with a timeout each, at
//! most once a second however often `/ready` is asked.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mltb_store::{Backend, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::metrics::Metrics;

/// Longest reason a failed check reports, in bytes (longer ones are cut).
const MAX_REASON: usize = 300;

/// How long `/ready` answers with the last run's outcome. The route is open and outside
/// the rate limit, and a run asks the store, aria2 and Telegram: however many clients
/// ask, the checks run at most once in this time.
pub(crate) const FRESH: Duration = Duration::from_secs(1);

/// A failed check's reason as a client without the token reads it: the check's own
/// words may name files or endpoints, so they go to the log (and to the token's holder).
pub(crate) const WITHHELD: &str = "failed; the reason is in the server's log";

/// One part the process needs to do its work (the store, aria2, Telegram), asked
/// whether it answers. `/ready` runs every check at once, each within the configured
/// timeout, and answers 503 naming those that failed.
///
/// `/ready` is not behind the token: whoever asks learns which checks failed, and
/// whether they timed out, but a check's own error text is logged and shown only to a
/// client with the API token. It still must not carry secrets (URLs with credentials,
/// tokens); the ready-made checks and `mltb-telegram`'s errors are redacted already.
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

/// One run of the checks, as shown to a client with the token and to anyone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// Every failed check with its reason.
    pub(crate) detailed: Readiness,
    /// The same, with the reasons the checks gave replaced by [`WITHHELD`] (a timeout,
    /// the API's own words, is told as it is).
    pub(crate) open: Readiness,
}

/// Runs every check at once, each within `timeout`; logs the reason of each that fails.
pub(crate) async fn run(checks: &[Arc<dyn ReadyCheck>], timeout: Duration) -> Report {
    let results = futures_util::future::join_all(checks.iter().map(|c| async move {
        let started = Instant::now();
        let (detailed, open) = match tokio::time::timeout(timeout, c.check()).await {
            Ok(Ok(())) => (None, None),
            Ok(Err(reason)) => (Some(cut(&reason)), Some(WITHHELD.to_owned())),
            Err(_) => {
                let reason = format!("timed out after {timeout:?}");
                (Some(reason.clone()), Some(reason))
            }
        };
        if let Some(reason) = &detailed {
            tracing::warn!(check = c.name(), reason = %reason, "readiness check failed");
        }
        let result = CheckResult {
            name: c.name().to_owned(),
            ok: detailed.is_none(),
            error: detailed,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let withheld = CheckResult { error: open, ..result.clone() };
        (result, withheld)
    }))
    .await;
    let (detailed, open): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    let ready = detailed.iter().all(|r| r.ok);
    Report { detailed: Readiness { ready, checks: detailed }, open: Readiness { ready, checks: open } }
}

/// The checks behind `/ready` and the last run's report, shared by every request: the
/// checks run again only when that report is older than [`FRESH`], once for all the
/// requests waiting then.
pub(crate) struct Cache {
    checks: Arc<[Arc<dyn ReadyCheck>]>,
    timeout: Duration,
    metrics: Arc<Metrics>,
    last: Arc<Mutex<Option<Dated>>>,
}

/// A report and when its run ended.
struct Dated {
    at: tokio::time::Instant,
    report: Arc<Report>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("checks", &self.checks.iter().map(|c| c.name().to_owned()).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// `checks`, each run within `timeout`, their outcome recorded in `metrics`.
    pub(crate) fn new(checks: Arc<[Arc<dyn ReadyCheck>]>, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        Self { checks, timeout, metrics, last: Arc::new(Mutex::new(None)) }
    }

    /// Whether there is any check to run.
    pub(crate) fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// The last report when it is younger than [`FRESH`]; otherwise a new one.
    pub(crate) async fn get(&self) -> Arc<Report> {
        self.fetch(FRESH).await
    }

    /// A new report (for the periodic run that keeps the gauges current).
    pub(crate) async fn refresh(&self) -> Arc<Report> {
        self.fetch(Duration::ZERO).await
    }

    async fn fetch(&self, fresh: Duration) -> Arc<Report> {
        // Requests arriving during a run wait here, then find its report fresh.
        let mut last = self.last.clone().lock_owned().await;
        if let Some(last) = last.as_ref()
            && last.at.elapsed() < fresh
        {
            return last.report.clone();
        }
        let (checks, timeout, metrics) = (self.checks.clone(), self.timeout, self.metrics.clone());
        // On its own task, holding the lock: a client that hangs up mid-run does not
        // cancel the run, so hanging up cannot start one run after another.
        let run = tokio::spawn(async move {
            let report = Arc::new(run(&checks, timeout).await);
            metrics.record_ready(&report.detailed);
            *last = Some(Dated { at: tokio::time::Instant::now(), report: report.clone() });
            report
        });
        match run.await {
            Ok(report) => report,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
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
    use std::sync::atomic::{AtomicUsize, Ordering};

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
        let r = run(&checks, Duration::from_secs(2)).await.detailed;
        assert!(!r.ready);
        assert_eq!(
            r.checks.iter().map(|c| (c.name.as_str(), c.ok)).collect::<Vec<_>>(),
            [("fast", true), ("slow", false), ("broken", false)]
        );
        assert_eq!(r.checks[1].error.as_deref(), Some("timed out after 2s"));
        assert!(r.checks[2].error.as_ref().unwrap().len() <= MAX_REASON + 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_open_report_names_the_failed_check_but_not_its_reason() {
        let checks: Vec<Arc<dyn ReadyCheck>> = vec![
            Arc::new(FnCheck::new("store", || async { Err("unable to open /srv/mltb/data/mltb.db".into()) })),
            Arc::new(FnCheck::new("aria2", std::future::pending)),
            Arc::new(FnCheck::new("telegram", || async { Ok(()) })),
        ];
        let Report { detailed, open } = run(&checks, Duration::from_secs(2)).await;
        let errors = |r: &Readiness| r.checks.iter().map(|c| c.error.clone()).collect::<Vec<_>>();
        assert_eq!(
            errors(&detailed),
            [Some("unable to open /srv/mltb/data/mltb.db".into()), Some("timed out after 2s".into()), None]
        );
        assert_eq!(errors(&open), [Some(WITHHELD.into()), Some("timed out after 2s".into()), None]);
        assert_eq!((open.ready, detailed.ready), (false, false));
        let names = |r: &Readiness| r.checks.iter().map(|c| (c.name.clone(), c.ok)).collect::<Vec<_>>();
        assert_eq!(names(&open), names(&detailed));
    }

    /// A check that counts its runs and takes 100 ms.
    fn counted() -> (Arc<AtomicUsize>, Cache) {
        let runs = Arc::new(AtomicUsize::new(0));
        let check = FnCheck::new("counted", {
            let runs = runs.clone();
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(())
                }
            }
        });
        let checks: Arc<[Arc<dyn ReadyCheck>]> = Arc::from(vec![Arc::new(check) as Arc<dyn ReadyCheck>]);
        (runs, Cache::new(checks, Duration::from_secs(2), Arc::new(Metrics::new())))
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_run_and_a_second_later_the_checks_run_again() {
        let (runs, cache) = counted();
        let reports = futures_util::future::join_all((0..50).map(|_| cache.get())).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(reports.iter().all(|r| Arc::ptr_eq(r, &reports[0]) && r.open.ready));
        // Within the second: the same report, no run.
        tokio::time::advance(Duration::from_millis(800)).await;
        assert!(Arc::ptr_eq(&cache.get().await, &reports[0]));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(200)).await;
        cache.get().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // The periodic run does not wait for the report to age.
        cache.refresh().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_dropped_mid_run_does_not_cancel_the_run() {
        let (runs, cache) = counted();
        assert!(tokio::time::timeout(Duration::from_millis(10), cache.get()).await.is_err());
        let report = cache.get().await;
        assert!(report.detailed.ready);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the second request found the first one's run");
    }
}
