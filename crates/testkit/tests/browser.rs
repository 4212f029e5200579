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
