//! `mltb-baseline`: load an HTTP service open- or closed-loop, report honest tail
//! latencies, and gate a change on a saved baseline.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program reports on its terminal"
)]

mod hello;
mod progress;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mltb_loadgen::{Mode, Plan, Report, Scenario, Target, Thresholds};

/// Exit status when a comparison found a regression.
const REGRESSED: u8 = 1;
/// Exit status when the command could not be carried out.
const FAILED: u8 = 2;

/// Load an HTTP service open-loop (a fixed rate, latency from the intended send time) or
/// closed-loop (N users, with the coordinated-omission correction beside the raw
/// figures); report p50 … p99.9, throughput and errors per target; save a baseline and
/// fail only on a regression beyond both a relative and an absolute threshold.
///
/// Exit status: 0 done (no regression), 1 a regression against --baseline, 2 an error.
#[derive(Debug, Parser)]
#[command(name = "mltb-baseline", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send load, print the summary, write the reports, compare with a baseline.
    Run(Box<RunArgs>),
    /// Compare a saved report with a saved baseline, without sending anything.
    Compare {
        /// The report (JSON, from `run --json` or `--save-baseline`).
        report: PathBuf,
        /// The baseline to compare it with.
        #[arg(long)]
        baseline: PathBuf,
        #[command(flatten)]
        thresholds: ThresholdArgs,
        /// Also write the report, with the comparison, as HTML.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Serve a bare axum "hello" on loopback, the reference a service is measured beside.
    Hello {
        /// Where to listen (loopback only).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: std::net::SocketAddr,
        /// Stop after this long.
        #[arg(long = "for", default_value = "10m", value_parser = duration)]
        run_for: Duration,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// URLs to request (GET unless --method); with --scenario, added to its targets.
    urls: Vec<String>,
    /// A TOML scenario: `[run]` settings and `[[target]]` requests; `${NAME}` in URLs,
    /// headers and bodies is read from the environment. Flags given override [run].
    #[arg(long, short = 's')]
    scenario: Option<PathBuf>,
    /// The method of the URLs given as arguments.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// A header for the URLs given as arguments, `Name: value`; repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// A body for the URLs given as arguments.
    #[arg(long)]
    body: Option<String>,
    /// Open loop at this many requests per second (the default mode, at 1000).
    #[arg(long, conflicts_with = "users")]
    rate: Option<f64>,
    /// Closed loop with this many users, one connection each.
    #[arg(long)]
    users: Option<usize>,
    /// Open loop: the most requests in flight (one connection each) [default: 100].
    #[arg(long, short = 'c')]
    connections: Option<usize>,
    /// Measured time after the warm-up [default: 10s].
    #[arg(long, short = 'd', value_parser = duration)]
    duration: Option<Duration>,
    /// Requests sent but not counted, first [default: 2s].
    #[arg(long, value_parser = duration)]
    warmup: Option<Duration>,
    /// Per-request timeout [default: 5s].
    #[arg(long, value_parser = duration)]
    timeout: Option<Duration>,
    /// The most requests per run, warm-up included.
    #[arg(long)]
    max_requests: Option<u64>,
    /// HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    #[arg(long)]
    http2: bool,
    /// Allow targets that are not on this machine.
    #[arg(long)]
    allow_remote: bool,
    /// Closed loop: the interval the correction assumes [default: each target's median].
    #[arg(long, value_parser = duration)]
    expected_interval: Option<Duration>,
    /// Generator threads, each running its share of the connections [default: the cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Run the plan this many times; medians are compared.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    repeat: u32,
    /// A title for the reports.
    #[arg(long)]
    title: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report here (self-contained).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Save this report as a baseline for later runs' --baseline.
    #[arg(long)]
    save_baseline: Option<PathBuf>,
    /// Compare with this saved baseline; exit 1 on a regression.
    #[arg(long)]
    baseline: Option<PathBuf>,
    #[command(flatten)]
    thresholds: ThresholdArgs,
    /// No progress bar (it is shown only when stderr is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Check the plan and the files, print it, and send nothing.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Args)]
struct ThresholdArgs {
    /// A regression is worse by more than this share, e.g. 25% or 0.25 …
    #[arg(long, default_value = "25%", value_parser = share)]
    max_regression: f64,
    /// … and by more than this much latency, in ms …
    #[arg(long, default_value_t = 1.0)]
    min_regression_ms: f64,
    /// … or, for throughput, this many requests per second …
    #[arg(long, default_value_t = 100.0)]
    min_regression_rps: f64,
    /// … or, for the error rate, this many percentage points.
    #[arg(long, default_value_t = 1.0)]
    min_regression_errors: f64,
}

impl ThresholdArgs {
    fn get(&self) -> Thresholds {
        let mut t = Thresholds::default();
        t.relative = self.max_regression;
        t.latency_ms = self.min_regression_ms;
        t.throughput_rps = self.min_regression_rps;
        t.error_rate = self.min_regression_errors / 100.0;
        t
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    mltb_loadgen::parse_duration(s).map_err(|e| e.to_string())
}

fn share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?}: expected a share such as 25% or 0.25"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("{s:?}: expected a share such as 25% or 0.25"));
    }
    Ok(v)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mltb-baseline: cannot start the runtime: {e}");
            return ExitCode::from(FAILED);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mltb-baseline: {e}");
            ExitCode::from(FAILED)
        }
    }
}

async fn dispatch(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Run(a) => run(*a).await,
        Command::Compare { report, baseline, thresholds, html } => {
            let mut current = read_report(&report)?;
            let base = read_report(&baseline)?;
            current.compare_with(&base, &thresholds.get());
            print!("{}", current.text());
            if let Some(path) = html {
                write(&path, &current.html())?;
            }
            Ok(if current.regressed() { ExitCode::from(REGRESSED) } else { ExitCode::SUCCESS })
        }
        Command::Hello { bind, run_for } => hello::serve(bind, run_for).await.map(|()| ExitCode::SUCCESS),
    }
}

fn read_report(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Report::from_json(&text, &path.display().to_string()).map_err(|e| e.to_string())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The plan from the scenario (if any) and the flags, flags last.
fn plan(a: &RunArgs) -> Result<Plan, String> {
    let mut targets = Vec::new();
    for url in &a.urls {
        let mut t = Target::new(a.method.clone(), url.clone());
        for h in &a.headers {
            t = t.header_line(h).map_err(|e| e.to_string())?;
        }
        if let Some(b) = &a.body {
            t = t.body(b.clone());
        }
        targets.push(t);
    }
    let mut plan = match &a.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut s = Scenario::from_toml(&text, &path.display().to_string())
                .and_then(|s| s.expand(|name| std::env::var(name).ok()))
                .map_err(|e| e.to_string())?;
            s.targets.extend(targets);
            // Mode flags replace the scenario's mode, so check them after.
            if a.rate.is_some() || a.users.is_some() {
                s.run.mode = None;
                s.run.rate = a.rate.or(s.run.rate);
                s.run.users = None;
                if let Some(u) = a.users {
                    s.run.mode = Some("closed".into());
                    s.run.users = Some(u);
                }
            }
            s.plan().map_err(|e| e.to_string())?
        }
        None => match a.users {
            Some(users) => Plan::closed(users, targets),
            None => Plan::open(a.rate.unwrap_or(1000.0), targets),
        },
    };
    if let Some(c) = a.connections {
        plan.connections = c;
    }
    if let Some(d) = a.duration {
        plan.duration = d;
    }
    if let Some(d) = a.warmup {
        plan.warmup = d;
    }
    if let Some(d) = a.timeout {
        plan.timeout = d;
    }
    if let Some(n) = a.max_requests {
        plan.max_requests = n;
    }
    if let Some(t) = a.threads {
        plan.threads = t;
    }
    plan.http2 |= a.http2;
    plan.allow_remote |= a.allow_remote;
    if a.expected_interval.is_some() {
        plan.expected_interval = a.expected_interval;
    }
    plan.validate().map_err(|e| e.to_string())?;
    Ok(plan)
}

fn describe(plan: &Plan) -> String {
    let pace = match plan.mode {
        Mode::Open { rate } => format!("open loop at {rate} req/s, up to {} in flight", plan.connections),
        Mode::Closed { users } => format!("closed loop, {users} users"),
    };
    let names: Vec<String> = plan.targets.iter().map(|t| format!("{} {}", t.method, t.url)).collect();
    format!(
        "{pace}, {:?} measured after {:?} warm-up, timeout {:?}, at most {} requests: {}",
        plan.duration,
        plan.warmup,
        plan.timeout,
        plan.max_requests,
        names.join(", ")
    )
}

fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

async fn run(a: RunArgs) -> Result<ExitCode, String> {
    let plan = plan(&a)?;
    let baseline = a.baseline.as_deref().map(read_report).transpose()?;
    if a.check {
        println!("ok: {}", describe(&plan));
        return Ok(ExitCode::SUCCESS);
    }
    let title = a.title.clone().unwrap_or_else(|| {
        let names: Vec<String> = plan.targets.iter().map(Target::display_name).collect();
        format!("mltb-baseline: {}", names.join(", "))
    });
    let started = unix_ms();
    let mut load = Vec::new();
    load.extend(load_average());
    let show = !a.no_progress && std::io::stderr().is_terminal();
    let mut runs = Vec::new();
    for i in 0..a.repeat {
        let p = Arc::new(mltb_loadgen::Progress::new());
        let bar = show.then(|| progress::spawn(p.clone(), format!("run {}/{}", i + 1, a.repeat)));
        let result = mltb_loadgen::run(&plan, Some(p)).await;
        if let Some(bar) = bar {
            bar.finish().await;
        }
        runs.push(result.map_err(|e| e.to_string())?);
    }
    load.extend(load_average());
    let mut report = Report::new(title, started, runs);
    report.load = load;
    if let Some(b) = &baseline {
        report.compare_with(b, &a.thresholds.get());
    }
    print!("{}", report.text());
    let json = report.to_json();
    if let Some(path) = &a.json {
        write(path, &json)?;
    }
    if let Some(path) = &a.save_baseline {
        write(path, &json)?;
        println!("baseline saved to {}", path.display());
    }
    if let Some(path) = &a.html {
        write(path, &report.html())?;
    }
    Ok(if report.regressed() { ExitCode::from(REGRESSED) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_as_percent_or_fraction() {
        assert_eq!(share("25%"), Ok(0.25));
        assert_eq!(share("0.1"), Ok(0.1));
        assert!(share("lots").unwrap_err().contains("such as 25%"));
    }
}
