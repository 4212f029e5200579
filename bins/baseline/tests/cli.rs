//! The `mltb-baseline` binary: help on every subcommand, a run against its own `hello`
//! server with every report, a baseline saved and compared (pass, then a regression that
//! exits 1 and names the figure), and the refusals.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mltb-baseline");

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).current_dir(dir).args(args).output().expect("mltb-baseline runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `mltb-baseline hello`, and the URL it printed; killed on drop.
struct Hello(Child, String);

impl Hello {
    fn start() -> Self {
        let mut child = Command::new(BIN)
            .args(["hello", "--for", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hello starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("http://127.0.0.1:"), "{line}");
        Self(child, line.trim().to_owned())
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_subcommand_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["run", "compare", "hello"] {
        let (code, out, _) = run(tmp.path(), &[sub, "--help"]);
        assert!(code == Some(0) && out.contains("Usage: mltb-baseline"), "{sub}: {out}");
    }
    let (code, out, _) = run(tmp.path(), &["--help"]);
    assert!(code == Some(0) && out.contains("Exit status"), "{out}");
    let (code, _, err) = run(tmp.path(), &["run", "http://127.0.0.1:1/", "--duration", "soon"]);
    assert!(code == Some(2) && err.contains("such as 500ms"), "{err}");
}

#[test]
fn refusals_name_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = run(tmp.path(), &["run", "http://192.0.2.7/", "-d", "1s"]);
    assert!(code == Some(2) && err.contains("not a loopback address"), "{err}");
    let (code, _, err) = run(tmp.path(), &["run"]);
    assert!(code == Some(2) && err.contains("targets"), "{err}");
    std::fs::write(
        tmp.path().join("s.toml"),
        "[run]\nrate = 10\n[[target]]\nurl = \"http://127.0.0.1:1/${NOT_SET_ANYWHERE}\"\n",
    )
    .unwrap();
    let (code, _, err) = run(tmp.path(), &["run", "--scenario", "s.toml"]);
    assert!(code == Some(2) && err.contains("${NOT_SET_ANYWHERE}"), "{err}");
    std::fs::write(tmp.path().join("bad.json"), "{}").unwrap();
    let (code, _, err) = run(tmp.path(), &["compare", "bad.json", "--baseline", "bad.json"]);
    assert!(code == Some(2) && err.contains("bad.json: not an mltb-baseline report"), "{err}");
    let (code, out, _) =
        run(tmp.path(), &["run", "http://127.0.0.1:1/x", "--users", "3", "-d", "2s", "--check"]);
    assert!(code == Some(0) && out.starts_with("ok: closed loop, 3 users"), "{out}");
}

#[test]
fn a_run_writes_its_reports_and_a_baseline_gates_the_next() {
    let hello = Hello::start();
    let tmp = tempfile::tempdir().unwrap();
    let scenario = format!(
        "[run]\nmode = \"open\"\nrate = 200\nconnections = 10\nduration = \"1s\"\nwarmup = \"200ms\"\n\n[[target]]\nname = \"hello\"\nurl = \"{}\"\nheaders = {{ authorization = \"Bearer ${{LOADGEN_TEST_TOKEN}}\" }}\n",
        hello.1
    );
    std::fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    let out = Command::new(BIN)
        .current_dir(tmp.path())
        .env("LOADGEN_TEST_TOKEN", "t0k3n")
        .args(["run", "-s", "s.toml", "--repeat", "2", "--json", "r.json", "--html", "r.html"])
        .args(["--save-baseline", "base.json"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("open loop at 200 req/s") && stdout.contains("median of 2 runs"), "{stdout}");
    assert!(stdout.contains("p99.9") && stdout.contains("load average:"), "{stdout}");
    // Not a terminal: no progress bar.
    assert!(!stderr.contains('\r') && !stderr.contains("[#"), "{stderr:?}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
    let hello_stats = &json["runs"][0]["targets"][0];
    assert_eq!(hello_stats["name"], "hello");
    assert!(hello_stats["requests"].as_u64().unwrap() >= 100, "{hello_stats}");
    assert!(hello_stats["latency"]["p99"].as_f64().unwrap() > 0.0);
    assert_eq!(hello_stats["errors"]["timeout"], 0);

    let html = std::fs::read_to_string(tmp.path().join("r.html")).unwrap();
    assert!(
        html.contains("<svg")
            && html.contains("Latency by percentile")
            && html.contains("Throughput over time")
    );
    // Self-contained: nothing fetched from anywhere.
    for outside in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(outside), "the report loads {outside}");
    }

    // The report against its own baseline: no regression.
    let (code, out, _) = run(tmp.path(), &["compare", "r.json", "--baseline", "base.json"]);
    assert!(code == Some(0) && out.contains("no regression"), "{out}");

    // A baseline twice as fast with 10× the throughput: this report regressed against it.
    let mut fast: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("base.json")).unwrap()).unwrap();
    for pointer in ["/median/overall", "/median/targets/hello"] {
        let scope = fast.pointer_mut(pointer).unwrap();
        scope["p50_ms"] = serde_json::json!(scope["p50_ms"].as_f64().unwrap() / 100.0);
        scope["throughput_rps"] = serde_json::json!(2000.0);
    }
    std::fs::write(tmp.path().join("fast.json"), fast.to_string()).unwrap();
    let (code, out, _) = run(
        tmp.path(),
        &["compare", "r.json", "--baseline", "fast.json", "--min-regression-ms", "0.01", "--html", "c.html"],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("REGRESSED overall throughput: 2000 req/s → 200 req/s (-1800 req/s, 90% worse)"),
        "{out}"
    );
    assert!(out.contains("REGRESSED hello p50:"), "{out}");
    assert!(std::fs::read_to_string(tmp.path().join("c.html")).unwrap().contains("REGRESSED"));
    // The same, with thresholds wider than the change: not a regression.
    let (code, out, _) = run(
        tmp.path(),
        &[
            "compare",
            "r.json",
            "--baseline",
            "fast.json",
            "--max-regression",
            "95%",
            "--min-regression-ms",
            "1000",
        ],
    );
    assert!(code == Some(0) && out.contains("no regression"), "{out}");

    // A run against a baseline, closed loop this time: the plan difference is noted.
    let (code, out, _) = run(
        tmp.path(),
        &["run", &hello.1, "--users", "2", "-d", "1s", "--warmup", "0s", "--baseline", "base.json"],
    );
    assert!(code.is_some_and(|c| c <= 1) && out.contains("note: the baseline's plan differs"), "{out}");
}
