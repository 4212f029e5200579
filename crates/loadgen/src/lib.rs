//! HTTP load generation that reports honest tail latencies: open loop at a fixed rate
//! without coordinated omission, closed loop with the correction shown beside the raw
//! figures, HDR histograms, reports, and a comparison against a saved baseline that
//! tolerates the noise of a shared machine.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use mltb_loadgen::{Plan, Report, Target, Thresholds};
//! # async fn demo() -> mltb_loadgen::Result<()> {
//! let mut plan = Plan::open(2000.0, vec![Target::get("http://127.0.0.1:8080/health")]);
//! plan.connections = 100;
//! plan.duration = Duration::from_secs(10);
//! let mut runs = Vec::new();
//! for _ in 0..3 {
//!     runs.push(mltb_loadgen::run(&plan, None).await?);
//! }
//! let mut report = Report::new("health at 2000 req/s", 0, runs);
//! # let saved = report.clone();
//! report.compare_with(&saved, &Thresholds::default());
//! print!("{}", report.text());
//! assert!(!report.regressed());
//! # Ok(()) }
//! ```
//!
//! # Modes
//!
//! - **Open loop** ([`Plan::open`]): request *i* is due at `start + i / rate`, whatever
//!   the answers do. Up to `connections` workers take the next due request from one
//!   shared schedule; a worker still busy when its request is due sends it late, and
//!   the latency counts from the due time. A server that stalls for one second thus
//!   shows about one second at p99, where a closed-loop tool would show one slow request.
//! - **Closed loop** ([`Plan::closed`]): each user sends, waits for the answer, sends
//!   again. Its raw figures hide stalls (a stalled user sends nothing), so the report
//!   gives both: `uncorrected`, and `latency` corrected as HdrHistogram's
//!   `record_correct` does, with the expected interval being each target's median (or
//!   [`Plan::expected_interval`]).
//!
//! # Figures
//!
//! Per target and overall ([`Stats`]): p50, p90, p95, p99, p99.9, max and mean from HDR
//! histograms (1 µs to 1 h, 3 significant digits), throughput, and errors by kind
//! ([`ErrorCounts`]: status, timeout, connect, io). Requests due during the warm-up
//! are sent but not counted. Failed requests are counted apart and have no latency.
//! [`RunSummary::warnings`] says when the figures describe a lighter load than planned.
//!
//! # Design
//!
//! - **The generator must not be the bottleneck, and must say when it is.** Keep-alive
//!   HTTP/1.1 (one connection per worker) or h2c with prior knowledge (100 workers per
//!   connection) on hyper's client connections, no pool in between; in flight is bounded
//!   by the workers. Workers run on [`Plan::threads`] threads of their own, each a
//!   single-threaded runtime (as wrk runs one event loop per thread). HTTP/1.1 goes
//!   through a lean client of its own, as wrk's does: each request serialised once and
//!   written as is, answers parsed with `httparse` and their bodies skipped, in the
//!   worker's own task (no pool, no channel, no second task); hyper's client, with its
//!   dispatch machinery, cost a third of the throughput on two cores. h2c uses hyper. When a worker is idle at the due time, the timer's wake-up delay
//!   (tokio's timer has millisecond ticks) is the generator's, not the server's: it is
//!   left out of the latency and reported as `lag`; a p99 lag past 5 ms, or an achieved
//!   rate under 95% of the plan, is a warning.
//! - **Bounded.** Nothing is sent after the warm-up plus the duration or beyond
//!   `max_requests`; the run returns at most one timeout later, dropping (and counting)
//!   what is still in flight. Open-loop requests still due at the end because every
//!   connection was busy are not sent late: they are counted as `unsent`, with a warning,
//!   since no latency figure can include them. [`MAX_RUN`], [`MAX_REQUESTS`] and [`MAX_CONNECTIONS`] cap
//!   any plan.
//! - **Loopback only** unless [`Plan::allow_remote`]: every target's host is resolved
//!   and each address must be loopback.
//! - **Sharded recording.** Workers record into a few mutex-guarded shards merged at the
//!   end, so recording stays off the hot path without per-worker histograms.
//! - **Noise.** [`compare`] takes medians of several repetitions and calls a change a
//!   regression only beyond both a relative and an absolute threshold ([`Thresholds`]).

mod client;
mod compare;
mod error;
mod h1;
mod plan;
mod record;
mod report;
mod run;
mod summary;
mod target;

pub use compare::{Comparison, Delta, Figures, Medians, Metric, Thresholds, compare};
pub use error::{Error, ErrorKind, Result};
pub use plan::{MAX_CONNECTIONS, MAX_REQUESTS, MAX_RUN, Mode, Plan, RunSection, Scenario, parse_duration};
pub use report::{REPORT_VERSION, Report, format_ms};
pub use run::{Progress, ProgressSnapshot, run};
pub use summary::{ErrorCounts, Generator, Percentiles, RunSummary, Second, Stats, TargetStats};
pub use target::Target;

#[doc(hidden)]
pub use h1::AnswerReader;
