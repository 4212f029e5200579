//! The monitoring files of `deploy/` against the real bot, live:
//!
//! - real Prometheus (Debian: prometheus) runs `deploy/prometheus/prometheus.yml` with its
//!   rule files, scraping the `mltb` binary every second while it does real work (two
//!   leeches complete, one fails, one is live while scraped, Telegram answers a 429): the
//!   bot's target is up, every rule evaluates without error, every `mltb_*`/`process_*`
//!   name a rule or a Grafana panel queries was scraped, and every panel query of the
//!   Phase 4 Components and Bot & Tasks dashboards returns data over the activity;
//! - then the bot's aria2 daemon goes away, and `MltbAria2Unreachable` travels through the
//!   real Alertmanager (Debian: prometheus-alertmanager) running
//!   `deploy/alertmanager/alertmanager.yml` to its PagerDuty and Slack receivers, here a
//!   webhook on loopback; the routing key and the webhook URL come from secret files, as
//!   in production.
//!
//! Only what cannot run offline changes in the copies the test runs: addresses (loopback
//! ports), the scrape and evaluation intervals (1 s), the secret files' directory, and
//! every rule's `for:` (2 s; `promtool test rules` holds each alert to its real `for:`).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mltb_telegram_sim::{Fault, Sim, SimConfig};
use mltb_testkit::{FileServer, ServedFile};
use serde_json::Value;
use support::{Bot, CHAT, data};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A user in [`CHAT`], their private chat with the bot.
const USER: i64 = CHAT;

/// The routing key the PagerDuty receiver must send, read from its secret file.
const ROUTING_KEY: &str = "mltb-test-routing-key-from-a-file";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `program`, or a failure that says how to install it.
fn need(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{program} is not installed: apt-get install {package} (scripts/test installs it)")
    })
}

/// `text` with `from` replaced by `to`, failing if `from` is not there (the deploy file
/// changed shape: this test must follow it).
fn swap(text: &str, from: &str, to: &str, file: &str) -> String {
    assert!(text.contains(from), "{file} no longer holds {from:?}: update tests/monitoring.rs");
    text.replace(from, to)
}

/// A rule file with every `for:` cut to 2 s.
fn quick_rules(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("for:") {
                format!("{}for: 2s", &line[..line.len() - trimmed.len()])
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every metric name of the bot (`mltb_…`, `process_…`) in a PromQL expression.
fn metric_names(expr: &str, into: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    for prefix in ["mltb_", "process_"] {
        let mut i = 0;
        while let Some(at) = expr[i..].find(prefix) {
            let start = i + at;
            let mut end = start + prefix.len();
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            // Not the tail of another name (`job:mltb_…`), nor a label value (`"mltb_x"`).
            let inside_name = start > 0 && ident(bytes[start - 1]);
            let quoted = start > 0 && bytes[start - 1] == b'"';
            if !inside_name && !quoted {
                into.insert(expr[start..end].to_owned());
            }
            i = end;
        }
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// `text` for a URL's query string.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every string under an `"expr"` key of a Grafana dashboard.
fn dashboard_exprs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => into.push(expr.clone()),
                    _ => dashboard_exprs(v, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, into)),
        _ => {}
    }
}

/// What the webhook received: (path, body).
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A loopback HTTP server that answers 200 to every POST and keeps what it was sent: the
/// PagerDuty Events API and the Slack webhook, as Alertmanager sees them.
async fn webhook() -> (u16, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::default();
    let keep = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let Ok(n) = socket.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                    if buf.len() > 1 << 20 {
                        return;
                    }
                };
                while buf.len() < head_end + length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
                keep.lock().unwrap().push((path, body));
                let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, received)
}

/// A program that runs for the test, stopped when dropped.
fn spawn(program: &Path, args: &[String], log: &Path) -> tokio::process::Child {
    let log = std::fs::File::create(log).unwrap();
    tokio::process::Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} did not start: {e}", program.display()))
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url).send().await.ok()?.json::<Value>().await.ok()
}

/// Polls `check` every 200 ms for at most `secs`; panics naming `what` (and the last
/// state `check` described) if it never holds.
async fn until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let why = match check().await {
            Ok(()) => return,
            Err(why) => why,
        };
        assert!(tokio::time::Instant::now() < deadline, "timed out after {secs} s waiting for {what}: {why}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_bot_every_rule_evaluates_and_an_aria2_outage_pages_through_alertmanager() {
    let prometheus = need("prometheus", "prometheus");
    let alertmanager = need("prometheus-alertmanager", "prometheus-alertmanager");
    let repo = repo();
    let tmp = tempfile::tempdir().unwrap();
    let (api, prom, am) = (free_port(), free_port(), free_port());
    let (hook, received) = webhook().await;

    // The bot, on an aria2 daemon of its own that the test can stop.
    let aria2 =
        mltb_testkit::aria2::Aria2Daemon::start().await.expect("aria2c starts (apt-get install aria2)");
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let endpoints =
        format!("[{{ name = \"a\", url = \"{}\", secret_env = \"MLTB_TEST_ARIA2\" }}]", aria2.ws_url());
    let bind = format!("127.0.0.1:{api}");
    let bot_dir = tmp.path().join("bot");
    std::fs::create_dir_all(&bot_dir).unwrap();
    let mut bot = Bot::start(
        &sim,
        &bot_dir,
        &[
            ("MLTB_API_ENABLED", "true"),
            ("MLTB_API_BIND", &bind),
            ("MLTB_API_READY_INTERVAL", "1s"),
            ("MLTB_BACKUP_EVERY", "1h"),
            ("MLTB_DOWNLOADS_ARIA2_ENDPOINTS", &endpoints),
            ("MLTB_TEST_ARIA2", aria2.secret()),
        ],
    );

    // Prometheus with the deploy stack's config, on loopback.
    let deploy = repo.join("deploy");
    let rules_dir = tmp.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    let mut rule_count = 0;
    for entry in std::fs::read_dir(deploy.join("prometheus/rules")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        rule_count += text
            .lines()
            .filter(|l| l.trim_start().starts_with("- alert:") || l.trim_start().starts_with("- record:"))
            .count();
        std::fs::write(rules_dir.join(path.file_name().unwrap()), quick_rules(&text)).unwrap();
    }
    let file = "deploy/prometheus/prometheus.yml";
    let mut config = std::fs::read_to_string(deploy.join("prometheus/prometheus.yml")).unwrap();
    for (from, to) in [
        ("scrape_interval: 15s", "scrape_interval: 1s".to_owned()),
        ("scrape_timeout: 10s", "scrape_timeout: 1s".to_owned()),
        ("evaluation_interval: 15s", "evaluation_interval: 1s".to_owned()),
        ("rules/*.yml", format!("{}/*.yml", rules_dir.display())),
        ("alertmanager:9093", format!("127.0.0.1:{am}")),
        ("mltb:8080", bind.clone()),
        ("localhost:9090", format!("127.0.0.1:{prom}")),
    ] {
        config = swap(&config, from, &to, file);
    }
    let prom_config = tmp.path().join("prometheus.yml");
    std::fs::write(&prom_config, config).unwrap();

    // Alertmanager with the deploy stack's config; its secrets in files here.
    let secrets = tmp.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("slack_webhook_url"), format!("http://127.0.0.1:{hook}/slack")).unwrap();
    std::fs::write(secrets.join("pagerduty_routing_key"), ROUTING_KEY).unwrap();
    std::fs::write(secrets.join("smtp_password"), "unused").unwrap();
    let am_dir = tmp.path().join("alertmanager");
    std::fs::create_dir_all(am_dir.join("templates")).unwrap();
    for entry in std::fs::read_dir(deploy.join("alertmanager/templates")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, am_dir.join("templates").join(path.file_name().unwrap())).unwrap();
    }
    let file = "deploy/alertmanager/alertmanager.yml";
    let mut config = std::fs::read_to_string(deploy.join("alertmanager/alertmanager.yml")).unwrap();
    config = swap(&config, "/etc/alertmanager/secrets/", &format!("{}/", secrets.display()), file);
    config = swap(&config, "smtp.example.com:587", &format!("127.0.0.1:{}", free_port()), file);
    config = swap(
        &config,
        "global:\n",
        &format!("global:\n  pagerduty_url: http://127.0.0.1:{hook}/pagerduty\n"),
        file,
    );
    let am_config = am_dir.join("alertmanager.yml");
    std::fs::write(&am_config, config).unwrap();

    let _am = spawn(
        &alertmanager,
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", am_dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{am}"),
            "--cluster.listen-address=".into(),
        ],
        &tmp.path().join("alertmanager.log"),
    );
    let _prom = spawn(
        &prometheus,
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", tmp.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom}"),
        ],
        &tmp.path().join("prometheus.log"),
    );
    let logs = || {
        let read = |name: &str| std::fs::read_to_string(tmp.path().join(name)).unwrap_or_default();
        let tail = |text: String| {
            text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        format!(
            "\n--- prometheus.log\n{}\n--- alertmanager.log\n{}",
            tail(read("prometheus.log")),
            tail(read("alertmanager.log"))
        )
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    until(60, "the bot to be ready", || async {
        let status =
            http.get(format!("http://{bind}/ready")).send().await.map_err(|e| e.to_string())?.status();
        if status == 200 { Ok(()) } else { Err(format!("/ready answers {status}")) }
    })
    .await;

    // Live scrape: the bot's target is up and every rule has evaluated without error.
    let api_url = |path: &str| format!("http://127.0.0.1:{prom}/api/v1/{path}");
    until(60, "Prometheus to scrape the bot", || async {
        let targets =
            get_json(&http, &api_url("targets")).await.ok_or_else(|| format!("no answer{}", logs()))?;
        let mltb = targets["data"]["activeTargets"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["labels"]["job"] == "mltb"))
            .ok_or("no mltb target")?;
        if mltb["health"] == "up" { Ok(()) } else { Err(format!("the mltb target: {mltb}")) }
    })
    .await;
    let rules = || async {
        let rules = get_json(&http, &api_url("rules")).await.ok_or("no answer")?;
        let all: Vec<Value> = rules["data"]["groups"]
            .as_array()
            .ok_or("no groups")?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        Ok::<_, String>(all)
    };
    until(60, "every rule to evaluate without error", || async {
        let all = rules().await?;
        if all.len() != rule_count {
            return Err(format!("{} rules loaded, {rule_count} in deploy/prometheus/rules", all.len()));
        }
        match all.iter().find(|r| r["health"] != "ok") {
            Some(rule) => Err(format!("rule {} is {}: {}", rule["name"], rule["health"], rule["lastError"])),
            None => Ok(()),
        }
    })
    .await;
    let mut queried = BTreeSet::new();
    for rule in rules().await.unwrap() {
        metric_names(rule["query"].as_str().unwrap_or(""), &mut queried);
    }

    // Real activity: a leech that completes, one that fails (404), a slow one that is live
    // while scraped, and a 429 from Telegram.
    let activity = unix_now();
    let server = FileServer::builder()
        .file("/files/ok.bin", data(300_000))
        .status("/files/missing.bin", 404)
        .serve("/files/slow.bin", ServedFile::new(data(1_500_000)).drip(64 << 10, Duration::from_millis(100)))
        .start()
        .await
        .unwrap();
    sim.inject_fault_for("sendMessage", Fault::TooManyRequests { retry_after: 1 }, 1);
    for path in ["/files/ok.bin", "/files/missing.bin", "/files/slow.bin"] {
        sim.send_text(CHAT, USER, &format!("/leech {}", server.url(path)));
    }
    let bot_metric = |name: &'static str| {
        let (http, url) = (http.clone(), format!("http://{bind}/metrics"));
        async move {
            let text = http.get(url).send().await.ok()?.text().await.ok()?;
            text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<f64>().ok())
        }
    };
    until(90, "two tasks completed, one failed and a 429 counted", || async {
        let done = bot_metric("mltb_tasks_finished_total{state=\"completed\"}").await;
        let failed = bot_metric("mltb_tasks_finished_total{state=\"failed\"}").await;
        let limited = bot_metric("mltb_telegram_rate_limited_total{scheduler=\"bot\"}").await;
        if done == Some(2.0) && failed == Some(1.0) && limited >= Some(1.0) {
            Ok(())
        } else {
            Err(format!("completed {done:?}, failed {failed:?}, 429s {limited:?}"))
        }
    })
    .await;
    until(30, "Prometheus to scrape the end of the activity", || async {
        let q = "mltb_tasks_finished_total{job=\"mltb\", state=\"completed\"} == 2";
        let r =
            get_json(&http, &api_url(&format!("query?query={}", urlencode(q)))).await.ok_or("no answer")?;
        if r["data"]["result"].as_array().is_some_and(|a| !a.is_empty()) {
            Ok(())
        } else {
            Err(r.to_string())
        }
    })
    .await;

    // Every mltb_/process_ name the rules and dashboards query is in the scraped data.
    let mut panels: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(deploy.join("grafana/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let mut exprs = Vec::new();
            dashboard_exprs(&dashboard, &mut exprs);
            assert!(!exprs.is_empty(), "{} has no query", path.display());
            exprs.iter().for_each(|e| metric_names(e, &mut queried));
            let uid = dashboard["uid"].as_str().unwrap_or("").to_owned();
            panels.extend(exprs.into_iter().map(|e| (uid.clone(), e)));
        }
    }
    let names = get_json(&http, &api_url("label/__name__/values")).await.unwrap();
    let scraped: BTreeSet<&str> =
        names["data"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let missing: Vec<&String> = queried.iter().filter(|n| !scraped.contains(n.as_str())).collect();
    assert!(queried.len() > 20, "the rules and dashboards query the bot's metrics: {queried:?}");
    assert!(missing.is_empty(), "queried by a rule or panel, never scraped from the bot: {missing:?}");

    // Every panel query of Phase 4 Components and Bot & Tasks returns data over the
    // activity, Grafana's variables given values.
    let (start, end) = (activity - 2.0, unix_now());
    let mut empty = Vec::new();
    let mut asked = 0;
    for (uid, expr) in panels.iter().filter(|(uid, _)| uid == "mltb-components" || uid == "mltb-tasks") {
        let query = expr.replace("$__rate_interval", "4s").replace("$instance", ".*");
        let url = api_url(&format!("query_range?query={}&start={start}&end={end}&step=1", urlencode(&query)));
        let r = get_json(&http, &url).await.unwrap_or_default();
        assert_eq!(r["status"], "success", "{uid}: {query}: {r}");
        asked += 1;
        if r["data"]["result"].as_array().is_none_or(Vec::is_empty) {
            empty.push(format!("{uid}: {query}"));
        }
    }
    assert!(asked >= 30, "the two dashboards' queries: {asked}");
    assert!(empty.is_empty(), "panel queries that returned no data:\n{}", empty.join("\n"));

    // Healthy: nothing about aria2 or readiness is pending or firing.
    let alerts = get_json(&http, &api_url("alerts")).await.unwrap();
    let active: Vec<String> = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_owned())
        .collect();
    for healthy in ["MltbAria2Unreachable", "MltbNotReady", "MltbDown"] {
        assert!(!active.iter().any(|a| a == healthy), "{healthy} is active on a healthy bot: {active:?}");
    }

    // aria2 goes away: the bot reports it, and the alert pages and reaches Slack.
    aria2.stop().await.unwrap();
    until(30, "/ready to name aria2", || async {
        let r = http.get(format!("http://{bind}/ready")).send().await.map_err(|e| e.to_string())?;
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        if status == 503 && body.contains("aria2") { Ok(()) } else { Err(format!("{status}: {body}")) }
    })
    .await;
    until(90, "MltbAria2Unreachable at PagerDuty and Slack", || async {
        let got = received.lock().unwrap().clone();
        let to = |path: &str| got.iter().any(|(p, body)| p == path && body.contains("MltbAria2Unreachable"));
        if to("/pagerduty") && to("/slack") {
            Ok(())
        } else {
            Err(format!(
                "the webhook received {:?}{}",
                got.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                logs()
            ))
        }
    })
    .await;
    let got = received.lock().unwrap().clone();
    let page: Value = got
        .iter()
        .find(|(p, b)| p == "/pagerduty" && b.contains("MltbAria2Unreachable"))
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .unwrap();
    assert_eq!(page["routing_key"], ROUTING_KEY, "the routing key comes from its secret file");
    assert_eq!(page["event_action"], "trigger");
    assert_eq!(page["payload"]["severity"], "critical");
    assert!(
        page.to_string().contains("docs/runbooks/MltbAria2Unreachable.md"),
        "the runbook is linked: {page}"
    );
    let slack: Value = got
        .iter()
        .find(|(p, b)| p == "/slack" && b.contains("MltbAria2Unreachable"))
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .unwrap();
    assert_eq!(slack["channel"], "#mltb-alerts");
    assert!(
        slack.to_string().contains("docs/runbooks/MltbAria2Unreachable.md"),
        "the runbook is linked: {slack}"
    );
    // Info goes by email only: nothing else reached the hook but pages and Slack posts.
    assert!(got.iter().all(|(p, _)| p == "/pagerduty" || p == "/slack"), "{got:?}");

    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
    sim.shutdown().await;
}
