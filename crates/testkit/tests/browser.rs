//! The testkit's headless Chromium against pages of its own file server.

use std::time::Duration;

use mltb_testkit::{Browser, FileServer, ServedFile};

fn page(body: &str) -> ServedFile {
    ServedFile::new(format!("<!doctype html><html><body{body}</body></html>")).content_type("text/html")
}

/// A page that navigates away while `wait` polls it (a form submitted, a redirect) takes
/// the document out from under the polling script; `wait` keeps polling on the next page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_polls_on_through_a_navigation_under_its_script() {
    let server = FileServer::builder()
        .serve("/first", page(">first"))
        .serve("/second", page(" data-ready=\"1\">second"))
        .start()
        .await
        .unwrap();
    let browser = Browser::start(800, 600)
        .await
        .expect("headless Chromium (Debian: apt-get install chromium chromium-driver)");
    browser.goto(&server.url("/first")).await.unwrap();
    // The first poll starts the navigation and never answers: its document unloads under it.
    let script = "if (!location.pathname.endsWith('/second')) { location.href = '/second'; \
                  await new Promise(() => {}); } return document.body.dataset.ready === '1' && location.pathname;";
    let shown = browser.wait("the second page", Duration::from_secs(20), script).await.unwrap();
    assert_eq!(shown, "/second");
    // A condition that never holds still times out, naming what it waited for.
    let err = browser.wait("a third page", Duration::from_millis(300), "return false;").await.unwrap_err();
    assert!(err.to_string().contains("a third page"), "{err}");
}

/// Processes whose command line names `profile` (the browser and its helpers).
fn browser_processes(profile: &std::path::Path) -> usize {
    let needle = format!("--user-data-dir={}", profile.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(&needle))
        .count()
}

/// A session dropped without `close` (a test that failed, or forgot) leaves no Chromium
/// behind: killing the driver alone used to leave its browser running, orphaned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_leaves_no_browser_running() {
    let browser = Browser::start(400, 300)
        .await
        .expect("headless Chromium (Debian: apt-get install chromium chromium-driver)");
    let profile = browser.profile().to_path_buf();
    assert!(browser_processes(&profile) > 0, "the browser runs with its profile {}", profile.display());
    drop(browser);
    // SIGKILL is delivered at once; the processes go as the kernel tears them down.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while browser_processes(&profile) > 0 {
        assert!(std::time::Instant::now() < deadline, "a Chromium of {} still runs", profile.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
