//! The API over HTTP on 127.0.0.1, against a real engine and SQLite store: tasks, auth,
//! the rate limit, readiness, stats, diagnostics and shutdown.

mod support;

use std::time::Duration;

use mltb_api::{ApiConfig, ErrorBody, FnCheck, Readiness, Stats, StoreCheck, TaskInfo, TaskList};
use reqwest::StatusCode;
use support::{CHAT, TOKEN, World, client, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_listed_read_and_cancelled_over_http() {
    let w = World::new().await;
    let done = w.submit("http://files.example/done.bin").await;
    w.engine.wait(done.id).await;
    let hang = w.submit("http://files.example/hang.bin").await;
    w.until_downloading(hang.id).await;
    let s = serve(w.api(World::config())).await;
    let c = client();

    let list: TaskList =
        c.get(s.url("/api/v1/tasks")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.tasks.len(), 1, "only unfinished tasks without ?finished: {list:?}");
    let t = &list.tasks[0];
    assert_eq!((t.id, t.chat, t.live, t.state.as_str()), (hang.id, CHAT, true, "downloading"));
    assert_eq!((t.kind.as_deref(), t.name.as_deref()), (Some("leech"), Some("hang.bin")));
    assert_eq!((t.done_bytes, t.size_bytes, t.speed_bytes_per_second), (1000, Some(10_000), 250));

    let list: TaskList = c
        .get(s.url("/api/v1/tasks?finished=10"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: Vec<(i64, &str, bool)> =
        list.tasks.iter().map(|t| (t.id, t.state.as_str(), t.live)).collect();
    assert_eq!(states, [(hang.id, "downloading", true), (done.id, "completed", false)]);
    assert!(list.tasks[1].finished_at_ms.is_some());

    let bad = c.get(s.url("/api/v1/tasks?finished=lots")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json::<ErrorBody>().await.unwrap().error,
        "finished: expected a whole number from 0 to 100, got \"lots\""
    );

    let one: TaskInfo = c
        .get(s.url(&format!("/api/v1/tasks/{}", hang.id)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((one.id, one.live, one.state.as_str()), (hang.id, true, "downloading"));
    let missing = c.get(s.url("/api/v1/tasks/999")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.json::<ErrorBody>().await.unwrap().error, "no task 999");
    let junk = c.get(s.url("/api/v1/tasks/abc")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(junk.status(), StatusCode::BAD_REQUEST);

    // Cancel: accepted, then the engine finishes it as cancelled.
    let cancel =
        c.post(s.url(&format!("/api/v1/tasks/{}/cancel", hang.id))).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    assert_eq!(
        cancel.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"id": hang.id, "cancelling": true})
    );
    tokio::time::timeout(Duration::from_secs(10), w.engine.wait(hang.id)).await.unwrap();
    assert_eq!(w.downloads.cancelled.lock().unwrap().len(), 1, "the download itself was cancelled");
    let after: TaskInfo = c
        .get(s.url(&format!("/api/v1/tasks/{}", hang.id)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((after.live, after.state.as_str()), (false, "cancelled"));

    let again =
        c.post(s.url(&format!("/api/v1/tasks/{}/cancel", hang.id))).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        again.json::<ErrorBody>().await.unwrap().error,
        format!("task {} is already cancelled", hang.id)
    );
    let unknown = c.post(s.url("/api/v1/tasks/999/cancel")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let wrong_method =
        c.get(s.url(&format!("/api/v1/tasks/{}/cancel", hang.id))).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);

    s.stop.cancel();
    s.running.wait().await.unwrap();
    w.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_routes_need_the_token_and_open_routes_do_not() {
    let w = World::new().await;
    let s = serve(w.api(World::config())).await;
    let c = client();

    let none = c.get(s.url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], r#"Bearer realm="mltb""#);

    let wrong_token = format!("{TOKEN}x");
    let wrong = c.get(s.url("/api/v1/tasks")).bearer_auth(&wrong_token).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
    let body = wrong.text().await.unwrap();
    assert!(!body.contains(TOKEN), "the token is not echoed: {body}");

    let basic =
        c.get(s.url("/api/v1/tasks")).header("authorization", format!("Basic {TOKEN}")).send().await.unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    // Unknown paths under /api do not tell a stranger whether they exist.
    let unknown = c.get(s.url("/api/v2/nothing")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown = c.get(s.url("/api/v2/nothing")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let ok = c.get(s.url("/api/v1/stats")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    for open in ["/health", "/ready", "/metrics"] {
        assert_eq!(c.get(s.url(open)).send().await.unwrap().status(), StatusCode::OK, "{open} is open");
    }
    let health: serde_json::Value = c.get(s.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");

    // Without a token configured, /api is off.
    let off = serve(w.api(ApiConfig::new().bind_str("127.0.0.1:0").unwrap())).await;
    let r = c.get(off.url("/api/v1/tasks")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // protect_metrics puts /metrics behind the token.
    let guarded = serve(w.api(World::config().protect_metrics(true))).await;
    assert_eq!(c.get(guarded.url("/metrics")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.get(guarded.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(c.get(guarded.url("/health")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_answers_429_with_retry_after_and_counts_it() {
    let w = World::new().await;
    let s = serve(w.api(World::config().rate("2/min burst 2".parse().unwrap()))).await;
    let c = client();
    for _ in 0..2 {
        assert_eq!(
            c.get(s.url("/api/v1/tasks")).bearer_auth(TOKEN).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    let limited = c.get(s.url("/api/v1/tasks")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "one cell per 30 s: retry after {retry}");
    assert!(limited.json::<ErrorBody>().await.unwrap().error.starts_with("rate limited; retry after"));
    // Guessing tokens is limited too: the limit comes before the token check.
    let guess = c.get(s.url("/api/v1/tasks")).bearer_auth("guess-guess-guess-1").send().await.unwrap();
    assert_eq!(guess.status(), StatusCode::TOO_MANY_REQUESTS);
    // Open routes are not limited.
    assert_eq!(c.get(s.url("/health")).send().await.unwrap().status(), StatusCode::OK);

    let text = w.metrics.render_openmetrics();
    assert!(text.contains(r#"mltb_rate_limit_rejections_total{limiter="api",tier="client"} 2"#), "{text}");
    assert!(
        text.contains(r#"mltb_http_requests_total{method="GET",route="/api/v1/tasks",status="429"} 2"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_every_failing_check() {
    let w = World::new().await;
    let c = client();
    let healthy = serve(
        w.api(World::config())
            .ready_check(StoreCheck::new(w.store.clone()))
            .ready_check(FnCheck::new("aria2", || async { Ok(()) })),
    )
    .await;
    let r = c.get(healthy.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Readiness = r.json().await.unwrap();
    assert!(body.ready);
    assert_eq!(
        body.checks.iter().map(|c| (c.name.as_str(), c.ok)).collect::<Vec<_>>(),
        [("store", true), ("aria2", true)]
    );

    let failing = serve(
        w.api(World::config().ready_timeout(Duration::from_millis(200)))
            .ready_check(StoreCheck::new(w.store.clone()))
            .ready_check(FnCheck::new("aria2", || async {
                Err("connection refused at 127.0.0.1:6800".to_string())
            }))
            .ready_check(FnCheck::new("telegram", std::future::pending)),
    )
    .await;
    // Without the token: which check failed and whether it timed out, not the reason
    // the check gave (it may name files and endpoints); that is in the log.
    let r = c.get(failing.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = r.text().await.unwrap();
    assert!(!text.contains("6800") && !text.contains("connection refused"), "{text}");
    let body: Readiness = serde_json::from_str(&text).unwrap();
    assert!(!body.ready);
    let failed: Vec<(&str, Option<&str>)> =
        body.checks.iter().filter(|c| !c.ok).map(|c| (c.name.as_str(), c.error.as_deref())).collect();
    assert_eq!(
        failed,
        [
            ("aria2", Some("failed; the reason is in the server's log")),
            ("telegram", Some("timed out after 200ms"))
        ]
    );
    assert!(body.checks[0].ok, "the store still answers");
    // With it: the reasons.
    let r = c.get(failing.url("/ready")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Readiness = r.json().await.unwrap();
    let failed: Vec<(&str, Option<&str>)> =
        body.checks.iter().filter(|c| !c.ok).map(|c| (c.name.as_str(), c.error.as_deref())).collect();
    assert_eq!(
        failed,
        [
            ("aria2", Some("connection refused at 127.0.0.1:6800")),
            ("telegram", Some("timed out after 200ms"))
        ]
    );
    // A wrong token reads what anyone reads.
    let r = c.get(failing.url("/ready")).bearer_auth("not-the-token-0123456789").send().await.unwrap();
    assert!(!r.text().await.unwrap().contains("6800"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_runs_its_checks_at_most_once_a_second_however_often_it_is_asked() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let w = World::new().await;
    let c = client();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    // No periodic run: every run counted here is one a request caused.
    let s = serve(w.api(World::config().ready_interval(Duration::ZERO)).ready_check(FnCheck::new(
        "telegram",
        move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err("getMe: connection refused at 10.0.0.7:8081".to_string()) }
        },
    )))
    .await;
    let asks = (0..50).map(|_| async {
        let r = c.get(s.url("/ready")).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    });
    let answers = futures_util::future::join_all(asks).await;
    for (status, text) in &answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(text.contains(r#""name":"telegram""#) && !text.contains("10.0.0.7"), "{text}");
    }
    // One run serves them all; a slow machine may cross into another second or two.
    let n = runs.load(Ordering::SeqCst);
    assert!((1..=3).contains(&n), "50 requests ran the checks {n} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_limits_requests_that_carry_a_token_and_not_probes() {
    let w = World::new().await;
    let c = client();
    let s = serve(
        w.api(World::config().rate("1/min burst 2".parse().unwrap()))
            .ready_check(FnCheck::new("aria2", || async { Ok(()) })),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(c.get(s.url("/ready")).send().await.unwrap().status(), StatusCode::OK);
    }
    for _ in 0..2 {
        let r = c.get(s.url("/ready")).bearer_auth("a-guess-0123456789abcdef").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = c.get(s.url("/ready")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "a third token over `burst 2`");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(c.get(s.url("/ready")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_query_diagnostics() {
    let w = World::new().await;
    let hang = w.submit("http://files.example/hang-1.bin").await;
    w.until_downloading(hang.id).await;
    w.metrics.add_downloaded_bytes(1234);
    let s =
        serve(w.api(World::config()).download_dir(w.download_dir()).query_analyzer(w.analyzer.clone())).await;
    let c = client();

    let stats: Stats =
        c.get(s.url("/api/v1/stats")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!((stats.tasks.downloading, stats.tasks.queued), (1, 0));
    assert_eq!((stats.queue.downloading, stats.queue.waiting), (1, 0));
    assert_eq!((stats.bytes.downloaded, stats.bytes.live_done, stats.bytes.live_speed), (1234, 1000, 250));
    let disk = stats.disk.expect("the download dir's disk");
    assert!(disk.stats.size_bytes >= disk.stats.free_bytes && disk.stats.size_bytes > 0);
    assert_eq!(disk.dir, w.download_dir().display().to_string());
    assert!(stats.process.resident_memory_bytes.unwrap() > 0);
    assert!(stats.uptime_seconds >= 0.0);

    let report: serde_json::Value = c
        .get(s.url("/api/v1/diagnostics/queries"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(report["counters"]["events"].as_u64().unwrap() > 0, "the store's queries were seen: {report}");
    assert!(report["top_queries"].as_array().is_some_and(|q| !q.is_empty()), "{report}");

    let without = serve(w.api(World::config())).await;
    let r = c.get(without.url("/api/v1/diagnostics/queries")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<ErrorBody>().await.unwrap().error, "no query analyzer is configured");
    w.engine.cancel(hang.id);
    w.engine.wait(hang.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_listening_and_wait_returns() {
    let w = World::new().await;
    let s = serve(w.api(World::config())).await;
    let addr = s.running.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    assert_eq!(client().get(s.url("/health")).send().await.unwrap().status(), StatusCode::OK);
    s.stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), s.running.wait()).await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn a_port_in_use_is_an_error_naming_the_address() {
    let w = World::new().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err =
        w.api(World::config().bind(addr)).build().unwrap().serve(std::future::pending()).await.unwrap_err();
    assert!(!err.is_config());
    assert!(err.to_string().starts_with(&format!("cannot listen on {addr}: ")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_exported_as_gauges_kept_current_without_anyone_asking() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let w = World::new().await;
    let c = client();
    let up = std::sync::Arc::new(AtomicBool::new(true));
    let flag = up.clone();
    let s = serve(w.api(World::config().ready_interval(Duration::from_millis(50))).ready_check(
        FnCheck::new("aria2", move || {
            let ok = flag.load(Ordering::SeqCst);
            async move { if ok { Ok(()) } else { Err("connection refused".to_string()) } }
        }),
    ))
    .await;
    let metrics = || async { c.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    let until = |want: &'static str| {
        let metrics = &metrics;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let text = metrics().await;
                if text.contains(want) {
                    return text;
                }
                assert!(tokio::time::Instant::now() < deadline, "{want} never showed:\n{text}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let text = until(r#"mltb_ready_check_ok{check="aria2"} 1"#).await;
    assert!(text.contains("# HELP mltb_ready_check_ok"), "{text}");
    assert!(text.contains(r#"mltb_tasks_finished_total{state="failed"} 0"#), "{text}");
    // aria2 goes away: the gauge follows with no /ready request.
    up.store(false, Ordering::SeqCst);
    until(r#"mltb_ready_check_ok{check="aria2"} 0"#).await;
}
