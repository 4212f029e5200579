//! The task dashboard in a real browser (headless Chromium over WebDriver): nothing
//! without the token, tasks live once logged in, cancel from the page, and a forged
//! request refused. Saves a screenshot of the page (into `MLTB_SCREENSHOTS` when set,
//! which is how `docs/images/dashboard.png` is made).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use mltb_testkit::Browser;
use serde_json::json;
use support::{TOKEN, World, serve};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_chromium_logs_in_shows_tasks_live_and_cancels_one() {
    let w = World::new().await;
    let s = serve(w.api(World::config()).download_dir(w.download_dir())).await;
    let running = w.submit("http://files.example/hang-ubuntu-24.04.iso").await;
    let finished = w.submit("http://files.example/notes.txt").await;
    w.until_downloading(running.id).await;
    let browser = Browser::start(1100, 760)
        .await
        .expect("headless Chromium (Debian: apt-get install chromium chromium-driver)");

    // Without the token: the login form, and no task anywhere.
    browser.goto(&s.url("/dashboard")).await.unwrap();
    assert!(browser.url().await.unwrap().ends_with("/dashboard/login"));
    let body = browser.run("return document.body.innerText;", json!([])).await.unwrap();
    assert!(!body.as_str().unwrap().contains("ubuntu"), "{body}");
    let events =
        browser.run("const r = await fetch('/dashboard/events'); return r.status;", json!([])).await.unwrap();
    assert_eq!(events, 401);

    // A wrong token, then the right one.
    let field = browser.find("#token").await.unwrap().expect("the token field");
    browser.type_text(&field, "wrong-token\u{E007}").await.unwrap();
    browser
        .wait(
            "the refusal",
            WAIT,
            "return document.querySelector('.message')?.innerText.includes('not the API token');",
        )
        .await
        .unwrap();
    let field = browser.find("#token").await.unwrap().expect("the token field");
    browser.type_text(&field, &format!("{TOKEN}\u{E007}")).await.unwrap();
    browser.wait("the live list", WAIT, "return document.body.dataset.ready === '1';").await.unwrap();
    assert!(browser.url().await.unwrap().ends_with("/dashboard"));
    let cookie_seen_by_script = browser.run("return document.cookie;", json!([])).await.unwrap();
    assert_eq!(cookie_seen_by_script, "", "the session cookie is HttpOnly");

    // Both tasks are listed; the running one with its progress and engine.
    let row = format!("li.task[data-id='{}']", running.id);
    let shown = browser
        .wait("the running task", WAIT, &format!("const li = document.querySelector(\"{row}\"); return li && li.dataset.state === 'downloading' && li.innerText;"))
        .await
        .unwrap();
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("hang-ubuntu-24.04.iso") && shown.contains("10.0%") && shown.contains("aria2"),
        "{shown}"
    );
    browser
        .wait(
            "the finished task",
            WAIT,
            &format!(
                "return document.querySelector(\"li.task[data-id='{}']\")?.dataset.state === 'completed';",
                finished.id
            ),
        )
        .await
        .unwrap();
    // A task submitted now appears without a reload.
    let later = w.submit("http://files.example/hang-later.bin").await;
    browser
        .wait(
            "the new task",
            WAIT,
            &format!(
                "return document.querySelector(\"li.task[data-id='{}']\")?.dataset.state === 'downloading';",
                later.id
            ),
        )
        .await
        .unwrap();
    let shots =
        std::env::var_os("MLTB_SCREENSHOTS").map_or_else(|| w.dir.path().join("shots"), PathBuf::from);
    let shot = shots.join("dashboard.png");
    browser.screenshot(&shot).await.unwrap();
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"), "a PNG");

    // A forged request (no CSRF token) from the page's own origin is refused.
    let forged = browser
        .run(
            &format!(
                "const r = await fetch('/dashboard/tasks/{}/cancel', {{method: 'POST'}}); return r.status;",
                running.id
            ),
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(forged, 403);
    assert!(w.engine.tasks().iter().any(|v| v.id == running.id), "still running");

    // The cancel button cancels it.
    let button = browser.find(&format!("{row} button.cancel")).await.unwrap().expect("a cancel button");
    browser.click(&button).await.unwrap();
    browser
        .wait(
            "the cancelled task",
            WAIT,
            &format!("return document.querySelector(\"{row}\")?.dataset.state === 'cancelled';"),
        )
        .await
        .unwrap();
    assert!(!w.engine.tasks().iter().any(|v| v.id == running.id), "cancelled in the engine");

    // At phone width the list still fits the screen: nothing scrolls sideways.
    browser.resize(390, 844).await.unwrap();
    browser.wait("the phone width", WAIT, "return window.innerWidth <= 420;").await.unwrap();
    let fits = browser
        .run("return document.documentElement.scrollWidth <= window.innerWidth;", json!([]))
        .await
        .unwrap();
    assert_eq!(fits, true);
    browser.close().await;
}
