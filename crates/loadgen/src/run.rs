//! The runner: workers, the open-loop schedule and the closed loop, bounded in time and
//! count, and the summary at the end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{Conns, H2_STREAMS, H2Slot, Outcome};
use crate::error::{Error, Result};
use crate::plan::{Mode, Plan};
use crate::record::{self, Recorder, Sample, micros};
use crate::summary::{Generator, RunSummary, TargetStats};
use crate::target::{self, Prepared};

/// Recorder shards: workers `w` record into shard `w % SHARDS`.
const SHARDS: usize = 8;
/// After a failed connect, a closed-loop user waits this long before trying again, so a
/// server that is down is not hammered in a tight loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);
/// The generator is said to fall behind when it sends less than this share of the rate.
const RATE_KEPT: f64 = 0.95;
/// … or when it wakes this much late (p99) with a connection free.
const LAG_WARN_MS: f64 = 5.0;

/// Live counters of a run, for a progress display: read them from another task while
/// [`run`] goes on.
#[derive(Debug, Default)]
pub struct Progress {
    sent: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    window: Mutex<Option<(std::time::Instant, Duration)>>,
}

/// A reading of [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ProgressSnapshot {
    /// Time since the run started (warm-up included).
    pub elapsed: Duration,
    /// The run's planned length (warm-up included).
    pub total: Duration,
    /// Requests sent.
    pub sent: u64,
    /// Requests completed.
    pub done: u64,
    /// Of those, failed.
    pub failed: u64,
}

impl Progress {
    /// New counters, at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let window = *self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let (elapsed, total) = window.map_or((Duration::ZERO, Duration::ZERO), |(s, t)| (s.elapsed(), t));
        ProgressSnapshot {
            elapsed,
            total,
            sent: self.sent.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

struct Shared {
    targets: Vec<Prepared>,
    endpoints: Vec<SocketAddr>,
    /// Target indices in rotation, each repeated by its weight.
    rotation: Vec<usize>,
    start: Instant,
    warmup_end: Instant,
    end: Instant,
    timeout: Duration,
    /// Open loop: the next request's index on the schedule; closed loop: requests issued.
    next: AtomicU64,
    /// Requests on the schedule (open) or the most to send (closed).
    limit: u64,
    /// Open loop: nanoseconds between intended sends.
    interval_ns: f64,
    shards: Vec<Mutex<Recorder>>,
    progress: Arc<Progress>,
}

impl Shared {
    fn record(&self, worker: usize, s: Sample) {
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        if s.outcome != Outcome::Ok {
            self.progress.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.shard(worker).record(s);
    }

    fn shard(&self, worker: usize) -> std::sync::MutexGuard<'_, Recorder> {
        self.shards[worker % self.shards.len()].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn second(&self, at: Instant) -> usize {
        usize::try_from(at.saturating_duration_since(self.warmup_end).as_secs()).unwrap_or(usize::MAX)
    }
}

/// Runs `plan` to the end and summarises it; `progress`, when given, is kept up to date.
///
/// The run is bounded: no request is sent after the warm-up plus the duration, none
/// beyond `max_requests`, and the run returns at most one timeout after that, dropping
/// (and counting) what is still in flight.
pub async fn run(plan: &Plan, progress: Option<Arc<Progress>>) -> Result<RunSummary> {
    plan.validate()?;
    let mut endpoints: Vec<SocketAddr> = Vec::new();
    let mut targets = Vec::new();
    for t in &plan.targets {
        let parsed = target::parse(t)?;
        let addr = target::resolve(&t.url, &parsed.host, parsed.port, plan.allow_remote).await?;
        let endpoint = endpoints.iter().position(|a| *a == addr).unwrap_or_else(|| {
            endpoints.push(addr);
            endpoints.len() - 1
        });
        targets.push(parsed.into_prepared(endpoint));
    }
    let rotation: Vec<usize> = plan
        .targets
        .iter()
        .enumerate()
        .flat_map(|(i, t)| std::iter::repeat_n(i, t.weight as usize))
        .collect();
    let workers = plan.workers();
    let (limit, interval_ns) = match plan.mode {
        Mode::Open { rate } => {
            let scheduled = (rate * (plan.warmup + plan.duration).as_secs_f64()).floor() as u64;
            (scheduled.min(plan.max_requests), 1e9 / rate)
        }
        Mode::Closed { .. } => (plan.max_requests, 0.0),
    };
    let progress = progress.unwrap_or_default();
    // Workers start a little after they are spawned, so the first intended sends are not
    // already late.
    let start = Instant::now() + Duration::from_millis(20);
    *progress.window.lock().unwrap_or_else(PoisonError::into_inner) =
        Some((start.into_std(), plan.warmup + plan.duration));
    let shared = Arc::new(Shared {
        targets,
        rotation,
        start,
        warmup_end: start + plan.warmup,
        end: start + plan.warmup + plan.duration,
        timeout: plan.timeout,
        next: AtomicU64::new(0),
        limit,
        interval_ns,
        shards: (0..SHARDS.min(workers)).map(|_| Mutex::new(Recorder::new(plan.targets.len()))).collect(),
        progress: progress.clone(),
        endpoints,
    });
    // Hard bound: what is still in flight one timeout after the end is dropped.
    let hard_end = shared.end + plan.timeout + Duration::from_millis(200);
    // Workers run on threads of their own, each a single-threaded runtime (as wrk runs
    // one event loop per thread): a worker and its connection never hop threads.
    let threads = plan.threads.clamp(1, workers);
    let mut finished = Vec::with_capacity(threads);
    for th in 0..threads {
        let mine: Vec<usize> = (th..workers).step_by(threads).collect();
        let shared = shared.clone();
        let (mode, http2) = (plan.mode, plan.http2);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::invalid("generator threads", format!("cannot start a runtime: {e}")))?;
        std::thread::Builder::new()
            .name(format!("loadgen-{th}"))
            .spawn(move || {
                let _ = tx.send(runtime.block_on(drive(shared, mine, mode, http2, hard_end)));
            })
            .map_err(|e| Error::invalid("generator threads", format!("cannot start a thread: {e}")))?;
        finished.push(rx);
    }
    let mut in_flight_left = 0u64;
    for rx in finished {
        in_flight_left += rx.await.unwrap_or(0);
    }

    let mut all = Recorder::new(plan.targets.len());
    for shard in &shared.shards {
        all.add(&shard.lock().unwrap_or_else(PoisonError::into_inner));
    }
    Ok(summarise(plan, &shared, &all, in_flight_left))
}

/// Runs `workers` on this thread until they end or `hard_end` passes; how many were
/// still busy then.
async fn drive(shared: Arc<Shared>, workers: Vec<usize>, mode: Mode, http2: bool, hard_end: Instant) -> u64 {
    let h2_groups: Vec<Vec<Arc<H2Slot>>> = if http2 {
        (0..workers.len().div_ceil(H2_STREAMS))
            .map(|_| (0..shared.endpoints.len()).map(|_| Arc::new(H2Slot::default())).collect())
            .collect()
    } else {
        Vec::new()
    };
    let mut set = tokio::task::JoinSet::new();
    for (k, &w) in workers.iter().enumerate() {
        let conns = Conns::new(shared.endpoints.len(), h2_groups.get(k / H2_STREAMS).cloned());
        let shared = shared.clone();
        match mode {
            Mode::Open { .. } => set.spawn(open_worker(shared, w, conns)),
            Mode::Closed { .. } => set.spawn(closed_worker(shared, w, conns)),
        };
    }
    loop {
        match tokio::time::timeout_at(hard_end, set.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => return 0,
            Err(_) => {
                let left = set.len() as u64;
                set.abort_all();
                while set.join_next().await.is_some() {}
                return left;
            }
        }
    }
}

/// Open loop: take the next slot on the shared schedule, wait for its time, send. Nothing
/// is sent after the end: what was due and not sent by then is counted as unsent.
async fn open_worker(shared: Arc<Shared>, worker: usize, mut conns: Conns) {
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.limit {
            break;
        }
        let intended = shared.start + Duration::from_nanos((i as f64 * shared.interval_ns) as u64);
        let now = Instant::now();
        if intended >= shared.end || now >= shared.end {
            break;
        }
        // Busy past the intended time: the wait for this connection is the server's (or
        // the in-flight bound's) doing and counts in the latency.
        let busy = now > intended;
        if !busy {
            tokio::time::sleep_until(intended).await;
        }
        let sent = Instant::now();
        // Idle at the intended time: how late the timer woke is the generator's doing,
        // not the server's, and is reported apart.
        let woke_late = if busy { None } else { Some(sent - intended) };
        shared.progress.sent.fetch_add(1, Ordering::Relaxed);
        let target = shared.rotation[(i % shared.rotation.len() as u64) as usize];
        let t = &shared.targets[target];
        let outcome = conns.send(t, shared.endpoints[t.endpoint], shared.timeout).await;
        let done = Instant::now();
        shared.record(
            worker,
            Sample {
                target,
                outcome,
                latency: done - intended - woke_late.unwrap_or_default(),
                uncorrected: done - sent,
                warmup: intended < shared.warmup_end,
                second: shared.second(done),
                waited: busy,
                lag: woke_late,
            },
        );
    }
}

/// Closed loop: send, wait for the answer, send again, until the end or the count.
async fn closed_worker(shared: Arc<Shared>, worker: usize, mut conns: Conns) {
    tokio::time::sleep_until(shared.start).await;
    loop {
        let sent = Instant::now();
        if sent >= shared.end {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.limit {
            break;
        }
        shared.progress.sent.fetch_add(1, Ordering::Relaxed);
        let target = shared.rotation[(i % shared.rotation.len() as u64) as usize];
        let t = &shared.targets[target];
        let outcome = conns.send(t, shared.endpoints[t.endpoint], shared.timeout).await;
        let done = Instant::now();
        shared.record(
            worker,
            Sample {
                target,
                outcome,
                latency: done - sent,
                uncorrected: done - sent,
                warmup: sent < shared.warmup_end,
                second: shared.second(done),
                waited: false,
                lag: None,
            },
        );
        if outcome == Outcome::Connect {
            tokio::time::sleep(CONNECT_BACKOFF).await;
        }
    }
}

fn summarise(plan: &Plan, shared: &Shared, all: &Recorder, abandoned: u64) -> RunSummary {
    let seconds = plan.duration.as_secs_f64();
    let mut all = all.clone();
    let closed = matches!(plan.mode, Mode::Closed { .. });
    let mut intervals = Vec::new();
    if closed {
        // Each user is expected to send once per typical answer time: the correction
        // adds the requests a stalled user would have sent meanwhile.
        for t in &mut all.targets {
            let interval =
                plan.expected_interval.map_or_else(|| t.uncorrected.value_at_quantile(0.5).max(1), micros);
            intervals.push(interval);
            t.latency = record::corrected(&t.uncorrected, interval);
        }
    }
    let mut overall = record::TargetRec::new();
    for t in &all.targets {
        overall.add(t);
    }
    let targets: Vec<TargetStats> = all
        .targets
        .iter()
        .zip(&shared.targets)
        .map(|(rec, p)| TargetStats {
            name: p.name.clone(),
            method: p.method.to_string(),
            url: p.url.clone(),
            stats: record::stats(rec, seconds),
        })
        .collect();

    let measured_sent = all.sent - all.warmup;
    let mut generator = Generator {
        unsent: if closed { 0 } else { shared.limit.saturating_sub(all.sent) },
        sent: all.sent,
        warmup_requests: all.warmup,
        achieved_rate: measured_sent as f64 / seconds,
        waited_for_connection: all.waited,
        abandoned,
        ..Generator::default()
    };
    if !all.lag.is_empty() {
        generator.lag_p99_ms = all.lag.value_at_quantile(0.99) as f64 / 1000.0;
        generator.lag_max_ms = all.lag.max() as f64 / 1000.0;
    }

    let mut warnings = Vec::new();
    let (mode, rate) = match plan.mode {
        Mode::Open { rate } => {
            let scheduled_total = shared.limit;
            let warm = (rate * plan.warmup.as_secs_f64()).floor() as u64;
            generator.scheduled = scheduled_total.saturating_sub(warm.min(scheduled_total));
            if plan.max_requests < (rate * (plan.warmup + plan.duration).as_secs_f64()) as u64 {
                warnings.push(format!(
                    "max_requests ({}) cut the schedule short: the rate held only for the first {} requests",
                    plan.max_requests, plan.max_requests
                ));
            } else if generator.achieved_rate < rate * RATE_KEPT {
                warnings.push(format!(
                    "the generator sent {:.0} req/s of the {rate:.0} requested: it could not keep the rate, so the figures describe a lighter load than asked; \
                     raise --connections if they were all busy, or give the generator more CPU",
                    generator.achieved_rate
                ));
            }
            if generator.lag_p99_ms > LAG_WARN_MS {
                warnings.push(format!(
                    "the generator woke late to send (p99 {:.1} ms, worst {:.1} ms) with connections free: it is short of CPU, and the server saw a burstier load than planned",
                    generator.lag_p99_ms, generator.lag_max_ms
                ));
            }
            if generator.unsent > 0 {
                warnings.push(format!(
                    "{} requests due before the end were never sent (all {} connections busy until then); the latency figures cannot include them",
                    generator.unsent, plan.connections
                ));
            }
            if all.sent > 0 && all.waited * 100 > all.sent {
                warnings.push(format!(
                    "{:.1}% of requests waited for a free connection (all {} busy); the wait is in their latency, as a user would see it",
                    all.waited as f64 * 100.0 / all.sent as f64,
                    plan.connections
                ));
            }
            ("open", Some(rate))
        }
        Mode::Closed { .. } => ("closed", None),
    };
    if abandoned > 0 {
        warnings.push(format!("{abandoned} workers still had a request in flight at the hard deadline; those requests are not counted"));
    }
    if overall.ok == 0 {
        warnings.push("no request succeeded: there is no latency to report".into());
    }

    let expected_interval_ms = if closed {
        plan.expected_interval
            .map(|d| d.as_secs_f64() * 1000.0)
            .or_else(|| (intervals.len() == 1).then(|| intervals[0] as f64 / 1000.0))
    } else {
        None
    };
    RunSummary {
        mode: mode.into(),
        rate,
        concurrency: plan.workers(),
        protocol: if plan.http2 { "h2c".into() } else { "HTTP/1.1".into() },
        duration_s: seconds,
        warmup_s: plan.warmup.as_secs_f64(),
        expected_interval_ms,
        overall: record::stats(&overall, seconds),
        targets,
        timeline: all.timeline(seconds.ceil() as usize),
        generator,
        warnings,
    }
}
