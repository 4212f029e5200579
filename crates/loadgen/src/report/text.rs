//! The terminal summary.

use std::fmt::Write;

use super::{Report, format_ms, format_secs};
use crate::summary::{Percentiles, RunSummary, Stats};

fn describe_run(r: &RunSummary) -> String {
    let pace = match r.rate {
        Some(rate) => format!("open loop at {rate:.0} req/s, up to {} in flight", r.concurrency),
        None => format!("closed loop, {} users", r.concurrency),
    };
    format!(
        "{pace}, {}, {} measured after {} warm-up",
        r.protocol,
        format_secs(r.duration_s),
        format_secs(r.warmup_s)
    )
}

fn row(out: &mut String, name: &str, s: &Stats, p: &Percentiles) {
    // No answer, no latency: a dash rather than a zero that reads as fast.
    let ms = |v: f64| if s.ok == 0 { "—".to_owned() } else { format_ms(v) };
    let _ = writeln!(
        out,
        "  {name:<16} {:>9} {:>9.0} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  {:>6.2}% {}",
        s.requests,
        s.throughput_rps,
        ms(p.p50),
        ms(p.p90),
        ms(p.p95),
        ms(p.p99),
        ms(p.p999),
        ms(p.max),
        s.error_rate * 100.0,
        if s.errors.total() > 0 { format!("({})", s.errors.describe()) } else { String::new() },
    );
}

fn header(out: &mut String) {
    let _ = writeln!(
        out,
        "  {:<16} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  {:>7}",
        "target", "requests", "req/s", "p50", "p90", "p95", "p99", "p99.9", "max", "errors"
    );
}

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let Some(first) = report.runs.first() else { return "no run\n".into() };
    let _ = writeln!(out, "{}", report.title);
    let _ = writeln!(out, "{}", describe_run(first));
    for (i, r) in report.runs.iter().enumerate() {
        if report.runs.len() > 1 {
            let _ = writeln!(out, "\nrun {} of {}", i + 1, report.runs.len());
        } else {
            out.push('\n');
        }
        let uncorrected = if r.mode == "open" {
            "uncorrected (service time from the actual send)"
        } else {
            "uncorrected (raw response times; coordinated omission not corrected)"
        };
        let _ = writeln!(
            out,
            "latency{}",
            if r.mode == "open" {
                " from the intended send time"
            } else {
                " corrected for coordinated omission"
            }
        );
        header(&mut out);
        for t in &r.targets {
            row(&mut out, &t.name, &t.stats, &t.stats.latency);
        }
        if r.targets.len() > 1 {
            row(&mut out, "overall", &r.overall, &r.overall.latency);
        }
        let _ = writeln!(out, "{uncorrected}");
        for t in &r.targets {
            row(&mut out, &t.name, &t.stats, &t.stats.uncorrected);
        }
        let g = &r.generator;
        let _ = writeln!(
            out,
            "generator: {} sent ({} in warm-up), {:.0} req/s achieved{}",
            g.sent,
            g.warmup_requests,
            g.achieved_rate,
            if r.mode == "open" {
                format!(
                    ", wake-up lag p99 {}, {} waited for a connection{}",
                    format_ms(g.lag_p99_ms),
                    g.waited_for_connection,
                    if g.unsent > 0 { format!(", {} due but never sent", g.unsent) } else { String::new() }
                )
            } else {
                r.expected_interval_ms
                    .map(|ms| format!(", correction interval {}", format_ms(ms)))
                    .unwrap_or_else(|| ", correction interval: each target's median".into())
            }
        );
    }
    if report.runs.len() > 1 {
        let m = &report.median;
        let _ = writeln!(out, "\nmedian of {} runs", m.runs);
        let _ = writeln!(
            out,
            "  {:<16} {:>9} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "target", "req/s", "p50", "p95", "p99", "p99.9", "errors"
        );
        let mut line = |name: &str, f: &crate::compare::Figures| {
            let _ = writeln!(
                out,
                "  {name:<16} {:>9.0} {:>10} {:>10} {:>10} {:>10} {:>7.2}%",
                f.throughput_rps,
                format_ms(f.p50_ms),
                format_ms(f.p95_ms),
                format_ms(f.p99_ms),
                format_ms(f.p999_ms),
                f.error_rate * 100.0
            );
        };
        for (name, f) in &m.targets {
            line(name, f);
        }
        if m.targets.len() > 1 {
            line("overall", &m.overall);
        }
    }
    if let Some(c) = &report.comparison {
        let t = &c.thresholds;
        let _ = writeln!(
            out,
            "\nagainst the baseline (a regression is worse by more than {:.0}% and by more than {} / {:.0} req/s / {:.1} error points)",
            t.relative * 100.0,
            format_ms(t.latency_ms),
            t.throughput_rps,
            t.error_rate * 100.0
        );
        for d in &c.deltas {
            let mark = if d.regressed { "REGRESSED" } else { "ok" };
            let _ = writeln!(out, "  {mark:<9} {}", d.describe());
        }
        for note in &c.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        for name in &c.unmatched {
            let _ = writeln!(out, "  not compared: {name} is in only one of the two");
        }
        let n = c.regressions().count();
        let _ = writeln!(
            out,
            "{}",
            if n == 0 { "no regression".to_owned() } else { format!("{n} regression(s)") }
        );
    }
    let warnings = report.warnings();
    if !warnings.is_empty() {
        out.push('\n');
        for w in warnings {
            let _ = writeln!(out, "warning: {w}");
        }
    }
    if !report.load.is_empty() {
        let _ = writeln!(out, "\nload average: {}", report.load.join(" → "));
    }
    out
}
