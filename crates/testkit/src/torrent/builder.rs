//! Building `.torrent` files: layout, piece hashes, info hash, magnet link.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha1::{Digest, Sha1};

use super::bencode::Value;
use super::escape::{base64, hex, percent_encode};
use crate::{Error, Result};

/// The piece length a [`TorrentBuilder`] uses unless told otherwise: 256 KiB.
pub const DEFAULT_PIECE_LENGTH: u32 = 256 * 1024;
/// The smallest piece length [`TorrentBuilder::piece_length`] accepts: 16 KiB, one
/// BitTorrent block.
pub const MIN_PIECE_LENGTH: u32 = 16 * 1024;

/// Where a file's bytes come from.
#[derive(Clone)]
enum Content {
    Bytes(Bytes),
    Path(PathBuf),
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Bytes(bytes) => write!(f, "{} bytes in memory", bytes.len()),
            Content::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug)]
enum Layout {
    Single(Content),
    Multi(Vec<(String, Content)>),
    /// A file or a directory on disk, looked at in `build`.
    Disk(PathBuf),
}

/// Builds a `.torrent` (BEP 3) from bytes in memory or files on disk: single-file or
/// multi-file, with SHA-1 piece hashes, an optional tracker (`announce`) and web seeds
/// (`url-list`, BEP 19).
///
/// The output is deterministic (no creation date), so the same content, name and options
/// always give the same info hash. Mistakes (an empty name, a path with `..`, a piece
/// length that is not a power of two, an unreadable file) are reported by
/// [`build`](Self::build).
///
/// # Example
///
/// ```
/// use mltb_testkit::TorrentBuilder;
///
/// let single = TorrentBuilder::single("a.bin", vec![1u8; 100_000])
///     .piece_length(32 * 1024)
///     .announce("http://127.0.0.1:6969/announce")
///     .build()
///     .unwrap();
/// assert_eq!(single.info_hash_hex().len(), 40);
/// assert_eq!(single.piece_count(), 4);
///
/// let multi = TorrentBuilder::multi("album")
///     .file("one.bin", &b"first"[..])
///     .file("disc 2/two.bin", &b"second"[..])
///     .web_seed("http://127.0.0.1:8080/")
///     .build()
///     .unwrap();
/// let paths: Vec<_> = multi.files().iter().map(|f| f.path().to_string()).collect();
/// assert_eq!(paths, ["album/one.bin", "album/disc 2/two.bin"]);
/// assert!(multi.magnet(None).starts_with("magnet:?xt=urn:btih:"));
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct TorrentBuilder {
    name: Option<String>,
    layout: Layout,
    piece_length: u32,
    announce: Option<String>,
    web_seeds: Vec<String>,
    misuse: Option<String>,
}

impl TorrentBuilder {
    fn with(name: Option<String>, layout: Layout) -> Self {
        Self {
            name,
            layout,
            piece_length: DEFAULT_PIECE_LENGTH,
            announce: None,
            web_seeds: Vec::new(),
            misuse: None,
        }
    }

    /// A single-file torrent: one file called `name` holding `content`.
    pub fn single(name: impl Into<String>, content: impl Into<Bytes>) -> Self {
        Self::with(Some(name.into()), Layout::Single(Content::Bytes(content.into())))
    }

    /// A multi-file torrent: a directory called `name`, filled with [`file`](Self::file)
    /// and [`file_from_disk`](Self::file_from_disk), in the order they are added.
    pub fn multi(name: impl Into<String>) -> Self {
        Self::with(Some(name.into()), Layout::Multi(Vec::new()))
    }

    /// A torrent of what is at `path` on disk: a single-file torrent for a file, a
    /// multi-file one for a directory (every regular file below it, in path order),
    /// named after the last component of `path` unless [`name`](Self::name) says
    /// otherwise. The disk is read by [`build`](Self::build).
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self::with(None, Layout::Disk(path.into()))
    }

    /// Sets the torrent's name: the file name of a single-file torrent, the directory
    /// name of a multi-file one.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a file at `path` inside a multi-file torrent (`/`-separated, e.g.
    /// `"disc 2/track.flac"`) holding `content`.
    pub fn file(self, path: impl Into<String>, content: impl Into<Bytes>) -> Self {
        self.add(path.into(), Content::Bytes(content.into()))
    }

    /// Adds a file at `path` inside a multi-file torrent, read from `disk_path` by
    /// [`build`](Self::build).
    pub fn file_from_disk(self, path: impl Into<String>, disk_path: impl Into<PathBuf>) -> Self {
        self.add(path.into(), Content::Path(disk_path.into()))
    }

    fn add(mut self, path: String, content: Content) -> Self {
        match &mut self.layout {
            Layout::Multi(files) => files.push((path, content)),
            _ => {
                self.misuse.get_or_insert(format!(
                    "file {path:?} added to a torrent that is not multi-file; start with TorrentBuilder::multi"
                ));
            }
        }
        self
    }

    /// Sets the piece length in bytes: a power of two, at least [`MIN_PIECE_LENGTH`].
    /// The default is [`DEFAULT_PIECE_LENGTH`].
    pub fn piece_length(mut self, bytes: u32) -> Self {
        self.piece_length = bytes;
        self
    }

    /// Sets the tracker URL (`announce`), e.g. [`Tracker::announce_url`](crate::Tracker::announce_url).
    pub fn announce(mut self, url: impl Into<String>) -> Self {
        self.announce = Some(url.into());
        self
    }

    /// Adds a web seed (`url-list`). For a single-file torrent a URL that does not end
    /// in `/` names the file itself; otherwise the client appends the torrent's name
    /// (and, for a multi-file torrent, each file's path).
    pub fn web_seed(mut self, url: impl Into<String>) -> Self {
        self.web_seeds.push(url.into());
        self
    }

    /// Reads the content, hashes the pieces and encodes the torrent.
    pub fn build(self) -> Result<Torrent> {
        let invalid = |what: String| Error::Other(format!("torrent: {what}"));
        if let Some(misuse) = self.misuse {
            return Err(invalid(misuse));
        }
        let piece_length = self.piece_length;
        if !piece_length.is_power_of_two() || piece_length < MIN_PIECE_LENGTH {
            return Err(invalid(format!(
                "piece length {piece_length} must be a power of two of at least {MIN_PIECE_LENGTH}"
            )));
        }
        let (single, name, entries) = match self.layout {
            Layout::Single(content) => (true, self.name.unwrap_or_default(), vec![(String::new(), content)]),
            Layout::Multi(files) => (false, self.name.unwrap_or_default(), files),
            Layout::Disk(path) => {
                let name =
                    match self.name {
                        Some(name) => name,
                        None => path.file_name().and_then(|n| n.to_str()).map(str::to_string).ok_or_else(
                            || invalid(format!("{} has no UTF-8 file name to use", path.display())),
                        )?,
                    };
                let meta = std::fs::metadata(&path)
                    .map_err(|e| Error::io(format!("torrent: reading {}", path.display()), e))?;
                if meta.is_dir() {
                    (false, name, walk(&path)?)
                } else {
                    (true, name, vec![(String::new(), Content::Path(path))])
                }
            }
        };
        check_component(&name).map_err(|why| invalid(format!("name {name:?} {why}")))?;
        if !single {
            check_paths(&entries).map_err(invalid)?;
        }

        let mut hasher = PieceHasher::new(piece_length as usize);
        let mut files = Vec::with_capacity(entries.len());
        let mut contents = Vec::with_capacity(entries.len());
        for (path, content) in entries {
            let length = hasher.feed(&content)?;
            let full = if single { name.clone() } else { format!("{name}/{path}") };
            files.push(TorrentFile { path: full, inner: path, length });
            contents.push(content);
        }
        let total_length: u64 = files.iter().map(|f| f.length).sum();
        if total_length == 0 {
            return Err(invalid(format!("{name:?} has no content; a torrent needs at least one byte")));
        }
        let pieces = hasher.finish();
        let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));

        let mut info = vec![
            ("name", Value::from(name.as_str())),
            ("piece length", int(u64::from(piece_length))),
            ("pieces", Value::Bytes(pieces)),
        ];
        if single {
            info.push(("length", int(total_length)));
        } else {
            let list = files
                .iter()
                .map(|f| {
                    let path = f.inner.split('/').map(Value::from).collect();
                    Value::dict([("length", int(f.length)), ("path", Value::List(path))])
                })
                .collect();
            info.push(("files", Value::List(list)));
        }
        let info = Value::dict(info).encode();
        let info_hash: [u8; 20] = Sha1::digest(&info).into();

        let mut top: Vec<(&str, Value)> = Vec::new();
        if let Some(announce) = &self.announce {
            top.push(("announce", Value::from(announce.as_str())));
        }
        if !self.web_seeds.is_empty() {
            top.push((
                "url-list",
                Value::List(self.web_seeds.iter().map(|u| Value::from(u.as_str())).collect()),
            ));
        }
        // The info dictionary goes in as the very bytes that were hashed.
        let mut bytes = b"d".to_vec();
        let mut placed = false;
        for (key, value) in top {
            if !placed && key > "info" {
                bytes.extend_from_slice(b"4:info");
                bytes.extend_from_slice(&info);
                placed = true;
            }
            Value::from(key).encode_into(&mut bytes);
            value.encode_into(&mut bytes);
        }
        if !placed {
            bytes.extend_from_slice(b"4:info");
            bytes.extend_from_slice(&info);
        }
        bytes.push(b'e');

        Ok(Torrent {
            bytes,
            info_hash,
            name,
            files,
            contents,
            piece_length,
            piece_count: total_length.div_ceil(u64::from(piece_length)),
        })
    }
}

/// Every regular file below `root`, as `/`-separated relative paths in sorted order.
fn walk(root: &Path) -> Result<Vec<(String, Content)>> {
    let mut found = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    // Bounded by the directory tree itself; symlinked directories are not followed.
    while let Some((dir, prefix)) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(format!("torrent: listing {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("torrent: listing {}", dir.display()), e))?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| Error::Other(format!("torrent: {:?} in {} is not UTF-8", n, dir.display())))?;
            let kind = entry.file_type().map_err(|e| Error::io(format!("torrent: reading {name:?}"), e))?;
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            if kind.is_dir() {
                pending.push((entry.path(), rel));
            } else if kind.is_file() {
                found.push((rel, Content::Path(entry.path())));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

fn check_component(part: &str) -> std::result::Result<(), &'static str> {
    match part {
        "" => Err("is empty"),
        "." | ".." => Err("is not a name"),
        _ if part.contains(['/', '\0']) => Err("contains '/' or NUL"),
        _ => Ok(()),
    }
}

fn check_paths(entries: &[(String, Content)]) -> std::result::Result<(), String> {
    if entries.is_empty() {
        return Err("a multi-file torrent needs at least one file".into());
    }
    let mut files = HashSet::new();
    let mut dirs = HashSet::new();
    for (path, _) in entries {
        for part in path.split('/') {
            check_component(part).map_err(|why| format!("path {path:?}: component {part:?} {why}"))?;
        }
        if !files.insert(path.as_str()) {
            return Err(format!("path {path:?} is given twice"));
        }
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            dirs.insert(&path[..end]);
            end += 1;
        }
    }
    match files.iter().find(|f| dirs.contains(*f)) {
        Some(clash) => Err(format!("path {clash:?} is both a file and a directory")),
        None => Ok(()),
    }
}

/// SHA-1 of each piece of the concatenated files.
struct PieceHasher {
    piece_length: usize,
    current: Sha1,
    filled: usize,
    pieces: Vec<u8>,
}

impl PieceHasher {
    fn new(piece_length: usize) -> Self {
        Self { piece_length, current: Sha1::new(), filled: 0, pieces: Vec::new() }
    }

    /// Hashes `content`; returns its length.
    fn feed(&mut self, content: &Content) -> Result<u64> {
        match content {
            Content::Bytes(bytes) => {
                self.update(bytes);
                Ok(bytes.len() as u64)
            }
            Content::Path(path) => {
                let context = || format!("torrent: reading {}", path.display());
                let mut file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0u64;
                loop {
                    let n = file.read(&mut buf).map_err(|e| Error::io(context(), e))?;
                    if n == 0 {
                        return Ok(total);
                    }
                    self.update(&buf[..n]);
                    total += n as u64;
                }
            }
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = data.len().min(self.piece_length - self.filled);
            self.current.update(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == self.piece_length {
                self.pieces.extend_from_slice(&self.current.finalize_reset());
                self.filled = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.pieces.extend_from_slice(&self.current.finalize());
        }
        self.pieces
    }
}

/// One file of a [`Torrent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentFile {
    path: String,
    inner: String,
    length: u64,
}

impl TorrentFile {
    /// Where a client saves it, relative to its download directory: the torrent's name
    /// for a single-file torrent, `NAME/PATH` for a file of a multi-file one.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }
}

/// A built `.torrent`: its bytes, its info hash, and the content it describes (kept so
/// [`write_files`](Self::write_files) can lay it out for a seeder).
#[derive(Clone)]
pub struct Torrent {
    bytes: Vec<u8>,
    info_hash: [u8; 20],
    name: String,
    files: Vec<TorrentFile>,
    contents: Vec<Content>,
    piece_length: u32,
    piece_count: u64,
}

impl fmt::Debug for Torrent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Torrent")
            .field("name", &self.name)
            .field("info_hash", &self.info_hash_hex())
            .field("files", &self.files)
            .field("piece_length", &self.piece_length)
            .field("piece_count", &self.piece_count)
            .finish_non_exhaustive()
    }
}

impl Torrent {
    /// The `.torrent` file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, base64-encoded, as `aria2.addTorrent` takes them.
    pub fn to_base64(&self) -> String {
        base64(&self.bytes)
    }

    /// The SHA-1 of the bencoded info dictionary.
    pub fn info_hash(&self) -> [u8; 20] {
        self.info_hash
    }

    /// The info hash as 40 lowercase hex digits.
    pub fn info_hash_hex(&self) -> String {
        hex(&self.info_hash)
    }

    /// A magnet link: `magnet:?xt=urn:btih:HEX&dn=NAME`, plus `&tr=TRACKER` when a
    /// tracker is given (a client needs one to find peers with DHT off).
    pub fn magnet(&self, tracker: Option<&str>) -> String {
        let mut link = format!(
            "magnet:?xt=urn:btih:{}&dn={}",
            self.info_hash_hex(),
            percent_encode(self.name.as_bytes())
        );
        if let Some(tracker) = tracker {
            link.push_str("&tr=");
            link.push_str(&percent_encode(tracker.as_bytes()));
        }
        link
    }

    /// The torrent's name: the file name of a single-file torrent, the directory name of
    /// a multi-file one.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The files, in torrent order.
    pub fn files(&self) -> &[TorrentFile] {
        &self.files
    }

    /// The size of all files together.
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }

    /// The piece length in bytes.
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// How many pieces the content is cut into.
    pub fn piece_count(&self) -> u64 {
        self.piece_count
    }

    /// Writes the content under `dir` as a client would save it (`dir/NAME` or
    /// `dir/NAME/PATH`), creating directories; content that came from disk is copied.
    pub fn write_files(&self, dir: &Path) -> Result<()> {
        for (file, content) in self.files.iter().zip(&self.contents) {
            let target = dir.join(&file.path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
            }
            let written = match content {
                Content::Bytes(bytes) => std::fs::write(&target, bytes),
                Content::Path(source) => std::fs::copy(source, &target).map(drop),
            };
            written.map_err(|e| Error::io(format!("writing {}", target.display()), e))?;
        }
        Ok(())
    }

    /// Writes the `.torrent` file itself to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, &self.bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::bencode::decode;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    /// Fixed answers, computed independently (Python's hashlib over a hand-written
    /// bencoding, and `mktorrent`), so a change in encoding or hashing shows up here.
    #[test]
    fn known_answer_single_and_multi() {
        let single =
            TorrentBuilder::single("hello.txt", &b"hello world\n"[..]).piece_length(16384).build().unwrap();
        let expected: &[u8] = b"d4:infod6:lengthi12e4:name9:hello.txt12:piece lengthi16384e6:pieces20:\
            \x22\x59\x63\x63\xb3\xde\x40\xb0\x6f\x98\x1f\xb8\x5d\x82\x31\x2e\x8c\x0e\xd5\x11ee";
        assert_eq!(single.bytes(), expected);
        assert_eq!(single.info_hash_hex(), KNOWN_SINGLE);
        let multi = TorrentBuilder::multi("d")
            .file("a.txt", &b"abc"[..])
            .file("sub/b.txt", &b"defg"[..])
            .piece_length(16384)
            .build()
            .unwrap();
        assert_eq!(multi.info_hash_hex(), KNOWN_MULTI);

        // `mktorrent -l 15 x.bin` over the bytes 0..=255 repeated 100 times.
        let bytes: Vec<u8> = (0..25_600).map(|i| i as u8).collect();
        let mktorrent = TorrentBuilder::single("x.bin", bytes).piece_length(32 * 1024).build().unwrap();
        assert_eq!(mktorrent.info_hash_hex(), "fac4cea246e68f8283070ad8fffc714087b85a2d");
    }

    const KNOWN_SINGLE: &str = "7b5e918f364908afab937ecdd84059dfb61102b7";
    const KNOWN_MULTI: &str = "7f2aa104165829238620cf7eae01789ff76296f0";

    #[test]
    fn decodes_back_to_what_was_built() {
        let a = pattern(40_000, 1);
        let b = pattern(30_000, 2);
        let torrent = TorrentBuilder::multi("set")
            .file("a.bin", a.clone())
            .file("x/b.bin", b.clone())
            .piece_length(16384)
            .announce("http://127.0.0.1:1/announce")
            .web_seed("http://127.0.0.1:2/")
            .build()
            .unwrap();
        let top = decode(torrent.bytes()).unwrap();
        assert_eq!(top.get("announce").and_then(Value::as_str), Some("http://127.0.0.1:1/announce"));
        let seeds = top.get("url-list").and_then(Value::as_list).unwrap();
        assert_eq!(seeds, [Value::from("http://127.0.0.1:2/")]);
        let info = top.get("info").unwrap();
        assert_eq!(<[u8; 20]>::from(Sha1::digest(info.encode())), torrent.info_hash());
        assert_eq!(info.get("name").and_then(Value::as_str), Some("set"));
        assert_eq!(info.get("piece length").and_then(Value::as_int), Some(16384));
        let files = info.get("files").and_then(Value::as_list).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].get("length").and_then(Value::as_int), Some(30_000));
        assert_eq!(files[1].get("path"), Some(&Value::List(vec!["x".into(), "b.bin".into()])));
        // Pieces run across the file boundary: 70 000 bytes make 5 pieces of 16 KiB.
        let pieces = info.get("pieces").and_then(Value::as_bytes).unwrap();
        assert_eq!(torrent.piece_count(), 5);
        assert_eq!(pieces.len(), 5 * 20);
        let all = [a, b].concat();
        for (i, chunk) in all.chunks(16384).enumerate() {
            assert_eq!(&pieces[i * 20..i * 20 + 20], Sha1::digest(chunk).as_slice(), "piece {i}");
        }
        assert_eq!(torrent.total_length(), 70_000);
    }

    #[test]
    fn from_disk_matches_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("b")).unwrap();
        std::fs::write(root.join("a.bin"), pattern(20_000, 3)).unwrap();
        std::fs::write(root.join("b/c.bin"), pattern(5_000, 4)).unwrap();
        let on_disk = TorrentBuilder::from_path(&root).piece_length(16384).build().unwrap();
        let in_memory = TorrentBuilder::multi("tree")
            .file("a.bin", pattern(20_000, 3))
            .file("b/c.bin", pattern(5_000, 4))
            .piece_length(16384)
            .build()
            .unwrap();
        assert_eq!(on_disk.bytes(), in_memory.bytes());

        let file = TorrentBuilder::from_path(root.join("a.bin")).build().unwrap();
        let memory = TorrentBuilder::single("a.bin", pattern(20_000, 3)).build().unwrap();
        assert_eq!(file.info_hash(), memory.info_hash());
        assert_eq!(file.piece_count(), 1);

        let out = dir.path().join("out");
        on_disk.write_files(&out).unwrap();
        assert_eq!(std::fs::read(out.join("tree/b/c.bin")).unwrap(), pattern(5_000, 4));
        in_memory.write_files(&out).unwrap();
        assert_eq!(std::fs::read(out.join("tree/a.bin")).unwrap(), pattern(20_000, 3));
    }

    #[test]
    fn bad_input_is_an_error_naming_it() {
        let cases = [
            (TorrentBuilder::single("", &b"x"[..]), "name \"\" is empty"),
            (TorrentBuilder::single("a/b", &b"x"[..]), "contains '/'"),
            (TorrentBuilder::single("a", &b""[..]), "needs at least one byte"),
            (TorrentBuilder::single("a", &b"x"[..]).piece_length(20_000), "piece length 20000"),
            (TorrentBuilder::single("a", &b"x"[..]).piece_length(8192), "piece length 8192"),
            (TorrentBuilder::single("a", &b"x"[..]).file("b", &b"y"[..]), "start with TorrentBuilder::multi"),
            (TorrentBuilder::multi("m"), "at least one file"),
            (TorrentBuilder::multi("m").file("../up", &b"x"[..]), "component \"..\""),
            (TorrentBuilder::multi("m").file("a//b", &b"x"[..]), "component \"\" is empty"),
            (TorrentBuilder::multi("m").file("a", &b"x"[..]).file("a", &b"y"[..]), "given twice"),
            (TorrentBuilder::multi("m").file("a", &b"x"[..]).file("a/b", &b"y"[..]), "both a file and"),
            (TorrentBuilder::from_path("/nonexistent/mltb"), "/nonexistent/mltb"),
        ];
        for (builder, expected) in cases {
            let err = builder.build().unwrap_err().to_string();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }

    #[test]
    fn magnet_and_base64() {
        let torrent = TorrentBuilder::single("a b.bin", &b"x"[..]).build().unwrap();
        let hex = torrent.info_hash_hex();
        assert_eq!(torrent.magnet(None), format!("magnet:?xt=urn:btih:{hex}&dn=a%20b.bin"));
        assert_eq!(
            torrent.magnet(Some("http://127.0.0.1:9/announce")),
            format!("magnet:?xt=urn:btih:{hex}&dn=a%20b.bin&tr=http%3A%2F%2F127.0.0.1%3A9%2Fannounce")
        );
        assert!(torrent.to_base64().starts_with("ZDQ6aW5mb2")); // "d4:info"
    }
}
