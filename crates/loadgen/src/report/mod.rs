//! The [`Report`] of one invocation (its runs, their medians, a comparison), and its
//! three forms: JSON (serde), a terminal summary ([`Report::text`]) and one
//! self-contained HTML page ([`Report::html`]).

mod html;
mod text;

use serde::{Deserialize, Serialize};

use crate::compare::{Comparison, Medians, Thresholds, compare};
use crate::error::{Error, Result};
use crate::summary::RunSummary;

/// The report's format version, raised when a field changes meaning.
pub const REPORT_VERSION: u32 = 1;

/// Runs of one plan, repeated, and what they came to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// What was measured, in a few words.
    pub title: String,
    /// When the first run started, as Unix milliseconds.
    pub started_unix_ms: u64,
    /// The machine's load when the runs started and ended (e.g. `/proc/loadavg`), so a
    /// reader can judge the noise.
    pub load: Vec<String>,
    /// Each repetition.
    pub runs: Vec<RunSummary>,
    /// The median of each figure over the runs.
    pub median: Medians,
    /// Against a baseline, when one was given.
    pub comparison: Option<Comparison>,
}

impl Report {
    /// A report of `runs`, with their medians.
    pub fn new(title: impl Into<String>, started_unix_ms: u64, runs: Vec<RunSummary>) -> Self {
        let median = Medians::of(&runs);
        Self {
            version: REPORT_VERSION,
            title: title.into(),
            started_unix_ms,
            load: Vec::new(),
            runs,
            median,
            comparison: None,
        }
    }

    /// Compares this report's medians with `baseline`'s and keeps the result.
    pub fn compare_with(&mut self, baseline: &Report, thresholds: &Thresholds) -> &Comparison {
        let mut c = compare(&baseline.median, &self.median, thresholds);
        if let (Some(b), Some(n)) = (baseline.runs.first(), self.runs.first()) {
            let plan = |r: &RunSummary| {
                let pace = match r.rate {
                    Some(rate) => format!("open loop at {rate} req/s, {} connections", r.concurrency),
                    None => format!("closed loop, {} users", r.concurrency),
                };
                format!("{pace}, {}, {} s", r.protocol, r.duration_s)
            };
            let (before, now) = (plan(b), plan(n));
            if before != now {
                c.notes.push(format!("the baseline's plan differs: {before} then, {now} now"));
            }
        }
        self.comparison.insert(c)
    }

    /// Whether a comparison found a regression.
    pub fn regressed(&self) -> bool {
        self.comparison.as_ref().is_some_and(Comparison::regressed)
    }

    /// Every run's warnings, once each.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, r) in self.runs.iter().enumerate() {
            for w in &r.warnings {
                let w = if self.runs.len() > 1 { format!("run {}: {w}", i + 1) } else { w.clone() };
                out.push(w);
            }
        }
        out
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Reads a report (or a saved baseline) written by [`to_json`](Self::to_json); `path`
    /// names it in errors.
    pub fn from_json(text: &str, path: &str) -> Result<Self> {
        let r: Self = serde_json::from_str(text)
            .map_err(|e| Error::parse(path, format!("not an mltb-baseline report: {e}")))?;
        if r.version != REPORT_VERSION {
            return Err(Error::parse(
                path,
                format!(
                    "report version {}; this build reads version {REPORT_VERSION}: save the baseline again",
                    r.version
                ),
            ));
        }
        if r.runs.is_empty() {
            return Err(Error::parse(path, "holds no run"));
        }
        Ok(r)
    }

    /// The terminal summary.
    pub fn text(&self) -> String {
        text::render(self)
    }

    /// One HTML page with its plots as inline SVG; it loads nothing from elsewhere.
    pub fn html(&self) -> String {
        html::render(self)
    }
}

/// Seconds for people: `10 s`, `0.5 s`.
pub(crate) fn format_secs(s: f64) -> String {
    if (s - s.round()).abs() < 1e-9 { format!("{s:.0} s") } else { format!("{s:.1} s") }
}

/// `ms` for people: `0.213 ms`, `12.4 ms`, `1.02 s`.
pub fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.3} ms")
    }
}
