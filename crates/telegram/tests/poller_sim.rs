//! The poller and the client against the simulator.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use frankenstein::AsyncTelegramApi;
use frankenstein::input_file::InputFile;
use frankenstein::methods::SendDocumentParams;
use frankenstein::updates::{Update, UpdateContent};
use mltb_telegram::poller::{ConflictPolicy, Poller};
use mltb_telegram::{Error, UploadProgress};
use mltb_telegram_sim::{Fault, MB, Mode, SimConfig};
use serde_json::json;
use support::{client, eventually, start};

fn text(u: &Update) -> Option<&str> {
    match &u.content {
        UpdateContent::Message(m) => m.text.as_deref(),
        _ => None,
    }
}

async fn next(p: &mut Poller) -> Update {
    tokio::time::timeout(Duration::from_secs(10), p.recv())
        .await
        .expect("an update within 10 s")
        .expect("the poller is running")
        .expect("an update, not an error")
}

#[tokio::test]
async fn an_undecodable_update_is_skipped_and_the_rest_delivered() {
    let sim = start(SimConfig::default()).await;
    let first = sim.send_text(5, 5, "/mirror https://a.test/1");
    // A message that frankenstein cannot decode (no chat, no date) between two good ones.
    let bad = sim.inject_raw_update(json!({"update_id": 0, "message": {"message_id": "not a number"}}));
    let last = sim.send_text(5, 5, "/leech https://a.test/2");
    assert!(first < bad && bad < last);

    let mut p = Poller::builder(client(&sim)).timeout(1).spawn();
    let a = next(&mut p).await;
    let b = next(&mut p).await;
    assert_eq!((text(&a), text(&b)), (Some("/mirror https://a.test/1"), Some("/leech https://a.test/2")));
    assert_eq!(i64::from(b.update_id), last);
    eventually("the offset to pass the last update", || p.offset() == Some(last + 1)).await;

    // An update of a kind not in allowed_updates takes an id that is never delivered,
    // so the next delivered id is not contiguous; nothing is delivered twice.
    let skipped = sim.inject_raw_update(json!({"update_id": 0, "some_future_kind": {"x": 1}}));
    let c = sim.send_text(5, 5, "third");
    assert_eq!((skipped, c), (last + 1, last + 2));
    let got = next(&mut p).await;
    assert_eq!((i64::from(got.update_id), text(&got)), (c, Some("third")));
    eventually("the offset to pass the gap", || p.offset() == Some(c + 1)).await;
    assert!(p.shutdown().await.is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let sim = start(SimConfig::default()).await;
    sim.inject_fault_for("getUpdates", Fault::DropConnection, 2);
    sim.inject_fault_for("getUpdates", Fault::ServerError(502), 1);
    sim.send_text(7, 7, "hello");
    let mut p = Poller::builder(client(&sim))
        .timeout(1)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .spawn();
    assert_eq!(text(&next(&mut p).await), Some("hello"));
    let stats = sim.stats();
    assert_eq!(stats.dropped_connections, 2, "{stats:?}");
    assert_eq!(stats.responses_5xx, 1, "{stats:?}");
    p.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_second_poller_gets_the_first_a_conflict() {
    let sim = start(SimConfig::default()).await;
    let mut first = Poller::builder(client(&sim)).timeout(5).on_conflict(ConflictPolicy::Stop).spawn();
    sim.wait_for_poll(Duration::from_secs(10)).await.expect("the first long poll is in flight");
    let mut second = Poller::builder(client(&sim)).timeout(5).spawn();
    let err =
        tokio::time::timeout(Duration::from_secs(10), first.recv()).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("terminated by other getUpdates request"), "{err}");
    assert!(first.recv().await.is_none(), "Stop ends the stream");
    assert!(matches!(first.shutdown().await, Err(Error::Conflict { .. })));
    // The second one keeps working.
    sim.send_text(9, 9, "still here");
    assert_eq!(text(&next(&mut second).await), Some("still here"));
    second.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn uploads_report_progress_and_413_is_typed() {
    let sim = start(SimConfig::default().mode(Mode::Cloud { upload_limit: MB, download_limit: MB })).await;
    sim.add_chat(3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part.bin");
    std::fs::write(&path, vec![7u8; 300 * 1024]).unwrap();
    let seen: Arc<Mutex<Vec<UploadProgress>>> = Arc::default();
    let sink = seen.clone();
    let c = client(&sim).with_progress(move |p| sink.lock().unwrap().push(p.clone()));
    let params = SendDocumentParams::builder().chat_id(3).document(InputFile::from(path.clone())).build();
    let sent = c.send_document(&params).await.unwrap();
    assert_eq!(sent.result.document.unwrap().file_size, Some(300 * 1024));
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 2, "progress per chunk: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0].sent < w[1].sent));
    let last = seen.last().unwrap();
    assert_eq!(
        (last.sent, last.total, last.field.as_str(), last.file_name.as_str()),
        (300 * 1024, 300 * 1024, "document", "part.bin")
    );

    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![1u8; 2 * 1024 * 1024]).unwrap();
    let params = SendDocumentParams::builder().chat_id(3).document(InputFile::from(big)).build();
    let err = c.send_document(&params).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    assert!(!err.is_retryable());

    // Missing file: a typed error naming the path.
    let params =
        SendDocumentParams::builder().chat_id(3).document(InputFile::from(dir.path().join("nope"))).build();
    let err = c.send_document(&params).await.unwrap_err();
    assert!(matches!(&err, Error::File { path, .. } if path.ends_with("nope")), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn api_errors_are_typed_and_never_show_the_token() {
    let sim = start(SimConfig::default()).await;
    let wrong = mltb_telegram::Client::builder("42:WRONGSECRET").api_url(sim.api_url()).build().unwrap();
    let err = wrong.get_me().await.unwrap_err();
    assert_eq!(err.code(), Some(401));
    assert!(!format!("{err} {err:?}").contains("WRONGSECRET"));
    let c = client(&sim);
    let me = c.get_me().await.unwrap();
    assert!(me.result.is_bot);
    sim.shutdown().await;
}

#[tokio::test]
async fn file_slices_upload_their_bytes_only_through_the_scheduler() {
    use mltb_telegram::scheduler::{FileSlice, ProgressHook, Request, Scheduler, SendDocumentSlice};
    use sha2::Digest;

    let sim = start(SimConfig::default()).await;
    sim.add_chat(5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("movie.mkv");
    let data: Vec<u8> = (0..700_000_u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let scheduler = Scheduler::builder().build(client(&sim));
    let seen: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let sink = seen.clone();
    let hook = ProgressHook::new(move |sent, total| sink.lock().unwrap().push((sent, total)));
    let mut hashes = Vec::new();
    for (i, range) in [0..300_000_usize, 300_000..600_000, 600_000..700_000].into_iter().enumerate() {
        let slice =
            FileSlice::new(&path, range.start as u64, range.len() as u64, format!("movie.mkv.{:03}", i + 1));
        let request =
            SendDocumentSlice::new(5, slice).caption_html(format!("<b>movie.mkv</b> part {}/3", i + 1));
        let sent = scheduler
            .send(Request::SendDocumentSlice(Box::new(request.progress(hook.clone()))))
            .await
            .unwrap();
        let doc = sent.message().and_then(|m| m.document.clone()).expect("a document message");
        assert_eq!(doc.file_name.as_deref(), Some(format!("movie.mkv.{:03}", i + 1).as_str()));
        assert_eq!(doc.file_size, Some(range.len() as u64));
        hashes.push(format!("{:x}", sha2::Sha256::digest(&data[range])));
    }
    let files: Vec<_> =
        sim.sent().into_iter().filter_map(|o| o.file.map(|f| (f.sha256, o.caption))).collect();
    assert_eq!(
        files.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>(),
        hashes,
        "each part carries exactly its bytes"
    );
    assert_eq!(files[1].1.as_deref(), Some("movie.mkv part 2/3"), "the caption is parsed HTML");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.last(), Some(&(100_000, 100_000)));
    assert!(seen.contains(&(300_000, 300_000)));

    // The whole file as a video, under a name of its own, with progress.
    let slice = FileSlice::new(&path, 0, data.len() as u64, "[x] movie.mkv");
    let request = SendDocumentSlice::new(5, slice).as_video().caption_html("<b>[x] movie.mkv</b>");
    let video_seen: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let sink = video_seen.clone();
    let hook = ProgressHook::new(move |sent, total| sink.lock().unwrap().push((sent, total)));
    let request = Request::SendDocumentSlice(Box::new(request.progress(hook)));
    assert_eq!(request.method(), "sendVideo");
    let sent = scheduler.send(request).await.unwrap();
    let video = sent.message().and_then(|m| m.video.clone()).expect("a video message");
    assert_eq!(video.file_name.as_deref(), Some("[x] movie.mkv"));
    let last = sim.sent().pop().expect("the video's message");
    assert_eq!(last.method, "sendVideo");
    assert_eq!(last.file.map(|f| f.sha256), Some(format!("{:x}", sha2::Sha256::digest(&data))));
    assert_eq!(video_seen.lock().unwrap().last(), Some(&(700_000, 700_000)), "progress to the end");

    // A range past the end is refused before anything is sent.
    let past = FileSlice::new(&path, 600_000, 200_000, "x");
    let err = scheduler
        .send(Request::SendDocumentSlice(Box::new(SendDocumentSlice::new(5, past))))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::File { reason, .. } if reason.contains("past the end")), "{err:?}");
    scheduler.shutdown().await;

    // An upload whose abort flag is set stops instead of sending its bytes.
    let retry = mltb_telegram::scheduler::RetryPolicy { max_retries: 0, ..Default::default() };
    let scheduler = Scheduler::builder().retry(retry).build(client(&sim));
    let flag = mltb_telegram::scheduler::AbortFlag::new();
    flag.set();
    let before = sim.sent().len();
    let slice = FileSlice::new(&path, 0, 300_000, "aborted.bin");
    let request = SendDocumentSlice::new(5, slice).abort_when(flag);
    let err = scheduler.send(Request::SendDocumentSlice(Box::new(request))).await.unwrap_err();
    assert!(matches!(err, Error::Network(_)), "{err:?}");
    assert_eq!(sim.sent().len(), before, "nothing was delivered");
    scheduler.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_sent_document_downloads_byte_for_byte_within_a_limit() {
    let sim = start(SimConfig::default()).await;
    let bytes: Vec<u8> = (0..70_000_u32).map(|i| (i % 251) as u8).collect();
    sim.send_document(5, 5, "a.torrent", bytes.clone(), Some("/leech"));
    let mut p = Poller::builder(client(&sim)).timeout(1).spawn();
    let update = next(&mut p).await;
    let UpdateContent::Message(m) = &update.content else { panic!("a message: {update:?}") };
    let file_id = m.document.as_ref().expect("a document").file_id.clone();
    let c = client(&sim);
    assert_eq!(c.download_file(&file_id, 1 << 20).await.unwrap(), bytes);
    let e = c.download_file(&file_id, 1000).await.unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    assert!(!e.to_string().contains(sim.token()), "{e}");
    let e = c.download_file("no-such-file", 1 << 20).await.unwrap_err();
    assert!(!e.to_string().contains(sim.token()), "{e}");
    assert!(p.shutdown().await.is_ok());
    sim.shutdown().await;
}
