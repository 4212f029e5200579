//! What a run does: the [`Plan`] (mode, targets, bounds), and the TOML [`Scenario`] it
//! can be read from.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::target::Target;

/// The longest a run's warm-up plus measurement may last.
pub const MAX_RUN: Duration = Duration::from_secs(3600);
/// The most requests a run may send, whatever else it says.
pub const MAX_REQUESTS: u64 = 100_000_000;
/// The most connections (or users) a run may open.
pub const MAX_CONNECTIONS: usize = 10_000;

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Mode {
    /// A fixed rate on a timeline that does not depend on responses (requests per
    /// second, overall). Latency runs from each request's intended send time.
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// `users` users, each sending its next request when the previous answer arrives.
    /// Latency is reported both raw and corrected for coordinated omission.
    Closed {
        /// Concurrent users, one connection each.
        users: usize,
    },
}

/// A run: its targets, mode and bounds. Start from [`Plan::open`] or [`Plan::closed`] and
/// set the fields; [`run`](crate::run) validates it first.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Plan {
    /// What to request; each request picks one by weight, in a fixed rotation.
    pub targets: Vec<Target>,
    /// How requests are paced.
    pub mode: Mode,
    /// Open loop: the most requests in flight at once, each on its own HTTP/1.1
    /// connection (or h2 stream). Closed loop: ignored (one per user).
    pub connections: usize,
    /// How long requests are measured, after the warm-up.
    pub duration: Duration,
    /// How long requests are sent but not counted, first.
    pub warmup: Duration,
    /// How long one request may take before it counts as a timeout.
    pub timeout: Duration,
    /// The most requests sent in all (warm-up included).
    pub max_requests: u64,
    /// HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub http2: bool,
    /// Allow targets that are not on this machine.
    pub allow_remote: bool,
    /// Closed loop: the interval each user is expected to send at, for the correction.
    /// The median of the raw latencies of each target when `None`.
    pub expected_interval: Option<Duration>,
    /// Threads the generator runs its workers on (each its own single-threaded runtime);
    /// the machine's cores by default.
    pub threads: usize,
}

impl Plan {
    /// An open-loop plan at `rate` requests per second: 10 s measured after 2 s of
    /// warm-up, up to 100 requests in flight, 5 s timeout.
    pub fn open(rate: f64, targets: Vec<Target>) -> Self {
        Self::new(Mode::Open { rate }, targets)
    }

    /// A closed-loop plan with `users` users: 10 s measured after 2 s of warm-up.
    pub fn closed(users: usize, targets: Vec<Target>) -> Self {
        Self::new(Mode::Closed { users }, targets)
    }

    fn new(mode: Mode, targets: Vec<Target>) -> Self {
        Self {
            targets,
            mode,
            connections: 100,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            max_requests: MAX_REQUESTS,
            http2: false,
            allow_remote: false,
            expected_interval: None,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }

    /// How many concurrent workers the run has: connections (open) or users (closed).
    pub fn workers(&self) -> usize {
        match self.mode {
            Mode::Open { .. } => self.connections,
            Mode::Closed { users } => users,
        }
    }

    /// Checks every setting, naming the first bad one and what was expected.
    pub fn validate(&self) -> Result<()> {
        if self.targets.is_empty() {
            return Err(Error::invalid("targets", "none given: expected at least one URL"));
        }
        match self.mode {
            Mode::Open { rate } if !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0) => {
                return Err(Error::invalid(
                    "rate",
                    format!("{rate}: expected 0 < rate <= 1000000 requests/s"),
                ));
            }
            Mode::Closed { users } if users == 0 || users > MAX_CONNECTIONS => {
                return Err(Error::invalid("users", format!("{users}: expected 1 to {MAX_CONNECTIONS}")));
            }
            _ => {}
        }
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return Err(Error::invalid(
                "connections",
                format!("{}: expected 1 to {MAX_CONNECTIONS}", self.connections),
            ));
        }
        if self.duration.is_zero() || self.duration + self.warmup > MAX_RUN {
            return Err(Error::invalid(
                "duration",
                format!(
                    "{:?} (+{:?} warm-up): expected more than zero and at most {:?} in all",
                    self.duration, self.warmup, MAX_RUN
                ),
            ));
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(300) {
            return Err(Error::invalid(
                "timeout",
                format!("{:?}: expected more than 0 and at most 300 s", self.timeout),
            ));
        }
        if self.max_requests == 0 || self.max_requests > MAX_REQUESTS {
            return Err(Error::invalid(
                "max_requests",
                format!("{}: expected 1 to {MAX_REQUESTS}", self.max_requests),
            ));
        }
        if self.threads == 0 || self.threads > 256 {
            return Err(Error::invalid("threads", format!("{}: expected 1 to 256", self.threads)));
        }
        if self.expected_interval.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid("expected_interval", "0: expected more than zero"));
        }
        for t in &self.targets {
            crate::target::parse(t)?;
        }
        Ok(())
    }
}

/// Parses `250ms`, `10s`, `2m`, `1h` or a bare number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let bad = || {
        Error::invalid(
            format!("duration {s:?}"),
            "expected a number and a unit, such as 500ms, 10s, 2m or 1h",
        )
    };
    let n: f64 = n.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A plan written as TOML: a `[run]` table and one `[[target]]` per request.
///
/// ```
/// let s = mltb_loadgen::Scenario::from_toml(r#"
///     [run]
///     mode = "open"
///     rate = 500
///     duration = "5s"
///
///     [[target]]
///     name = "health"
///     url = "http://127.0.0.1:8080/health"
///
///     [[target]]
///     url = "http://127.0.0.1:8080/api/v1/tasks"
///     headers = { authorization = "Bearer ${MLTB_API_TOKEN}" }
/// "#, "scenario.toml").unwrap();
/// let s = s.expand(|name| (name == "MLTB_API_TOKEN").then(|| "t0ken".to_owned())).unwrap();
/// let plan = s.plan().unwrap();
/// assert_eq!(plan.targets[1].headers["authorization"], "Bearer t0ken");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Scenario {
    /// The pacing and bounds.
    #[serde(default)]
    pub run: RunSection,
    /// The requests.
    #[serde(default, rename = "target")]
    pub targets: Vec<Target>,
}

/// The `[run]` table of a [`Scenario`]; absent keys take [`Plan`]'s defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RunSection {
    /// `"open"` (the default) or `"closed"`.
    pub mode: Option<String>,
    /// Open loop: requests per second.
    pub rate: Option<f64>,
    /// Closed loop: users.
    pub users: Option<usize>,
    /// Open loop: the most requests in flight.
    pub connections: Option<usize>,
    /// Measured time, e.g. `"10s"`.
    pub duration: Option<String>,
    /// Warm-up, e.g. `"2s"`.
    pub warmup: Option<String>,
    /// Per-request timeout, e.g. `"5s"`.
    pub timeout: Option<String>,
    /// The most requests in all.
    pub max_requests: Option<u64>,
    /// h2c instead of HTTP/1.1.
    pub http2: Option<bool>,
    /// Allow targets off this machine.
    pub allow_remote: Option<bool>,
    /// Closed loop: the correction's expected interval, e.g. `"1ms"`.
    pub expected_interval: Option<String>,
    /// Generator threads.
    pub threads: Option<usize>,
}

impl Scenario {
    /// Parses a scenario; `path` names it in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::parse(path, e.to_string()))
    }

    /// Replaces `${NAME}` in URLs, header values and bodies with `lookup(NAME)`, so that
    /// secrets such as API tokens stay out of scenario files. An unknown name is an error.
    pub fn expand(mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        for t in &mut self.targets {
            t.url = expand_str(&t.url, &lookup)?;
            for v in t.headers.values_mut() {
                *v = expand_str(v, &lookup)?;
            }
            if let Some(b) = &mut t.body {
                *b = expand_str(b, &lookup)?;
            }
        }
        Ok(self)
    }

    /// The plan this scenario describes.
    pub fn plan(&self) -> Result<Plan> {
        let r = &self.run;
        let mode = match r.mode.as_deref().unwrap_or("open") {
            "open" => Mode::Open {
                rate: r
                    .rate
                    .ok_or_else(|| Error::invalid("run.rate", "missing: an open-loop run needs a rate"))?,
            },
            "closed" => Mode::Closed {
                users: r
                    .users
                    .ok_or_else(|| Error::invalid("run.users", "missing: a closed-loop run needs users"))?,
            },
            other => {
                return Err(Error::invalid(
                    "run.mode",
                    format!("{other:?}: expected \"open\" or \"closed\""),
                ));
            }
        };
        let mut plan = Plan::new(mode, self.targets.clone());
        if let Some(c) = r.connections {
            plan.connections = c;
        }
        if let Some(d) = &r.duration {
            plan.duration = parse_duration(d)?;
        }
        if let Some(d) = &r.warmup {
            plan.warmup = parse_duration(d)?;
        }
        if let Some(d) = &r.timeout {
            plan.timeout = parse_duration(d)?;
        }
        if let Some(n) = r.max_requests {
            plan.max_requests = n;
        }
        plan.http2 = r.http2.unwrap_or(false);
        plan.allow_remote = r.allow_remote.unwrap_or(false);
        plan.expected_interval = r.expected_interval.as_deref().map(parse_duration).transpose()?;
        if let Some(t) = r.threads {
            plan.threads = t;
        }
        plan.validate()?;
        Ok(plan)
    }
}

fn expand_str(s: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| Error::invalid(format!("{s:?}"), "an unclosed ${…}: expected ${NAME}"))?;
        let name = &after[..end];
        let value = lookup(name).ok_or_else(|| {
            Error::invalid(
                format!("${{{name}}}"),
                "not set: set it in the environment, or remove it from the scenario",
            )
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_say_the_form() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").unwrap_err().to_string().contains("such as 500ms"));
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn plans_are_validated_with_the_setting_named() {
        let t = vec![Target::get("http://127.0.0.1:1/")];
        assert!(Plan::open(100.0, t.clone()).validate().is_ok());
        let err = Plan::open(0.0, t.clone()).validate().unwrap_err().to_string();
        assert!(err.contains("rate"), "{err}");
        let err = Plan::closed(0, t.clone()).validate().unwrap_err().to_string();
        assert!(err.contains("users"), "{err}");
        let mut p = Plan::open(1.0, t);
        p.duration = Duration::from_secs(7200);
        assert!(p.validate().unwrap_err().to_string().contains("duration"));
        assert!(Plan::open(1.0, vec![]).validate().unwrap_err().to_string().contains("targets"));
    }

    #[test]
    fn scenarios_read_modes_and_refuse_unknown_keys() {
        let s = Scenario::from_toml(
            "[run]\nmode = \"closed\"\nusers = 3\nduration = \"1s\"\nwarmup = \"0s\"\n[[target]]\nurl = \"http://127.0.0.1:1/x\"\nmethod = \"POST\"\nbody = \"{}\"\n",
            "s.toml",
        )
        .unwrap();
        let p = s.plan().unwrap();
        assert_eq!(p.mode, Mode::Closed { users: 3 });
        assert_eq!(p.targets[0].method, "POST");
        let err = Scenario::from_toml("[run]\nrte = 5\n", "s.toml").unwrap_err().to_string();
        assert!(err.starts_with("s.toml: ") && err.contains("rte"), "{err}");
        let err = Scenario::from_toml("[run]\nrate = 5\n", "s.toml").unwrap().plan().unwrap_err().to_string();
        assert!(err.contains("targets"), "{err}");
        let s = Scenario::from_toml("[[target]]\nurl = \"http://h/${NOPE}\"\n", "s.toml").unwrap();
        assert!(s.expand(|_| None).unwrap_err().to_string().contains("${NOPE}"));
    }
}
