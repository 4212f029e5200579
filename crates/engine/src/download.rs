//! The download seam: [`Downloader`] and the types it speaks. aria2 is one implementation
//! (`aria2::Aria2Downloader`); later sources (yt-dlp, Telegram files) plug in here.

use std::fmt;
use std::path::PathBuf;

use crate::Result;

/// Where a download comes from.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownloadSource {
    /// An HTTP(S) or FTP URL, or a link to a `.torrent` (followed into the torrent).
    Url(UrlSource),
    /// The bytes of a `.torrent` file.
    Torrent(Vec<u8>),
    /// A magnet link.
    Magnet(String),
}

impl fmt::Debug for DownloadSource {
    // Headers and passwords are secrets; torrents are large.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadSource::Url(u) => f.debug_tuple("Url").field(u).finish(),
            DownloadSource::Torrent(b) => write!(f, "Torrent({} bytes)", b.len()),
            DownloadSource::Magnet(m) => f.debug_tuple("Magnet").field(m).finish(),
        }
    }
}

/// A URL with the request options the Python bot offers (`-h` headers, `-au`/`-ap` basic
/// auth).
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UrlSource {
    /// The URL.
    pub url: String,
    /// Extra request headers, as `Name: value`.
    pub headers: Vec<String>,
    /// HTTP basic auth (user, password).
    pub basic_auth: Option<(String, String)>,
}

impl UrlSource {
    /// A URL with no extra headers or credentials.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), ..Self::default() }
    }

    /// Adds a request header (`Name: value`).
    pub fn header(mut self, header: impl Into<String>) -> Self {
        self.headers.push(header.into());
        self
    }

    /// Sets HTTP basic auth.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }
}

impl fmt::Debug for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSource")
            .field("url", &self.url)
            .field("headers", &self.headers.len())
            .field("basic_auth", &self.basic_auth.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// What to download, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadRequest {
    /// What.
    pub source: DownloadSource,
    /// The task's own directory; nothing is written outside it.
    pub dir: PathBuf,
    /// The file name to use instead of the one the source gives (single-file sources).
    pub name: Option<String>,
    /// For torrents: the 1-based indexes of the files to download (`None`: all).
    pub select: Option<Vec<u32>>,
    /// For torrents, magnets and links to a `.torrent`, with no [`select`](Self::select):
    /// stop, paused, once the file list is known (a magnet's or a link's metadata
    /// downloaded), so that [`Downloader::select`] chooses the files and starts it.
    pub choose: bool,
    /// The id the pipeline chose and recorded before starting: a downloader that can
    /// name its downloads (aria2's `gid`, 16 hex digits) uses it, so a crash between the
    /// record and the start leaves no download the store does not know.
    pub id: Option<DownloadId>,
}

impl DownloadRequest {
    /// A download of `source` into `dir`.
    pub fn new(source: DownloadSource, dir: impl Into<PathBuf>) -> Self {
        Self { source, dir: dir.into(), name: None, select: None, choose: false, id: None }
    }

    /// Names the downloaded file.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Asks the downloader to use `id` for the download.
    pub fn id(mut self, id: DownloadId) -> Self {
        self.id = Some(id);
        self
    }

    /// Downloads only these files of a torrent (1-based, as aria2 numbers them).
    pub fn select(mut self, files: Vec<u32>) -> Self {
        self.select = Some(files);
        self
    }

    /// Pauses a torrent once its file list is known, for [`Downloader::select`].
    pub fn choose(mut self) -> Self {
        self.choose = true;
        self
    }
}

/// A download as the downloader knows it: opaque text that the pipeline persists (the
/// task's `gid` column) and hands back after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DownloadId(pub String);

impl DownloadId {
    /// A fresh id in aria2's form: 16 hex digits, never all zero.
    pub fn random() -> Self {
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = state.hash_one(nanos).max(1);
        Self(format!("{n:016x}"))
    }
}

impl fmt::Display for DownloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a download stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownloadState {
    /// Accepted, not started (the downloader's own queue).
    Waiting,
    /// Transferring.
    Active,
    /// Paused (by request, or waiting for a file selection).
    Paused,
    /// Every selected byte is on disk.
    Complete,
    /// It failed; see [`DownloadStatus::error`].
    Failed,
}

/// A file of a download.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadedFile {
    /// Its path on disk (inside the task's directory).
    pub path: PathBuf,
    /// Its size (0 while unknown).
    pub size: u64,
    /// Bytes on disk.
    pub done: u64,
    /// Whether it is selected for download.
    pub selected: bool,
}

impl DownloadedFile {
    /// A file at `path` of `size` bytes, none on disk yet.
    pub fn new(path: impl Into<PathBuf>, size: u64, selected: bool) -> Self {
        Self { path: path.into(), size, done: 0, selected }
    }
}

/// A download's progress, from one poll.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownloadStatus {
    /// Where it stands.
    pub state: DownloadState,
    /// Its name (the file's, or the torrent's), once known.
    pub name: Option<String>,
    /// Bytes downloaded.
    pub done: u64,
    /// Bytes in all (0 while unknown).
    pub total: u64,
    /// Bytes per second now.
    pub speed: u64,
    /// Its files.
    pub files: Vec<DownloadedFile>,
    /// Why it failed, when [`DownloadState::Failed`].
    pub error: Option<crate::Error>,
    /// The download that continues this one (a magnet's metadata download is followed by
    /// the torrent's): the caller records it and polls it from now on.
    pub followed_by: Option<DownloadId>,
}

impl DownloadStatus {
    /// A status with nothing known yet.
    pub fn new(state: DownloadState) -> Self {
        Self {
            state,
            name: None,
            done: 0,
            total: 0,
            speed: 0,
            files: Vec::new(),
            error: None,
            followed_by: None,
        }
    }
}

/// Downloads into a task's directory. Polled, never pushed: the pipeline asks for
/// [`status`](Self::status) every second or so.
#[async_trait::async_trait]
pub trait Downloader: Send + Sync + fmt::Debug {
    /// Starts a download and returns its id.
    async fn start(&self, request: &DownloadRequest) -> Result<DownloadId>;

    /// Where the download stands.
    async fn status(&self, id: &DownloadId) -> Result<DownloadStatus>;

    /// Stops the download and forgets it; the caller removes its files.
    async fn cancel(&self, id: &DownloadId) -> Result<()>;

    /// Re-attaches a download after a restart of the engine (or of the downloader): the
    /// same id if the downloader still knows it, else a new download of `request` that
    /// continues from the partial data in its directory.
    async fn resume(&self, id: &DownloadId, request: &DownloadRequest) -> Result<DownloadId>;

    /// Downloads only `files` (1-based) of a torrent paused for a choice (see
    /// [`DownloadRequest::choose`]), and starts it. Safe to repeat. Downloaders that
    /// cannot choose files refuse.
    async fn select(&self, id: &DownloadId, files: &[u32]) -> Result<()> {
        let _ = files;
        Err(crate::ErrorKind::InvalidSource {
            input: id.to_string(),
            expected: "a download of a downloader that can choose a torrent's files".into(),
        }
        .into())
    }
}
