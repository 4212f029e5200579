//! One self-contained HTML page: tables, and two inline SVG plots (latency by percentile,
//! throughput over time). No script, no stylesheet or font from elsewhere.

use std::fmt::Write;

use super::{Report, format_ms, format_secs};
use crate::compare::Figures;
use crate::summary::RunSummary;

const COLORS: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const W: f64 = 720.0;
const H: f64 = 300.0;
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 40.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A round upper bound for an axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= step * mag {
            return step * mag;
        }
    }
    10.0 * mag
}

/// Percentile position on a log scale of 1/(1-q): 0 at 0%, 1 at 90%, 2 at 99%, … 5 at 99.999% and above.
fn qx(q: f64) -> f64 {
    let tail = (1.0 - q).max(1e-5);
    (-tail.log10()).clamp(0.0, 5.0)
}

fn frame(svg: &mut String, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title><rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#999"/><text x="{cx}" y="{by}" text-anchor="middle" font-size="12">{x}</text><text x="14" y="{cy}" text-anchor="middle" font-size="12" transform="rotate(-90 14 {cy})">{y}</text>"##,
        t = esc(title),
        pw = W - LEFT - RIGHT,
        ph = H - TOP - BOTTOM,
        cx = LEFT + (W - LEFT - RIGHT) / 2.0,
        by = H - 4.0,
        cy = TOP + (H - TOP - BOTTOM) / 2.0,
        x = esc(x_label),
        y = esc(y_label),
    );
}

fn y_ticks(svg: &mut String, max: f64, fmt: impl Fn(f64) -> String) {
    // Round labels: 2 and 20 in quarters (0.5, 5), 1, 2.5, 5 and 10 in fifths.
    let lead = max / 10f64.powf(max.log10().floor());
    let n: u32 = if (lead - 2.0).abs() < 1e-9 { 4 } else { 5 };
    for i in 0..=n {
        let v = max * f64::from(i) / f64::from(n);
        let y = H - BOTTOM - (H - TOP - BOTTOM) * f64::from(i) / f64::from(n);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11">{label}</text>"##,
            x2 = W - RIGHT,
            tx = LEFT - 4.0,
            ty = y + 4.0,
            label = esc(&fmt(v)),
        );
    }
}

fn polyline(svg: &mut String, points: &[(f64, f64)], color: &str, dashed: bool, label: &str) {
    if points.is_empty() {
        return;
    }
    let pts: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = write!(
        svg,
        r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"><title>{}</title></polyline>"#,
        pts.join(" "),
        esc(label),
        dash = if dashed { r#" stroke-dasharray="5 4""# } else { "" },
    );
}

fn legend(svg: &mut String, items: &[(String, &str, bool)]) {
    for (i, (label, color, dashed)) in items.iter().enumerate() {
        let y = TOP + 14.0 + 16.0 * i as f64;
        let x = LEFT + 10.0;
        let _ = write!(
            svg,
            r#"<line x1="{x}" x2="{x2}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="2"{dash}/><text x="{tx}" y="{ty}" font-size="11">{l}</text>"#,
            x2 = x + 24.0,
            tx = x + 30.0,
            ty = y + 4.0,
            l = esc(label),
            dash = if *dashed { r#" stroke-dasharray="5 4""# } else { "" },
        );
    }
}

/// The run whose overall p99 is the median of the runs': the one the plots show.
fn representative(report: &Report) -> Option<&RunSummary> {
    let mut runs: Vec<&RunSummary> = report.runs.iter().collect();
    runs.sort_by(|a, b| a.overall.latency.p99.total_cmp(&b.overall.latency.p99));
    runs.get(runs.len() / 2).copied()
}

fn percentile_plot(run: &RunSummary) -> String {
    let mut svg = String::new();
    let y_max = nice_max(
        run.targets
            .iter()
            .flat_map(|t| t.stats.distribution.iter().chain(&t.stats.uncorrected_distribution))
            .map(|p| p[1])
            .fold(0.0, f64::max),
    );
    frame(&mut svg, "Latency by percentile", "percentile", "latency");
    y_ticks(&mut svg, y_max, format_ms);
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"].iter().enumerate() {
        let x = LEFT + (W - LEFT - RIGHT) * i as f64 / 5.0;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{y2}" stroke="#ddd"/><text x="{x:.1}" y="{ty}" text-anchor="middle" font-size="11">{label}</text>"##,
            y2 = H - BOTTOM,
            ty = H - BOTTOM + 14.0,
        );
    }
    let to_xy = |p: &[f64; 2]| {
        (
            LEFT + (W - LEFT - RIGHT) * qx(p[0]) / 5.0,
            H - BOTTOM - (H - TOP - BOTTOM) * (p[1] / y_max).min(1.0),
        )
    };
    let mut items = Vec::new();
    for (i, t) in run.targets.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let main: Vec<_> = t.stats.distribution.iter().map(to_xy).collect();
        let raw: Vec<_> = t.stats.uncorrected_distribution.iter().map(to_xy).collect();
        polyline(&mut svg, &main, color, false, &format!("{} latency", t.name));
        polyline(&mut svg, &raw, color, true, &format!("{} uncorrected", t.name));
        items.push((format!("{} latency", t.name), color, false));
        items.push((format!("{} uncorrected", t.name), color, true));
    }
    legend(&mut svg, &items);
    svg.push_str("</svg>");
    svg
}

fn throughput_plot(report: &Report) -> String {
    let mut svg = String::new();
    let x_max = report.runs.iter().map(|r| r.timeline.len()).max().unwrap_or(1).max(1) as f64;
    let y_max = nice_max(
        report.runs.iter().flat_map(|r| &r.timeline).map(|s| (s.ok + s.errors) as f64).fold(0.0, f64::max),
    );
    frame(&mut svg, "Throughput over time", "seconds after the warm-up", "requests / s");
    y_ticks(&mut svg, y_max, |v| format!("{v:.0}"));
    let ticks = (x_max as usize).clamp(1, 10);
    for i in 0..=ticks {
        let t = x_max * i as f64 / ticks as f64;
        let x = LEFT + (W - LEFT - RIGHT) * i as f64 / ticks as f64;
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{ty}" text-anchor="middle" font-size="11">{t:.0}</text>"#,
            ty = H - BOTTOM + 14.0,
        );
    }
    let xy = |t: f64, v: f64| {
        (
            LEFT + (W - LEFT - RIGHT) * (t + 0.5) / x_max,
            H - BOTTOM - (H - TOP - BOTTOM) * (v / y_max).min(1.0),
        )
    };
    let mut items = Vec::new();
    for (i, r) in report.runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let all: Vec<_> = r.timeline.iter().map(|s| xy(f64::from(s.t), (s.ok + s.errors) as f64)).collect();
        polyline(&mut svg, &all, color, false, &format!("run {} requests/s", i + 1));
        items.push((format!("run {}", i + 1), color, false));
        if r.timeline.iter().any(|s| s.errors > 0) {
            let errs: Vec<_> = r.timeline.iter().map(|s| xy(f64::from(s.t), s.errors as f64)).collect();
            polyline(&mut svg, &errs, color, true, &format!("run {} errors/s", i + 1));
            items.push((format!("run {} errors", i + 1), color, true));
        }
    }
    legend(&mut svg, &items);
    svg.push_str("</svg>");
    svg
}

fn figures_row(out: &mut String, name: &str, f: &Figures) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td></tr>",
        esc(name),
        f.throughput_rps,
        format_ms(f.p50_ms),
        format_ms(f.p90_ms),
        format_ms(f.p95_ms),
        format_ms(f.p99_ms),
        format_ms(f.p999_ms),
        format_ms(f.max_ms),
        f.error_rate * 100.0
    );
}

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let title = esc(&report.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         .bad{{color:#b00;font-weight:bold}}.warn{{color:#a60}}</style></head><body>\n<h1>{title}</h1>\n"
    );
    if let Some(first) = report.runs.first() {
        let pace = match first.rate {
            Some(rate) => format!("Open loop at {rate:.0} req/s, up to {} in flight", first.concurrency),
            None => format!("Closed loop, {} users", first.concurrency),
        };
        let _ = writeln!(
            out,
            "<p>{}, {}, {} measured after {} warm-up; {} run(s). Latency is {}.</p>",
            esc(&pace),
            esc(&first.protocol),
            format_secs(first.duration_s),
            format_secs(first.warmup_s),
            report.runs.len(),
            if first.mode == "open" {
                "measured from each request's intended send time (no coordinated omission); dashed lines are the service time from the actual send"
            } else {
                "corrected for coordinated omission; dashed lines are the raw response times"
            }
        );
    }
    if !report.load.is_empty() {
        let _ = writeln!(out, "<p>Load average: {}</p>", esc(&report.load.join(" → ")));
    }
    let _ = write!(
        out,
        "<h2>Median of {} run(s)</h2><table><tr><th>target</th><th>req/s</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th></tr>",
        report.median.runs
    );
    for (name, f) in &report.median.targets {
        figures_row(&mut out, name, f);
    }
    figures_row(&mut out, "overall", &report.median.overall);
    out.push_str("</table>\n");
    if let Some(c) = &report.comparison {
        out.push_str("<h2>Against the baseline</h2><table><tr><th>figure</th><th>verdict</th></tr>");
        for d in &c.deltas {
            let (class, verdict) = if d.regressed { ("bad", "REGRESSED") } else { ("", "ok") };
            let _ =
                write!(out, "<tr><td>{}</td><td class=\"{class}\">{verdict}</td></tr>", esc(&d.describe()));
        }
        out.push_str("</table>\n");
    }
    let warnings = report.warnings();
    if !warnings.is_empty() {
        out.push_str("<h2>Warnings</h2><ul>");
        for w in warnings {
            let _ = write!(out, "<li class=\"warn\">{}</li>", esc(&w));
        }
        out.push_str("</ul>\n");
    }
    if let Some(run) = representative(report) {
        out.push_str("<h2>Latency by percentile</h2>\n");
        out.push_str(&percentile_plot(run));
        out.push('\n');
    }
    out.push_str("<h2>Throughput over time</h2>\n");
    out.push_str(&throughput_plot(report));
    out.push_str("\n<h2>Runs</h2>");
    for (i, r) in report.runs.iter().enumerate() {
        let _ = write!(
            out,
            "<h3>Run {}</h3><table><tr><th>target</th><th>requests</th><th>req/s</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th><th>uncorrected p99</th><th>errors</th></tr>",
            i + 1
        );
        for t in &r.targets {
            let s = &t.stats;
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.name),
                s.requests,
                s.throughput_rps,
                format_ms(s.latency.p50),
                format_ms(s.latency.p99),
                format_ms(s.latency.p999),
                format_ms(s.latency.max),
                format_ms(s.uncorrected.p99),
                esc(&s.errors.describe())
            );
        }
        out.push_str("</table>");
    }
    out.push_str("\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_and_escaping() {
        assert_eq!(nice_max(0.73), 1.0);
        assert_eq!(nice_max(130.0), 200.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert!((qx(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(qx(1.0), 5.0);
        assert_eq!(esc("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }
}
