//! Mirror with real rclone: a directory tree copied to a local remote (through a config
//! file) and to `rclone serve webdav`, byte for byte; parts recorded, progress, resume,
//! cancel (no rclone left), failures as clear errors without secrets.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mltb_engine::mirror::{MirrorTarget, RcloneUploader};
use mltb_engine::{
    ErrorKind, PartLog, SentPart, UploadContext, UploadFile, UploadOutcome, UploadProgress, UploadRequest,
    Uploader,
};
use mltb_testkit::RcloneWebdav;
use tokio_util::sync::CancellationToken;

const MB: usize = 1_000_000;

#[derive(Default)]
struct Parts(Mutex<Vec<(i64, SentPart)>>);

#[async_trait::async_trait]
impl PartLog for Parts {
    async fn record(&self, file: i64, part: &SentPart) -> mltb_engine::Result<()> {
        self.0.lock().unwrap().push((file, part.clone()));
        Ok(())
    }
}

impl Parts {
    fn recorded(&self) -> Vec<(i64, SentPart)> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Default)]
struct Progress(Mutex<Vec<u64>>);

impl Progress {
    fn hook(&self) -> impl Fn(UploadProgress) + Send + Sync + '_ {
        move |p: UploadProgress| self.0.lock().unwrap().push(p.sent)
    }

    fn seen(&self) -> Vec<u64> {
        self.0.lock().unwrap().clone()
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
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

/// A task directory with a nested tree under `Show/`: a small file, a name with spaces
/// and non-ASCII letters, an empty file, and a 20 MB file.
struct Task {
    dir: tempfile::TempDir,
    files: Vec<(String, Vec<u8>)>,
}

impl Task {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            ("Show/a.txt".to_string(), b"hello mirror\n".to_vec()),
            ("Show/sub dir/ünï cødé ✓ 名前.bin".to_string(), data(300_000, 3)),
            ("Show/empty.txt".to_string(), Vec::new()),
            ("Show/big/big.bin".to_string(), data(20 * MB, 7)),
        ];
        for (relative, bytes) in &files {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        Self { dir, files }
    }

    fn request(&self) -> UploadRequest {
        let files = self
            .files
            .iter()
            .enumerate()
            .map(|(i, (relative, bytes))| {
                UploadFile::new(
                    i as i64 + 1,
                    self.dir.path().join(relative),
                    relative.clone(),
                    bytes.len() as u64,
                )
            })
            .collect();
        UploadRequest::new(42, "Show", self.dir.path(), files)
    }

    fn total(&self) -> u64 {
        self.files.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// Asserts every file arrived under `root` with the same bytes.
    fn assert_copied_to(&self, root: &Path) {
        for (relative, bytes) in &self.files {
            let copied = std::fs::read(root.join(relative))
                .unwrap_or_else(|e| panic!("{relative} is missing under {}: {e}", root.display()));
            assert!(
                copied == *bytes,
                "{relative}: {} bytes arrived, {} expected, or they differ",
                copied.len(),
                bytes.len()
            );
        }
    }
}

async fn upload(
    uploader: &RcloneUploader,
    request: &UploadRequest,
    parts: &Parts,
    progress: &Progress,
    cancel: CancellationToken,
) -> mltb_engine::Result<UploadOutcome> {
    let hook = progress.hook();
    uploader.upload(request, UploadContext::new(parts, &hook, cancel)).await
}

fn assert_strictly_increasing(seen: &[u64], total: u64) {
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "progress went backwards or repeated: {seen:?}");
    assert_eq!(seen.last().copied(), Some(total), "progress did not end at the total: {seen:?}");
}

/// A directory tree to a local remote named in an rclone config file: every byte
/// arrives, each file is recorded once with its remote path, progress only grows, and
/// neither the config path nor anything of it shows in Debug output.
#[tokio::test]
async fn mirrors_a_tree_to_a_local_remote_named_in_a_config_file() {
    let task = Task::new();
    let cloud = tempfile::tempdir().unwrap();
    let config = cloud.path().join("private-rclone.conf");
    std::fs::write(&config, "[cloud]\ntype = local\n").unwrap();
    let remote = format!("cloud:{}", cloud.path().join("drive").display());
    let target = MirrorTarget::new(remote, "Mirror/task-42").config_file(Some(config.clone()));
    let uploader = RcloneUploader::new(target.clone()).unwrap().stats_interval(Duration::from_millis(100));
    for text in [format!("{target:?}"), format!("{uploader:?}")] {
        assert!(!text.contains("private-rclone"), "the config path shows in {text}");
    }

    let (parts, progress) = (Parts::default(), Progress::default());
    let request = task.request();
    let outcome = upload(&uploader, &request, &parts, &progress, CancellationToken::new()).await.unwrap();

    let landed = cloud.path().join("drive/Mirror/task-42");
    task.assert_copied_to(&landed);
    assert_eq!(outcome.parts_sent, 4);
    assert_eq!(
        outcome.location.as_deref(),
        Some(format!("cloud:{}/Mirror/task-42/Show", cloud.path().join("drive").display()).as_str())
    );
    assert_eq!(outcome.link, None, "a local remote has no share links");

    let recorded = parts.recorded();
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    for (file, (id, part)) in request.files.iter().zip(&recorded) {
        assert_eq!(*id, file.id);
        assert_eq!((part.index, part.size, part.message_id), (0, file.size, None));
        let path = part.remote_path.as_deref().unwrap();
        assert!(
            path.starts_with("cloud:") && path.ends_with(&format!("Mirror/task-42/{}", file.relative)),
            "{path}"
        );
    }
    assert_strictly_increasing(&progress.seen(), task.total());
}

/// The same tree to `rclone serve webdav` (through an inline remote, no config file),
/// slowed so that rclone's stats report the big file mid-way.
#[tokio::test]
async fn mirrors_a_tree_to_webdav_with_progress_from_rclone_stats() {
    let task = Task::new();
    let webdav = RcloneWebdav::start().await.unwrap();
    let target =
        MirrorTarget::parse(&format!("{}Mirror", webdav.remote())).unwrap().flags(["--bwlimit", "40M"]);
    assert_eq!(target.path, "Mirror");
    let uploader = RcloneUploader::new(target).unwrap().stats_interval(Duration::from_millis(100));
    let (parts, progress) = (Parts::default(), Progress::default());
    let request = task.request();
    let outcome = upload(&uploader, &request, &parts, &progress, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}; server log: {}", webdav.log_tail()));

    task.assert_copied_to(&webdav.dir().unwrap().join("Mirror"));
    assert_eq!(parts.recorded().len(), 4);
    assert_eq!(outcome.location, Some(format!("{}Mirror/Show", webdav.remote())));
    assert_eq!(outcome.link, None, "rclone's WebDAV backend has no public links");

    let seen = progress.seen();
    assert_strictly_increasing(&seen, task.total());
    let mut boundaries = vec![0];
    for (_, bytes) in &task.files {
        boundaries.push(boundaries.last().unwrap() + bytes.len() as u64);
    }
    let mid_file = seen.iter().filter(|s| !boundaries.contains(s)).count();
    assert!(
        mid_file >= 2,
        "rclone's stats gave no progress inside a file: {seen:?} (files end at {boundaries:?})"
    );
}

/// Files recorded as sent before (a restart) are not copied again; the others are, and
/// progress counts the skipped ones as done.
#[tokio::test]
async fn resume_skips_files_already_recorded() {
    let task = Task::new();
    let cloud = tempfile::tempdir().unwrap();
    let uploader =
        RcloneUploader::new(MirrorTarget::new(format!(":local:{}", cloud.path().display()), "")).unwrap();
    let mut request = task.request();
    let skipped = request.files[0].clone();
    request.files[0].sent = vec![SentPart::remote(0, skipped.size, "earlier")];
    request.files[3].sent = vec![SentPart::remote(0, request.files[3].size, "earlier")];

    let (parts, progress) = (Parts::default(), Progress::default());
    let outcome = upload(&uploader, &request, &parts, &progress, CancellationToken::new()).await.unwrap();

    assert_eq!(outcome.parts_sent, 2);
    let ids: Vec<i64> = parts.recorded().iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![request.files[1].id, request.files[2].id]);
    assert!(!cloud.path().join(&skipped.relative).exists(), "a recorded file was copied again");
    assert!(!cloud.path().join(&request.files[3].relative).exists(), "a recorded file was copied again");
    for file in &request.files[1..3] {
        assert_eq!(
            std::fs::read(cloud.path().join(&file.relative)).unwrap(),
            std::fs::read(&file.path).unwrap()
        );
    }
    let seen = progress.seen();
    assert_eq!(seen.first().copied(), Some(skipped.size), "the skipped file counts as done first: {seen:?}");
    assert_strictly_increasing(&seen, task.total());
}

/// The rclone processes copying to `marker` (by their command line), from /proc.
fn rclone_pids(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("copyto") && cmdline.contains(marker)
        })
        .collect()
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// A cancel mid-transfer kills rclone (its pid is gone) and returns `Cancelled` at once,
/// without recording the file.
#[tokio::test]
async fn cancel_mid_transfer_kills_rclone() {
    cancel_mid_transfer(None).await;
}

/// The same with a helper process that rclone started (a wrapper forks `sleep`, then
/// execs rclone): the cancel kills rclone's whole process group, so the helper goes too.
#[tokio::test]
async fn cancel_kills_the_processes_rclone_started_too() {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let pidfile = bin.path().join("helper.pid");
    let wrapper = bin.path().join("rclone-wrapper");
    let script = format!(
        "#!/bin/sh\nsleep 300 </dev/null >/dev/null 2>&1 &\necho $! > '{}'\nexec rclone \"$@\"\n",
        pidfile.display()
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    cancel_mid_transfer(Some(wrapper)).await;
    let helper: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let gone = eventually(Duration::from_secs(5), || !alive(helper)).await;
    assert!(gone, "the helper rclone started (pid {helper}) outlived the cancel");
}

/// Whether `pid` runs (exists and is not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

async fn cancel_mid_transfer(program: Option<PathBuf>) {
    let task = Task::new();
    let cloud = tempfile::tempdir().unwrap();
    let marker = cloud.path().display().to_string();
    let target = MirrorTarget::new(format!(":local:{marker}"), "slow").flags(["--bwlimit", "1M"]);
    let mut uploader = RcloneUploader::new(target).unwrap().stats_interval(Duration::from_millis(100));
    if let Some(program) = program {
        uploader = uploader.program(program);
    }
    let mut request = task.request();
    request.files.retain(|f| f.relative.ends_with("big.bin"));

    let (parts, progress) = (Parts::default(), Progress::default());
    let cancel = CancellationToken::new();
    let run = upload(&uploader, &request, &parts, &progress, cancel.clone());
    let watch = async {
        let moving = eventually(Duration::from_secs(20), || progress.seen().iter().any(|&s| s > 0)).await;
        assert!(moving, "no progress before the cancel");
        let pids = rclone_pids(&marker);
        assert_eq!(pids.len(), 1, "expected one rclone copying to {marker}: {pids:?}");
        cancel.cancel();
        (pids, Instant::now())
    };
    let (result, (pids, cancelled_at)) = tokio::join!(run, watch);

    let err = result.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Cancelled), "{err}");
    assert!(cancelled_at.elapsed() < Duration::from_secs(3), "cancel took {:?}", cancelled_at.elapsed());
    // rclone is our child and is reaped before the upload returns: its pid is gone.
    for pid in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "rclone (pid {pid}) is still there after the cancel"
        );
    }
    assert!(rclone_pids(&marker).is_empty(), "{:?}", rclone_pids(&marker));
    assert!(parts.recorded().is_empty(), "a cancelled file was recorded");
    assert!(progress.seen().last().copied().unwrap_or(0) < task.total());
}

/// A remote that refuses connections fails with rclone's exit status and its last
/// error line, naming the file, after the bounded retries.
#[tokio::test]
async fn a_stopped_webdav_server_is_a_clear_rclone_error() {
    let task = Task::new();
    let webdav = RcloneWebdav::start().await.unwrap();
    let uploader = RcloneUploader::new(MirrorTarget::new(webdav.remote(), "Mirror")).unwrap().retries(1, 1);
    webdav.stop().await.unwrap();

    let (parts, progress) = (Parts::default(), Progress::default());
    let err =
        upload(&uploader, &task.request(), &parts, &progress, CancellationToken::new()).await.unwrap_err();

    let ErrorKind::Rclone { code, message } = err.kind() else {
        panic!("expected an rclone error, got {err:?}")
    };
    assert!(code.is_some_and(|c| c != 0), "{err}");
    assert!(message.starts_with("Show/a.txt: "), "the message should name the file: {message}");
    assert!(message.contains("connection refused"), "{message}");
    assert!(parts.recorded().is_empty());
}

/// A password in an inline remote, which rclone echoes back in its error, never reaches
/// the error; a file standing where the remote's folder should be fails clearly; the
/// config path never shows.
#[tokio::test]
async fn errors_carry_no_secrets() {
    let task = Task::new();
    let cloud = tempfile::tempdir().unwrap();
    let remote = ":webdav,url='http://127.0.0.1:9',user=bob,pass='hunter22-not-obscured':";
    let config = cloud.path().join("secret-place.conf");
    std::fs::write(&config, "[cloud]\ntype = local\n").unwrap();
    let uploader = RcloneUploader::new(MirrorTarget::new(remote, "Mirror").config_file(Some(config.clone())))
        .unwrap()
        .retries(1, 1);
    let (parts, progress) = (Parts::default(), Progress::default());
    let err =
        upload(&uploader, &task.request(), &parts, &progress, CancellationToken::new()).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err.kind(), ErrorKind::Rclone { code: Some(_), .. }), "{text}");
    assert!(!text.contains("hunter22"), "the password leaked: {text}");
    assert!(!text.contains("secret-place"), "the config path leaked: {text}");
    assert!(text.contains("pass=***"), "rclone's own words should still be there, redacted: {text}");

    // A file where the folder `blocker` should be.
    std::fs::write(cloud.path().join("blocker"), b"in the way").unwrap();
    let remote = format!("cloud:{}", cloud.path().display());
    let uploader =
        RcloneUploader::new(MirrorTarget::new(remote, "blocker").config_file(Some(config.clone())))
            .unwrap()
            .retries(1, 1);
    let request = task.request();
    let err = upload(&uploader, &request, &parts, &progress, CancellationToken::new()).await.unwrap_err();
    let ErrorKind::Rclone { code, message } = err.kind() else {
        panic!("expected an rclone error, got {err:?}")
    };
    assert!(code.is_some_and(|c| c != 0), "{err}");
    assert!(!message.is_empty() && !message.contains("secret-place"), "{message}");
    assert!(parts.recorded().is_empty());
}

/// A path that climbs out of the task's folder on the remote is refused before rclone
/// runs; a missing rclone is a config error that says how to install it.
#[tokio::test]
async fn bad_paths_and_a_missing_rclone_are_refused() {
    let task = Task::new();
    let cloud = tempfile::tempdir().unwrap();
    let uploader =
        RcloneUploader::new(MirrorTarget::new(format!(":local:{}", cloud.path().display()), "m")).unwrap();
    let (parts, progress) = (Parts::default(), Progress::default());
    for bad in ["../escape.txt", "/etc/escape.txt", "Show/../../escape.txt"] {
        let mut request = task.request();
        request.files[0].relative = bad.to_string();
        let err = upload(&uploader, &request, &parts, &progress, CancellationToken::new()).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Config { setting: "file path", .. }), "{bad}: {err}");
    }
    assert!(parts.recorded().is_empty());
    assert_eq!(std::fs::read_dir(cloud.path()).unwrap().count(), 0, "something was copied");

    let missing = uploader.clone().program(PathBuf::from("/nonexistent/rclone"));
    let err =
        upload(&missing, &task.request(), &parts, &progress, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Config { setting: "rclone program", .. }), "{err}");
    assert!(err.to_string().contains("apt-get install rclone"), "{err}");
}

/// Where the remote offers share links, the link of the task's folder is in the outcome.
/// No offline remote offers them, so rclone is wrapped: `link` answers as a cloud remote
/// would (checking it was asked for the folder), everything else runs the real rclone.
#[tokio::test]
async fn the_share_link_of_the_folder_is_returned() {
    use std::os::unix::fs::PermissionsExt;
    let task = Task::new();
    let cloud = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let wrapper = bin.path().join("rclone");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nif [ \"$1\" = link ]; then\n  case \"$2\" in\n    *:*/m/Show) echo 'https://share.example/s/Show'; exit 0 ;;\n    *) echo \"link of the wrong path: $2\" >&2; exit 3 ;;\n  esac\nfi\nexec rclone \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = MirrorTarget::new(format!(":local:{}", cloud.path().display()), "m");
    let uploader = RcloneUploader::new(target).unwrap().program(&wrapper);
    let (parts, progress) = (Parts::default(), Progress::default());
    let outcome =
        upload(&uploader, &task.request(), &parts, &progress, CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.link.as_deref(), Some("https://share.example/s/Show"));
    task.assert_copied_to(&cloud.path().join("m"));
}
