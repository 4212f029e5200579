//! `/metrics` with every kind of source registered: OpenMetrics with HELP on every family,
//! route templates as labels, and the Prometheus text format accepted by `promtool`.

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;

use mltb_api::TelegramStats;
use mltb_telegram::scheduler::{Request, Response, Scheduler, Transport};
use reqwest::StatusCode;
use support::{TOKEN, World, client, serve};
use tokio::io::AsyncWriteExt;

struct Echo;

impl Transport for Echo {
    async fn execute(&self, _: &Request) -> mltb_telegram::Result<Response> {
        Ok(Response::Done)
    }
}

/// An API with every source registered, after some traffic; returns it with the world.
async fn busy() -> (World, support::Served, Scheduler) {
    let w = World::new().await;
    let done = w.submit("http://files.example/done.bin").await;
    w.engine.wait(done.id).await;
    let scheduler = Scheduler::builder().build(Echo);
    scheduler.send(Request::delete_message(42, 7)).await.unwrap();
    let m = &w.metrics;
    let store = w.store.clone();
    m.add_cache("store", move || store.cache_stats());
    let store = w.store.clone();
    m.add_batcher("store_writes", move || store.write_stats());
    let store = w.store.clone();
    m.add_pool("sqlite", move || store.backend().pool().metrics());
    let sched = scheduler.clone();
    m.add_telegram("main", move || TelegramStats::of(&sched));
    m.add_uploaded_bytes(4);
    m.rate_limit_rejected("commands", "guest");
    let s = serve(
        w.api(support::World::config()).download_dir(w.download_dir()).query_analyzer(w.analyzer.clone()),
    )
    .await;
    let c = client();
    for path in [format!("/api/v1/tasks/{}", done.id), "/api/v1/tasks/424242".into(), "/nope/123".into()] {
        c.get(s.url(&path)).bearer_auth(TOKEN).send().await.unwrap();
    }
    (w, s, scheduler)
}

/// Family names declared by `# TYPE` and `# HELP` lines.
fn declared(text: &str, what: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(what))
        .map(|rest| rest.split(' ').next().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_declares_every_family_once_with_help() {
    let (_w, s, _sched) = busy().await;
    let r = client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    if let Some(path) = std::env::var_os("MLTB_API_DUMP_METRICS") {
        std::fs::write(path, &text).unwrap();
    }

    let types = declared(&text, "# TYPE ");
    let helps: BTreeSet<String> = declared(&text, "# HELP ").into_iter().collect();
    let unique: BTreeSet<String> = types.iter().cloned().collect();
    assert_eq!(unique.len(), types.len(), "a family is declared twice: {types:?}");
    assert_eq!(unique, helps, "every family has HELP and every HELP a family");
    for help in text.lines().filter(|l| l.starts_with("# HELP ")) {
        assert!(help.split(' ').nth(3).is_some_and(|w| !w.is_empty()), "empty help: {help}");
    }

    let expected = [
        "mltb_http_requests",
        "mltb_http_request_duration_seconds",
        "mltb_http_requests_in_flight",
        "mltb_rate_limit_rejections",
        "mltb_downloaded_bytes",
        "mltb_uploaded_bytes",
        "mltb_build",
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "mltb_tasks",
        "mltb_queue_slots",
        "mltb_tasks_done_bytes",
        "mltb_telegram_requests",
        "mltb_telegram_errors",
        "mltb_telegram_rate_limited",
        "mltb_telegram_queue_depth",
        "mltb_cache_hits",
        "mltb_cache_misses",
        "mltb_cache_reads_dropped",
        "mltb_cache_evictions",
        "mltb_cache_size_bytes",
        "mltb_pool_utilization_ratio",
        "mltb_pool_waiting",
        "mltb_pool_timeouts",
        "mltb_pool_wait_seconds",
        "mltb_batch_items",
        "mltb_batch_batches",
        "mltb_query_n_plus_one_findings",
        "mltb_query_events",
        "mltb_disk_free_bytes",
    ];
    let missing: Vec<_> = expected.iter().filter(|f| !unique.contains(**f)).collect();
    assert!(missing.is_empty(), "missing families {missing:?} in\n{text}");

    // Route templates, never raw paths; one label for everything unmatched.
    assert!(text.contains(r#"route="/api/v1/tasks/{id}",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"route="/api/v1/tasks/{id}",status="404"} 1"#), "{text}");
    assert!(!text.contains("424242"), "a raw path leaked into a label");
    assert!(text.contains(r#"route="unmatched",status="404"} 1"#), "{text}");
    assert!(text.contains(r#"mltb_telegram_requests_total{scheduler="main"} 1"#), "{text}");
    assert!(text.contains(r#"mltb_uploaded_bytes_total 4"#), "{text}");
    assert!(text.contains(r#"mltb_tasks{state="downloading"} 0"#), "{text}");
    assert!(text.contains(r#"mltb_cache_size_bytes{cache="store"}"#), "{text}");
    assert!(text.contains(r#"mltb_disk_free_bytes{dir="downloads"}"#), "{text}");
    assert!(text.contains("mltb_build_info{version=\""), "{text}");
    assert!(!text.contains(TOKEN));
    let events = text
        .lines()
        .find_map(|l| l.strip_prefix("mltb_query_events_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(events > 0, "the store's queries reach the analyzer's counters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_prometheus_text_format() {
    let (_w, s, _sched) = busy().await;
    let r =
        client().get(s.url("/metrics")).header("accept", "text/plain;version=0.0.4").send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = r.text().await.unwrap();
    assert!(!text.contains("# EOF"));
    let (ok, said) = promtool(&text).await;
    assert!(ok && said.trim().is_empty(), "promtool check metrics: {said}\n--- input:\n{text}");

    // promtool does lint: a gauge named like a counter and a family without HELP fail.
    let (ok, said) = promtool("# TYPE bad_total gauge\nbad_total 1\n").await;
    assert!(!ok, "promtool accepted a bad family: {said}");
    assert!(said.contains("no help text"), "{said}");
}

/// Runs `promtool check metrics` on `text`: whether it passed, and what it said.
async fn promtool(text: &str) -> (bool, String) {
    let mut promtool = match tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("promtool is not installed: `apt-get install prometheus` (Debian's package) provides it")
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = promtool.wait_with_output().await.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

/// A real Prometheus server (Debian's `prometheus`, the package promtool comes from)
/// scrapes `/metrics` as it does in production: it asks for OpenMetrics, and the target
/// must come up with no scrape error, its metadata read from the OpenMetrics text (the
/// build info's type is `info`, which the Prometheus text format does not have).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_openmetrics_output() {
    let (_w, s, _sched) = busy().await;
    let dir = tempfile::tempdir().unwrap();
    let target = s.running.local_addr();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: mltb\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    // A free port for Prometheus's own web server.
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let child = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let _child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("prometheus is not installed: `apt-get install prometheus` (Debian's package) provides it")
        }
        Err(e) => panic!("cannot run prometheus: {e}"),
    };
    let c = client();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let health = loop {
        assert!(tokio::time::Instant::now() < deadline, "Prometheus did not scrape the API within 60 s");
        let targets = c.get(format!("http://{web}/api/v1/targets")).send().await;
        if let Ok(r) = targets {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            let t = &v["data"]["activeTargets"][0];
            if t["health"].as_str().is_some_and(|h| h != "unknown") {
                break t.clone();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(health["health"], "up", "scrape failed: {health}");
    assert_eq!(health["lastError"], "", "{health}");
    let meta: serde_json::Value = c
        .get(format!("http://{web}/api/v1/targets/metadata?metric=mltb_build"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["data"][0]["type"], "info", "parsed as OpenMetrics: {meta}");
}
