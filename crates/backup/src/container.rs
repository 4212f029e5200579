//! The backup file's layout.
//!
//! ```text
//! "MLTBBAK\x01"                        8 bytes
//! part 1, part 2, …                    each a series of blocks:
//!                                        raw length (u32 LE), compressed length (u32 LE),
//!                                        one zstd frame
//! manifest                             JSON
//! manifest length                      u32 LE
//! "MLTBEND\x01"                        8 bytes
//! SHA-256 of every byte above          32 bytes
//! ```
//!
//! The manifest comes last because a part's compressed length is known only once it is
//! written. Blocks keep memory bounded (one block in flight) and let every write error
//! surface as an error, not a panic inside the compressor.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::progress;

const MAGIC: &[u8; 8] = b"MLTBBAK\x01";
const END: &[u8; 8] = b"MLTBEND\x01";
/// Manifest length, end marker, checksum.
const TAIL: u64 = 4 + 8 + 32;
/// Raw bytes per block.
const BLOCK: usize = 4 << 20;
/// A manifest larger than this is not one of ours.
const MAX_MANIFEST: u32 = 1 << 20;

/// The version of this layout; a reader refuses others.
pub const FORMAT_VERSION: u32 = 1;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// The `mltb-backup` version that wrote it.
    pub tool_version: String,
    /// The store's schema version in the database copy (`PRAGMA user_version`).
    pub schema_version: i64,
    /// When the snapshot was taken, Unix milliseconds.
    pub created_unix_ms: u64,
    /// The database it was taken from.
    pub source: String,
    /// The parts, in file order.
    pub entries: Vec<Entry>,
    /// For a run of write-ahead log frames shipped by continuous protection: where it
    /// sits in its generation. `None` for a backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal: Option<WalRun>,
}

/// Where a run of shipped write-ahead log frames belongs: its generation, its place in
/// it, and the log it was read from, so a restore can check that runs chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WalRun {
    /// The generation (the base snapshot it applies on).
    pub generation: String,
    /// Its number in the generation, from 0, without gaps.
    pub seq: u64,
    /// The database's page size.
    pub page_size: u32,
    /// Whether the log's checksums read big-endian words.
    pub big_endian: bool,
    /// The log's salts.
    pub salt: [u32; 2],
    /// The log's checkpoint sequence number.
    pub ckpt_seq: u32,
    /// The index in the log of the run's first frame.
    pub first_frame: u32,
    /// How many frames it holds (whole transactions).
    pub frames: u32,
    /// The log's checksum before its first frame.
    pub start_checksum: [u32; 2],
    /// The log's checksum after its last frame.
    pub end_checksum: [u32; 2],
}

/// What one part of a backup is read from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part<'a> {
    /// A file.
    File(&'a Path),
    /// Bytes in memory.
    Bytes(&'a [u8]),
}

/// One part of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Entry {
    /// `mltb.db` or `config.toml`.
    pub name: String,
    /// Its size, uncompressed.
    pub size: u64,
    /// SHA-256 of its uncompressed bytes, hex.
    pub sha256: String,
    /// Where its blocks start in the file.
    pub offset: u64,
    /// The bytes its blocks take.
    pub length: u64,
}

/// Counts and hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    written: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a backup to `out`: each `(name, file)` part, then the manifest (its entries
/// filled in) and the checksum. `out` names the file in errors.
pub(crate) fn write(
    out: &mut std::fs::File,
    out_path: &Path,
    mut manifest: Manifest,
    parts: &[(&str, Part<'_>)],
) -> Result<Manifest> {
    let io = |e| Error::io(out_path, e);
    let mut w = Hashing { inner: std::io::BufWriter::new(out), hash: Sha256::new(), written: 0 };
    w.write_all(MAGIC).map_err(io)?;
    let mut block = vec![0u8; BLOCK];
    for (name, part) in parts {
        let (mut input, path): (Box<dyn Read>, &Path) = match *part {
            Part::File(path) => {
                let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
                progress::expect(f.metadata().map_or(0, |m| m.len()));
                (Box::new(f), path)
            }
            Part::Bytes(bytes) => {
                progress::expect(bytes.len() as u64);
                (Box::new(bytes), out_path)
            }
        };
        let (offset, mut raw_hash, mut size) = (w.written, Sha256::new(), 0u64);
        loop {
            let n = read_full(&mut input, &mut block).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            raw_hash.update(&block[..n]);
            size += n as u64;
            progress::advance(n as u64);
            let frame =
                ruzstd::encoding::compress_to_vec(&block[..n], ruzstd::encoding::CompressionLevel::Fastest);
            w.write_all(&(n as u32).to_le_bytes()).map_err(io)?;
            w.write_all(&(frame.len() as u32).to_le_bytes()).map_err(io)?;
            w.write_all(&frame).map_err(io)?;
        }
        manifest.entries.push(Entry {
            name: (*name).to_string(),
            size,
            sha256: hex(&raw_hash.finalize()),
            offset,
            length: w.written - offset,
        });
    }
    let json = serde_json::to_vec(&manifest).map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
    w.write_all(&json).map_err(io)?;
    w.write_all(&(json.len() as u32).to_le_bytes()).map_err(io)?;
    w.write_all(END).map_err(io)?;
    let sum = w.hash.clone().finalize();
    w.write_all(&sum).map_err(io)?;
    w.flush().map_err(io)?;
    Ok(manifest)
}

/// Reads and checks a backup's frame: magic, checksum over the whole file (unless
/// `checksum` is false: a quick look for listing), manifest. Returns the manifest; the
/// parts are read with [`extract`].
pub(crate) fn open(path: &Path, checksum: bool) -> Result<Manifest> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if len < MAGIC.len() as u64 + TAIL {
        return Err(Error::damaged(path, format!("truncated or not a backup: {len} bytes")));
    }
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic).map_err(|e| Error::io(path, e))?;
    if &magic != MAGIC {
        return Err(Error::damaged(path, "not an mltb backup (no MLTBBAK header)"));
    }
    let mut tail = [0u8; TAIL as usize];
    f.seek(SeekFrom::Start(len - TAIL)).map_err(|e| Error::io(path, e))?;
    f.read_exact(&mut tail).map_err(|e| Error::io(path, e))?;
    if &tail[4..12] != END {
        return Err(Error::damaged(path, "truncated: the end marker is missing"));
    }
    if checksum {
        // The checksum covers every byte before it.
        f.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
        let mut hash = Sha256::new();
        let mut left = len - 32;
        let mut buf = vec![0u8; 1 << 20];
        progress::expect(left);
        while left > 0 {
            let n = (buf.len() as u64).min(left) as usize;
            f.read_exact(&mut buf[..n]).map_err(|e| Error::io(path, e))?;
            hash.update(&buf[..n]);
            left -= n as u64;
            progress::advance(n as u64);
        }
        if hash.finalize().as_slice() != &tail[12..] {
            return Err(Error::damaged(
                path,
                "checksum mismatch: the file was changed or damaged after it was written",
            ));
        }
    }
    let manifest_len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if manifest_len > MAX_MANIFEST || u64::from(manifest_len) > len - TAIL - MAGIC.len() as u64 {
        return Err(Error::damaged(
            path,
            format!("the manifest length {manifest_len} does not fit the file"),
        ));
    }
    let mut json = vec![0u8; manifest_len as usize];
    f.seek(SeekFrom::Start(len - TAIL - u64::from(manifest_len))).map_err(|e| Error::io(path, e))?;
    f.read_exact(&mut json).map_err(|e| Error::io(path, e))?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| Error::damaged(path, format!("unreadable manifest: {e}")))?;
    if manifest.format != FORMAT_VERSION {
        return Err(Error::damaged(
            path,
            format!("format version {} (this mltb-backup reads {FORMAT_VERSION})", manifest.format),
        ));
    }
    let data_end = len - TAIL - u64::from(manifest_len);
    for e in &manifest.entries {
        if e.offset < MAGIC.len() as u64 || e.offset.checked_add(e.length).is_none_or(|end| end > data_end) {
            return Err(Error::damaged(path, format!("entry {} lies outside the file's data", e.name)));
        }
        // Each block takes more than its 8-byte header and holds at most BLOCK bytes.
        let most = (e.length / 9).saturating_mul(BLOCK as u64);
        if e.size > most {
            return Err(Error::damaged(
                path,
                format!(
                    "entry {} claims {} bytes, more than its {} bytes of blocks can hold",
                    e.name, e.size, e.length
                ),
            ));
        }
    }
    Ok(manifest)
}

/// Decompresses `entry` of the backup at `path` into `out`, checking its size and
/// SHA-256.
pub(crate) fn extract(path: &Path, entry: &Entry, out: &mut impl Write, out_path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    f.seek(SeekFrom::Start(entry.offset)).map_err(|e| Error::io(path, e))?;
    let mut f = std::io::BufReader::new(f.take(entry.length));
    let (mut hash, mut size) = (Sha256::new(), 0u64);
    let mut frame = Vec::new();
    let mut raw = Vec::with_capacity(BLOCK);
    let bad = |what: String| Error::damaged(path, format!("{}: {what}", entry.name));
    progress::expect(entry.size);
    loop {
        let mut head = [0u8; 8];
        match read_full(&mut f, &mut head).map_err(|e| Error::io(path, e))? {
            0 => break,
            8 => {}
            _ => return Err(bad("a block header is cut short".into())),
        }
        let raw_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let comp_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if raw_len > BLOCK || comp_len > BLOCK + (BLOCK >> 4) + 1024 {
            return Err(bad(format!("a block claims {raw_len} bytes ({comp_len} compressed)")));
        }
        frame.resize(comp_len, 0);
        if read_full(&mut f, &mut frame).map_err(|e| Error::io(path, e))? != comp_len {
            return Err(bad("a block is cut short".into()));
        }
        raw.clear();
        let mut decoder = ruzstd::decoding::StreamingDecoder::new(&frame[..])
            .map_err(|e| bad(format!("a block does not decompress: {e}")))?;
        (&mut decoder)
            .take(raw_len as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| bad(format!("a block does not decompress: {e}")))?;
        if raw.len() != raw_len {
            return Err(bad(format!("a block holds {} bytes, its header says {raw_len}", raw.len())));
        }
        hash.update(&raw);
        size += raw_len as u64;
        progress::advance(raw_len as u64);
        out.write_all(&raw).map_err(|e| Error::io(out_path, e))?;
    }
    if size != entry.size {
        return Err(bad(format!("{size} bytes, the manifest says {}", entry.size)));
    }
    if hex(&hash.finalize()) != entry.sha256 {
        return Err(bad("SHA-256 does not match the manifest".into()));
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
