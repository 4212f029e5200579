//! Torrent file selection in a real browser (headless Chromium over WebDriver), with the
//! real `mltb` binary, real aria2c and the testkit's tracker and seeder: `/leech -s
//! <magnet>` of a torrent of five files; the bot sends a link to the selection page;
//! there, with the keyboard, everything is unticked and one folder of two files is
//! ticked as a whole (the selected total follows); the download starts; only those two
//! files arrive, byte for byte; the link has expired. Saves a screenshot (into
//! `MLTB_SCREENSHOTS` when set, which is how `docs/images/select-files.png` is made).

mod support;

use std::time::Duration;

use mltb_telegram_sim::{Outbound, Sim, SimConfig};
use mltb_testkit::{Browser, Seeder, TorrentBuilder, Tracker};
use serde_json::json;
use sha2::{Digest, Sha256};
use support::{Bot, CHAT, data, until};

const USER: i64 = 2000;

/// The selected total the page shows.
async fn total(b: &Browser) -> serde_json::Value {
    b.run("return document.getElementById('total').textContent;", json!([])).await.unwrap()
}

/// The bot's message with a link to the selection page: its text and the link (a
/// `text_link` entity).
fn link_message(sent: &[Outbound]) -> Option<(String, String)> {
    sent.iter().filter(|o| o.chat_id == CHAT && o.method == "sendMessage").find_map(|o| {
        let url = o.entities.as_ref()?.as_array()?.iter().find_map(|e| {
            let url = e.get("url")?.as_str()?;
            (e.get("type")?.as_str()? == "text_link" && url.contains("/select/")).then(|| url.to_owned())
        })?;
        Some((o.text.clone()?, url))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_five_files_chosen_in_the_browser_are_the_only_ones_downloaded() {
    let tracker = Tracker::start().await.unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("docs/guide.txt", data(120_000)),
        ("docs/notes.txt", data(260_000)),
        ("video/part-1.bin", data(900_000)),
        ("video/part-2.bin", data(650_000)),
        ("readme.txt", data(30_000)),
    ];
    let mut builder = TorrentBuilder::multi("holiday").announce(tracker.announce_url());
    for (path, content) in &files {
        builder = builder.file(*path, content.clone());
    }
    let torrent = builder.build().unwrap();
    let seeds = tempfile::tempdir().unwrap();
    torrent.write_files(seeds.path()).unwrap();
    let _seeder = Seeder::start(&torrent, seeds.path(), &tracker).await.expect("the seeder starts");

    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let _bot = Bot::start(
        &sim,
        dir.path(),
        &[
            ("MLTB_API_ENABLED", "true"),
            ("MLTB_API_BIND", &bind),
            ("MLTB_API_TOKEN", "select-api-token-0123456789"),
            ("MLTB_STATUS_INTERVAL", "3s"),
        ],
    );
    sim.send_text(CHAT, USER, &format!("/leech -s {}", torrent.magnet(Some(&tracker.announce_url()))));
    let sent = until(&sim, 60, "the link to the selection page", |s| link_message(s).is_some()).await;
    let (message, link) = link_message(&sent).unwrap();
    assert!(message.contains("choose the files") && message.contains("holiday"), "{message}");
    assert!(link.starts_with(&format!("http://{bind}/select/")) && link.contains("#k="), "{link}");

    let browser = Browser::start(420, 900)
        .await
        .expect("headless Chromium (Debian: apt-get install chromium chromium-driver)");
    browser.goto(&link).await.unwrap();
    let wait = Duration::from_secs(30);
    browser.wait("the file list", wait, "return document.body.dataset.ready === '1';").await.unwrap();

    let tree = browser
        .run(
            "return [...document.querySelectorAll('#tree label')].map(l => l.querySelector('.name').textContent);",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(
        tree,
        json!([
            "holiday/",
            "docs/",
            "guide.txt",
            "notes.txt",
            "video/",
            "part-1.bin",
            "part-2.bin",
            "readme.txt"
        ]),
        "the tree, folders first"
    );
    assert!(total(&browser).await.as_str().unwrap().starts_with("Selected: 5 of 5 files"), "all at first");

    // With the keyboard only: Space on "Select none", then Space on the video folder.
    let none = browser.find("#none").await.unwrap().expect("the Select none button");
    browser.type_text(&none, " ").await.unwrap();
    browser.wait("nothing selected", wait, "return document.body.dataset.selected === '0';").await.unwrap();
    assert_eq!(
        browser.run("return document.getElementById('start').disabled;", json!([])).await.unwrap(),
        json!(true),
        "nothing to start"
    );
    let video = browser
        .run(
            "const l = [...document.querySelectorAll('#tree label')].find(l => l.querySelector('.name').textContent === 'video/');
             l.querySelector('input').id = 'video-folder'; return true;",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(video, json!(true));
    let folder = browser.find("#video-folder").await.unwrap().unwrap();
    browser.type_text(&folder, " ").await.unwrap();
    browser
        .wait("the folder's two files", wait, "return document.body.dataset.selected === '2';")
        .await
        .unwrap();
    let shown = total(&browser).await;
    assert_eq!(shown, json!("Selected: 2 of 5 files, 1.48 MiB of 1.87 MiB"), "the total follows");
    let root_mixed = browser
        .run("return document.querySelector('#tree > li > label > input').indeterminate;", json!([]))
        .await
        .unwrap();
    assert_eq!(root_mixed, json!(true), "the torrent's folder shows a partial choice");

    let sideways = browser
        .run("return document.documentElement.scrollWidth > window.innerWidth;", json!([]))
        .await
        .unwrap();
    assert_eq!(sideways, json!(false), "nothing scrolls sideways at phone width");

    let shots = std::env::var_os("MLTB_SCREENSHOTS")
        .map_or_else(|| dir.path().join("shots"), std::path::PathBuf::from);
    let shot = shots.join("select-files.png");
    browser.screenshot(&shot).await.unwrap();
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));

    let start = browser.find("#start").await.unwrap().unwrap();
    browser.type_text(&start, "\u{E007}").await.unwrap();
    browser
        .wait("the download to start", wait, "return document.body.dataset.started === '1';")
        .await
        .unwrap();

    // Only the two chosen files arrive, byte for byte, then the task is done.
    let docs = |s: &[Outbound]| -> Vec<(String, String)> {
        let mut d: Vec<_> = s
            .iter()
            .filter(|o| o.chat_id == CHAT)
            .filter_map(|o| o.file.clone())
            .map(|f| (f.name, f.sha256))
            .collect();
        d.sort();
        d
    };
    let sent = until(&sim, 120, "the completion message", |s| {
        s.iter().any(|o| o.chat_id == CHAT && o.text.as_deref().is_some_and(|t| t.contains("Done")))
    })
    .await;
    let hash = |c: &[u8]| format!("{:x}", Sha256::digest(c));
    assert_eq!(
        docs(&sent),
        [("part-1.bin".to_string(), hash(&files[2].1)), ("part-2.bin".to_string(), hash(&files[3].1))],
        "only the chosen files"
    );

    // The link has expired. (The same address again is a same-document navigation: the
    // page is reloaded instead.)
    browser.run("setTimeout(() => location.reload(), 0); return true;", json!([])).await.unwrap();
    browser
        .wait("the expired page", wait, "return document.body.dataset.ready === 'expired';")
        .await
        .unwrap();
    let status =
        browser.run("return document.getElementById('status').textContent;", json!([])).await.unwrap();
    assert!(status.as_str().unwrap().contains("expired"), "{status}");
    browser.close().await;
}
