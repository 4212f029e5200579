//! `mltb sandbox`'s chat page in a real browser (headless Chromium over WebDriver): a
//! `/leech` typed in the page, the status message edited in place, the parts downloaded
//! from the page with the sample's exact bytes; then a second, slow task cancelled with
//! the board's buttons. Saves a screenshot (into `MLTB_SCREENSHOTS` when set, which is
//! how `docs/images/sandbox-chat.png` is made).

use std::process::{Command, Stdio};
use std::time::Duration;

use mltb_testkit::Browser;
use serde_json::json;
use sha2::{Digest, Sha256};

mod support;

const MLTB: &str = env!("CARGO_BIN_EXE_mltb");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leech_and_a_cancel_in_the_sandbox_chat_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(MLTB)
        .args(["sandbox", "--dir", dir.path().join("sb").to_str().unwrap()])
        .env_remove("MLTB_BOT_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mltb sandbox starts");
    let lines = support::welcome(&mut child);
    let page =
        lines.iter().find(|l| l.contains("/_sim/chat_page")).expect("the chat page's URL").trim().to_owned();
    let samples = lines.iter().find_map(|l| l.strip_prefix("Samples: ")).expect("the samples").to_owned();
    let sample = |name: &str| samples.split_whitespace().find(|u| u.ends_with(name)).unwrap().to_owned();
    let big = sample("sample-60MB.bin");
    let want = format!("{:x}", Sha256::digest(reqwest::get(&big).await.unwrap().bytes().await.unwrap()));

    let browser = Browser::start(900, 1000)
        .await
        .expect("headless Chromium (Debian: apt-get install chromium chromium-driver)");
    browser.goto(&page).await.unwrap();
    browser
        .wait("the page", Duration::from_secs(10), "return document.body.dataset.ready === '1';")
        .await
        .unwrap();
    let input = browser.find("#text").await.unwrap().expect("the message field");
    browser.type_text(&input, &format!("/leech {big}\u{E007}")).await.unwrap();

    // The status board's message is edited in place, then the two parts arrive.
    let wait = Duration::from_secs(120);
    browser
        .wait(
            "an edited status message",
            wait,
            "return [...document.querySelectorAll('.msg.bot')].some(m => Number(m.dataset.edits) > 0);",
        )
        .await
        .unwrap();
    browser.wait("two parts", wait, "return document.querySelectorAll('.doc a').length >= 2;").await.unwrap();
    let names = browser
        .run("return [...document.querySelectorAll('.doc a')].map(a => a.textContent);", json!([]))
        .await
        .unwrap();
    assert_eq!(names, json!(["sample-60MB.bin.001", "sample-60MB.bin.002"]));
    // Downloaded from the page, the parts put together are the sample, byte for byte.
    let got = browser
        .run(
            "const parts = await Promise.all([...document.querySelectorAll('.doc a')].map(a => fetch(a.href).then(r => r.arrayBuffer())));
             const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
             let at = 0; for (const p of parts) { all.set(new Uint8Array(p), at); at += p.byteLength; }
             const sum = await crypto.subtle.digest('SHA-256', all);
             return [...new Uint8Array(sum)].map(b => b.toString(16).padStart(2, '0')).join('');",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(got, json!(want), "the leeched parts, downloaded from the page");
    browser
        .wait(
            "the completion message",
            wait,
            "return [...document.querySelectorAll('.msg.bot')].some(m => m.querySelector('b')?.textContent === 'Done' && m.innerText.includes('(#1)'));",
        )
        .await
        .unwrap();

    // A slow task, cancelled with the board's buttons (cancel, then confirm).
    let input = browser.find("#text").await.unwrap().expect("the message field");
    browser.type_text(&input, &format!("/leech {}\u{E007}", sample("slow-30MB.bin"))).await.unwrap();
    let press = |label: &'static str| {
        format!(
            "const b = [...document.querySelectorAll('.keyboard button')].find(b => b.textContent === '{label}'); if (b) {{ b.click(); return true; }} return false;"
        )
    };
    browser.wait("a cancel button for task 2", wait, &press("✖ Cancel #2")).await.unwrap();
    browser.wait("the confirm button", wait, &press("✔ Confirm cancel #2")).await.unwrap();
    let notice = browser
        .wait(
            "the cancelled notice",
            wait,
            "const m = [...document.querySelectorAll('.msg.bot')].find(m => m.querySelector('b')?.textContent === 'Cancelled' && m.innerText.includes('(#2)')); return m && m.innerText;",
        )
        .await
        .unwrap();
    assert!(notice.as_str().unwrap().contains("slow-30MB.bin"), "{notice}");
    let shots = std::env::var_os("MLTB_SCREENSHOTS")
        .map_or_else(|| dir.path().join("shots"), std::path::PathBuf::from);
    let shot = shots.join("sandbox-chat.png");
    browser.screenshot(&shot).await.unwrap();
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
    browser.close().await;
    let _ = child.kill();
    let _ = child.wait();
}
