//! Leech against the Telegram simulator: split parts that join to the source, progress,
//! resume from the first unconfirmed part, `file_id` reuse, and cancel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mltb_engine::leech::{LeechTarget, TelegramUploader};
use mltb_engine::{PartLog, SentPart, UploadContext, UploadFile, UploadProgress, UploadRequest, Uploader};
use mltb_store::{SqliteStore, StoreConfig};
use mltb_telegram::Client;
use mltb_telegram::scheduler::Scheduler;
use mltb_telegram_sim::{Sim, SimConfig};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const MB: u64 = 1_000_000;
const CHAT: i64 = 77;

#[derive(Default)]
struct Parts(Mutex<Vec<(i64, SentPart)>>);

#[async_trait::async_trait]
impl PartLog for Parts {
    async fn record(&self, file: i64, part: &SentPart) -> mltb_engine::Result<()> {
        self.0.lock().unwrap().push((file, part.clone()));
        Ok(())
    }
}

struct Setup {
    sim: Sim,
    scheduler: Scheduler,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

async fn setup() -> Setup {
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    sim.add_chat(CHAT);
    let client = Client::builder(sim.token())
        .api_url(sim.api_url())
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let scheduler = Scheduler::builder().build(client);
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open_sqlite(dir.path().join("mltb.db"), StoreConfig::new()).await.unwrap());
    let root = dir.path().join("task");
    std::fs::create_dir_all(&root).unwrap();
    Setup { sim, scheduler, store, _dir: dir, root }
}

fn data(len: u64, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Every file under `dir`, recursively.
fn stored_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() { out.extend(stored_files(&path)) } else { out.push(path) }
    }
    out
}

/// Reads back every document the simulator stored, in the order sent.
fn received(sim: &Sim) -> Vec<(String, Vec<u8>)> {
    let stored: Vec<Vec<u8>> =
        stored_files(sim.files_dir()).iter().map(|p| std::fs::read(p).unwrap()).collect();
    sim.sent()
        .into_iter()
        .filter_map(|o| o.file)
        .map(|f| {
            let bytes = stored
                .iter()
                .find(|b| hex(b) == f.sha256)
                .cloned()
                .unwrap_or_else(|| panic!("the simulator stored {}", f.name));
            (f.name, bytes)
        })
        .collect()
}

#[tokio::test]
async fn a_30_mb_file_goes_as_three_10_mb_parts_that_join_to_the_source_then_by_file_id() {
    let s = setup().await;
    let source = data(30 * MB, 7);
    let path = s.root.join("disk.img");
    std::fs::write(&path, &source).unwrap();
    let uploader =
        TelegramUploader::new(s.scheduler.clone(), s.store.clone(), LeechTarget::new(CHAT, 10 * MB)).unwrap();
    let request =
        UploadRequest::new(1, "disk.img", &s.root, vec![UploadFile::new(11, &path, "disk.img", 30 * MB)]);
    let parts = Parts::default();
    let seen: Mutex<Vec<UploadProgress>> = Mutex::default();
    let progress = |p: UploadProgress| seen.lock().unwrap().push(p);
    let outcome = uploader
        .upload(&request, UploadContext::new(&parts, &progress, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!((outcome.parts_sent, outcome.reused), (3, 0));

    let got = received(&s.sim);
    let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["disk.img.001", "disk.img.002", "disk.img.003"]);
    let joined: Vec<u8> = got.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(hex(&joined), hex(&source), "the parts joined are the source, byte for byte");
    let recorded = parts.0.lock().unwrap().clone();
    assert_eq!(
        recorded.iter().map(|(f, p)| (*f, p.index, p.size)).collect::<Vec<_>>(),
        [(11, 0, 10 * MB), (11, 1, 10 * MB), (11, 2, 10 * MB)]
    );
    let captions: Vec<_> = s.sim.sent().into_iter().filter_map(|o| o.caption).collect();
    assert!(captions[1].contains("disk.img") && captions[1].contains("part 2/3"), "{captions:?}");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.windows(2).all(|w| w[0].sent <= w[1].sent), "progress never goes back");
    assert_eq!(seen.last().map(|p| (p.sent, p.total)), Some((30 * MB, 30 * MB)));

    // The same bytes leeched again under the same name (another task): sent by file_id,
    // no upload.
    let copy = s.root.join("copy").join("disk.img");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, &source).unwrap();
    let stored_before = stored_files(s.sim.files_dir()).len();
    let again =
        UploadRequest::new(2, "disk.img", &s.root, vec![UploadFile::new(12, &copy, "disk.img", 30 * MB)]);
    let outcome = uploader
        .upload(&again, UploadContext::new(&Parts::default(), &|_| {}, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!((outcome.parts_sent, outcome.reused), (3, 3));
    assert_eq!(stored_files(s.sim.files_dir()).len(), stored_before, "no second upload");
    assert_eq!(s.sim.sent().iter().filter(|o| o.file.is_some()).count(), 6, "three more messages");

    // Under another name (a rename): uploaded again, so that the documents carry it (one
    // sent by file_id would show the name its bytes were first uploaded under).
    let renamed = s.root.join("again.img");
    std::fs::write(&renamed, &source).unwrap();
    let again = UploadRequest::new(
        3,
        "again.img",
        &s.root,
        vec![UploadFile::new(13, &renamed, "again.img", 30 * MB)],
    );
    let outcome = uploader
        .upload(&again, UploadContext::new(&Parts::default(), &|_| {}, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!((outcome.parts_sent, outcome.reused), (3, 0));
    let names: Vec<String> = received(&s.sim).into_iter().skip(6).map(|(n, _)| n).collect();
    assert_eq!(names, ["again.img.001", "again.img.002", "again.img.003"]);
    s.scheduler.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_video_as_media_goes_by_send_video_under_its_prefixed_name_with_progress() {
    let s = setup().await;
    let source = data(3 * MB, 5);
    let path = s.root.join("clip.mp4");
    std::fs::write(&path, &source).unwrap();
    let target = LeechTarget::new(CHAT, 10 * MB).as_media(true).name_prefix("[x] ");
    let uploader = TelegramUploader::new(s.scheduler.clone(), s.store.clone(), target).unwrap();
    let request =
        UploadRequest::new(1, "clip.mp4", &s.root, vec![UploadFile::new(21, &path, "clip.mp4", 3 * MB)]);
    let seen: Mutex<Vec<u64>> = Mutex::default();
    let progress = |p: UploadProgress| seen.lock().unwrap().push(p.sent);
    let outcome = uploader
        .upload(&request, UploadContext::new(&Parts::default(), &progress, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!((outcome.parts_sent, outcome.reused), (1, 0));
    let sent = s.sim.sent();
    let methods: Vec<_> = sent.iter().filter(|o| o.file.is_some()).map(|o| o.method.as_str()).collect();
    assert_eq!(methods, ["sendVideo"]);
    let got = received(&s.sim);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "[x] clip.mp4", "the video carries the prefix in its file name");
    assert_eq!(hex(&got[0].1), hex(&source), "byte for byte");
    // The upload's own figures (the bytes it has read, the last of them all 3 MB) come
    // before the part is counted done; how many depends on how the read and the loop
    // interleave.
    let seen = seen.lock().unwrap().clone();
    let (done, in_flight) = seen.split_last().unwrap();
    assert_eq!(*done, 3 * MB);
    assert!(!in_flight.is_empty(), "progress is reported from the video's upload: {seen:?}");
    assert!(in_flight.iter().all(|&sent| sent > 0 && sent <= 3 * MB), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {seen:?}");

    // Again under the same name: sent as a video by file_id.
    let again =
        UploadRequest::new(2, "clip.mp4", &s.root, vec![UploadFile::new(22, &path, "clip.mp4", 3 * MB)]);
    let outcome = uploader
        .upload(&again, UploadContext::new(&Parts::default(), &|_| {}, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!((outcome.parts_sent, outcome.reused), (1, 1));
    assert_eq!(s.sim.sent().last().map(|o| o.method.clone()).as_deref(), Some("sendVideo"));
    s.scheduler.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn an_upload_resumes_from_the_first_unconfirmed_part() {
    let s = setup().await;
    let source = data(5 * MB, 3);
    let path = s.root.join("a.bin");
    std::fs::write(&path, &source).unwrap();
    let uploader =
        TelegramUploader::new(s.scheduler.clone(), s.store.clone(), LeechTarget::new(CHAT, 2 * MB)).unwrap();
    let mut file = UploadFile::new(5, &path, "a.bin", 5 * MB);
    // Parts 0 and 1 were confirmed before a restart.
    file.sent = vec![SentPart::message(0, 2 * MB, 100), SentPart::message(1, 2 * MB, 101)];
    let parts = Parts::default();
    let outcome = uploader
        .upload(
            &UploadRequest::new(3, "a.bin", &s.root, vec![file]),
            UploadContext::new(&parts, &|_| {}, CancellationToken::new()),
        )
        .await
        .unwrap();
    assert_eq!(outcome.parts_sent, 1);
    let got = received(&s.sim);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "a.bin.003");
    assert_eq!(hex(&got[0].1), hex(&source[4 * MB as usize..]));
    assert_eq!(parts.0.lock().unwrap()[0].1.index, 2);
    s.scheduler.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_upload_stops_and_records_nothing_more() {
    let s = setup().await;
    let path = s.root.join("big.bin");
    std::fs::write(&path, data(6 * MB, 9)).unwrap();
    let uploader =
        TelegramUploader::new(s.scheduler.clone(), s.store.clone(), LeechTarget::new(CHAT, 2 * MB)).unwrap();
    let request =
        UploadRequest::new(4, "big.bin", &s.root, vec![UploadFile::new(6, &path, "big.bin", 6 * MB)]);
    let parts = Parts::default();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    // Cancel as soon as the first part is confirmed.
    let progress = move |p: UploadProgress| {
        if p.sent >= 2 * MB {
            trigger.cancel();
        }
    };
    let err = uploader.upload(&request, UploadContext::new(&parts, &progress, cancel)).await.unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
    assert!(parts.0.lock().unwrap().len() <= 1, "nothing recorded after the cancel");
    assert!(s.sim.sent().iter().filter(|o| o.file.is_some()).count() <= 2);
    s.scheduler.shutdown().await;
    s.sim.shutdown().await;
}

#[test]
fn a_zero_split_size_is_refused_by_name() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let s = setup().await;
        let err = TelegramUploader::new(s.scheduler.clone(), s.store.clone(), LeechTarget::new(CHAT, 0))
            .unwrap_err();
        assert!(err.to_string().contains("split_size"), "{err}");
        s.sim.shutdown().await;
    });
}
