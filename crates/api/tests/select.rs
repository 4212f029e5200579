//! The torrent file-selection page over HTTP: the file list only with the task's key
//! (the same 404 for a wrong key as for no task), a choice from this site only, checked
//! against the torrent's files, taken once; the link expired (410) once the download
//! starts or the task is cancelled; the security headers on every answer.

mod support;

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use support::{PICK, World, serve};

fn assert_strict_headers(h: &reqwest::header::HeaderMap, what: &str) {
    let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h.get("x-content-type-options").map(HeaderValue::as_bytes), Some(&b"nosniff"[..]), "{what}");
}

/// Waits (bounded) until the live task `id` satisfies `cond`.
async fn until_view(w: &World, id: i64, what: &str, cond: impl Fn(&mltb_engine::TaskView) -> bool) {
    let mut changes = w.engine.changes();
    let seen = async {
        while !w.engine.tasks().iter().any(|v| v.id == id && cond(v)) {
            changes.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(10), seen)
        .await
        .unwrap_or_else(|_| panic!("{what} within 10 s"));
}

async fn stored_key(w: &World, id: i64) -> String {
    let task = w.store.task(id).await.unwrap().unwrap();
    task.options["choose_key"].as_str().expect("a task with choose has a key").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_shown_and_chosen_only_with_the_key_and_the_link_expires() {
    let w = World::new().await;
    let s = serve(w.api(World::config())).await;
    let http = support::client();
    let t = w.submit_with("http://files.example/pick-secret.torrent", json!({"choose": true})).await;
    until_view(&w, t.id, "the task waits for a choice", |v| v.choosing).await;
    let key = w.engine.choice_key(t.id).unwrap();
    assert_eq!(key, stored_key(&w, t.id).await);

    // The page itself holds nothing: it is the same for every task.
    let r = http.get(s.url(&format!("/select/{}", t.id))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_strict_headers(r.headers(), "/select/{id}");
    assert_eq!(r.headers().get("cache-control").map(HeaderValue::as_bytes), Some(&b"no-store"[..]));
    let page = r.text().await.unwrap();
    assert!(page.contains("/select/select.js") && !page.contains("docs/a.txt"), "{page}");
    for path in ["/select/select.js", "/select/select.css"] {
        let r = http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_strict_headers(r.headers(), path);
    }
    assert_eq!(http.get(s.url("/select/abc")).send().await.unwrap().status(), 400);

    // Without the key, with a wrong one, or for a task that does not exist: one answer.
    let files = |id: i64, key: Option<&str>| {
        let mut r = http.get(s.url(&format!("/select/{id}/files")));
        if let Some(k) = key {
            r = r.header("x-select-key", k);
        }
        r.send()
    };
    for (id, k) in [(t.id, None), (t.id, Some("0".repeat(32))), (t.id + 50, Some(key.clone()))] {
        let r = files(id, k.as_deref()).await.unwrap();
        assert_eq!(r.status(), 404, "task {id}, key {k:?}");
        assert_strict_headers(r.headers(), "a refused list");
        let body = r.text().await.unwrap();
        assert!(body.contains("no selection") && !body.contains("a.txt"), "{body}");
    }

    let r = files(t.id, Some(&key)).await.unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["task"], t.id);
    assert_eq!(list["name"], "pack");
    let want: Vec<Value> =
        PICK.iter().zip(1..).map(|((p, n), i)| json!({"index": i, "path": p, "size": n})).collect();
    assert_eq!(list["files"], Value::Array(want));
    assert_eq!(list["total_bytes"], PICK.iter().map(|f| f.1).sum::<u64>());

    // The API's task list says it waits for a choice.
    let r =
        http.get(s.url(&format!("/api/v1/tasks/{}", t.id))).bearer_auth(support::TOKEN).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["choosing"], true);

    let choose = |id: i64, key: &str, body: &str, origin: Option<&str>| {
        let mut r = http
            .post(s.url(&format!("/select/{id}")))
            .header("x-select-key", key)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    // A choice from another site is refused, whatever it carries.
    let r = choose(t.id, &key, r#"{"files":[1]}"#, Some("http://evil.example")).await.unwrap();
    assert_eq!(r.status(), 403);
    // Bad bodies and bad indexes say what was expected.
    let r = choose(t.id, &key, r#"{"files":"all"}"#, None).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("1-based file indexes"));
    let r = choose(t.id, &key, r#"{"files":[1, 9]}"#, None).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("file 9 is not one of the torrent's: expected 1 to 3"));
    let r = choose(t.id, &key, r#"{"files":[]}"#, None).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = choose(t.id, &"f".repeat(32), r#"{"files":[1]}"#, None).await.unwrap();
    assert_eq!(r.status(), 404, "a wrong key chooses nothing");
    assert!(w.downloads.selected.lock().unwrap().is_empty());

    let origin = s.base.clone();
    let r = choose(t.id, &key, r#"{"files":[3,1]}"#, Some(&origin)).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_strict_headers(r.headers(), "a choice");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"task": t.id, "files": 2, "bytes": 30_100}));
    w.engine.wait(t.id).await;
    let selected: Vec<Vec<u32>> = w.downloads.selected.lock().unwrap().values().cloned().collect();
    assert_eq!(selected, [vec![1, 3]]);
    let stored = w.store.task(t.id).await.unwrap().unwrap();
    assert_eq!(stored.state.as_str(), "completed", "{:?}", stored.error);

    // The link has expired: 410 to the key's holder, still 404 to anyone else.
    let r = files(t.id, Some(&key)).await.unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("closed"));
    assert_eq!(choose(t.id, &key, r#"{"files":[2]}"#, None).await.unwrap().status(), 410);
    assert_eq!(files(t.id, Some(&"0".repeat(32))).await.unwrap().status(), 404);
    assert_eq!(choose(t.id, &"0".repeat(32), r#"{"files":[2]}"#, None).await.unwrap().status(), 404);
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_waits_for_the_metadata_and_expires_when_the_task_is_cancelled() {
    let w = World::new().await;
    let s = serve(w.api(World::config())).await;
    let http = support::client();
    let files = |id: i64, key: &str| {
        http.get(s.url(&format!("/select/{id}/files"))).header("x-select-key", key).send()
    };

    // Still fetching the metadata: not ready yet (409), and nothing to choose.
    let t = w.submit_with("http://files.example/meta.magnet", json!({"choose": true})).await;
    until_view(&w, t.id, "the metadata download", |v| v.state.as_str() == "downloading").await;
    let key = stored_key(&w, t.id).await;
    let r = files(t.id, &key).await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("metadata"));
    assert!(w.engine.cancel(t.id));
    w.engine.wait(t.id).await;
    assert_eq!(files(t.id, &key).await.unwrap().status(), 410);

    // Cancelled while the choice is open: the choice closes with it.
    let t = w.submit_with("http://files.example/pick.torrent", json!({"choose": true})).await;
    until_view(&w, t.id, "the task waits for a choice", |v| v.choosing).await;
    let key = w.engine.choice_key(t.id).unwrap();
    assert_eq!(files(t.id, &key).await.unwrap().status(), 200);
    assert!(w.engine.cancel(t.id));
    w.engine.wait(t.id).await;
    assert_eq!(w.store.task(t.id).await.unwrap().unwrap().state.as_str(), "cancelled");
    assert_eq!(files(t.id, &key).await.unwrap().status(), 410);
    assert!(w.downloads.selected.lock().unwrap().is_empty());
    assert_eq!(w.downloads.cancelled.lock().unwrap().len(), 2, "both downloads were removed");
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_whose_sizes_overflow_shows_the_largest_total() {
    // One task waiting for a choice, whose (crafted) torrent lists two files of nearly
    // `u64::MAX` bytes each.
    let files = vec![
        mltb_engine::ChoiceFile::new(1, "crafted/a.bin", u64::MAX - 1),
        mltb_engine::ChoiceFile::new(2, "crafted/b.bin", u64::MAX - 1),
    ];
    let choice = mltb_engine::Choice::new(7, Some("crafted".into()), files);
    let engine = support::StandIn { choice: Some(("crafted-key".into(), choice)), ..Default::default() };
    let metrics = std::sync::Arc::new(mltb_api::Metrics::new());
    let api = mltb_api::Api::builder(World::config(), metrics, std::sync::Arc::new(engine));
    let s = serve(api).await;
    let r = support::client()
        .get(s.url("/select/7/files"))
        .header("x-select-key", "crafted-key")
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["total_bytes"].as_u64(), Some(u64::MAX), "{list}");
    assert_eq!(list["files"].as_array().map(Vec::len), Some(2), "{list}");
    s.stop.cancel();
}
