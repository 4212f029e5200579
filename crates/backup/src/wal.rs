//! SQLite's write-ahead log read from outside SQLite: its header, its frames, and the
//! checksum chain that tells the committed frames of the current log from stale ones.
//!
//! The layout is SQLite's (<https://sqlite.org/fileformat2.html#walformat>): a 32-byte
//! header (magic, version, page size, checkpoint sequence, two salts, checksum), then
//! frames of a 24-byte header (page number, database size in pages after a commit or
//! 0, the two salts, the cumulative checksum) and one page. A frame belongs to the
//! current log only when its salts are the header's and its checksum continues the
//! chain; a transaction counts only once its commit frame (database size ≠ 0) does.

use std::io::{Read, Seek, SeekFrom};

/// The log header's size.
pub(crate) const HEADER: usize = 32;
/// A frame header's size.
pub(crate) const FRAME_HEADER: usize = 24;
/// The magic number with little-endian checksums; `| 1` means big-endian.
const MAGIC: u32 = 0x377f_0682;
/// The only log format version there is.
const VERSION: u32 = 3_007_000;

/// A log header that checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Checksums read the data as big-endian words.
    pub(crate) big_endian: bool,
    /// The database's page size.
    pub(crate) page_size: u32,
    /// Incremented each time the log restarts from its beginning.
    pub(crate) ckpt_seq: u32,
    /// Salt-1 is incremented and salt-2 drawn anew at each restart.
    pub(crate) salt: [u32; 2],
    /// The header's checksum: the seed of the first frame's.
    pub(crate) checksum: [u32; 2],
}

impl Header {
    /// A frame's size in this log.
    pub(crate) fn frame_size(&self) -> u64 {
        FRAME_HEADER as u64 + u64::from(self.page_size)
    }

    /// Whether `next` is what SQLite writes when it restarts this log once: salt-1 one
    /// higher, the same format. (The checkpoint sequence is no guide: each connection
    /// counts its own restarts from the number it last read.)
    pub(crate) fn restarted_once_as(&self, next: &Header) -> bool {
        next.salt[0] == self.salt[0].wrapping_add(1)
            && next.page_size == self.page_size
            && next.big_endian == self.big_endian
    }
}

fn be(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// SQLite's log checksum over `data` (a multiple of 8 bytes), continuing from `s`.
pub(crate) fn checksum(big_endian: bool, data: &[u8], s: [u32; 2]) -> [u32; 2] {
    let (mut s0, mut s1) = (s[0], s[1]);
    for w in data.chunks_exact(8) {
        let (x0, x1) = if big_endian {
            (u32::from_be_bytes([w[0], w[1], w[2], w[3]]), u32::from_be_bytes([w[4], w[5], w[6], w[7]]))
        } else {
            (u32::from_le_bytes([w[0], w[1], w[2], w[3]]), u32::from_le_bytes([w[4], w[5], w[6], w[7]]))
        };
        s0 = s0.wrapping_add(x0).wrapping_add(s1);
        s1 = s1.wrapping_add(x1).wrapping_add(s0);
    }
    [s0, s1]
}

/// The header in `b`, or `None` when it is not a valid log header (no log yet, a log
/// being reset, or not a log at all).
pub(crate) fn parse_header(b: &[u8; HEADER]) -> Option<Header> {
    let magic = be(b, 0);
    if magic & !1 != MAGIC || be(b, 4) != VERSION {
        return None;
    }
    let page_size = be(b, 8);
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return None;
    }
    let big_endian = magic & 1 == 1;
    let sum = checksum(big_endian, &b[..24], [0, 0]);
    if sum != [be(b, 24), be(b, 28)] {
        return None;
    }
    Some(Header { big_endian, page_size, ckpt_seq: be(b, 12), salt: [be(b, 16), be(b, 20)], checksum: sum })
}

/// Reads the header of the log at `f`: `None` when the file is shorter than a header or
/// the header does not check.
pub(crate) fn read_header(f: &mut (impl Read + Seek)) -> std::io::Result<Option<Header>> {
    let mut b = [0u8; HEADER];
    f.seek(SeekFrom::Start(0))?;
    let mut n = 0;
    while n < HEADER {
        match f.read(&mut b[n..])? {
            0 => return Ok(None),
            k => n += k,
        }
    }
    Ok(parse_header(&b))
}

/// Where reading a log stands: the next frame's index and the chain's checksum so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Frames of this log already taken.
    pub(crate) frame: u32,
    /// The cumulative checksum after them (the header's before the first).
    pub(crate) checksum: [u32; 2],
}

/// Complete transactions read from a log.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Their frames, header and page each, as in the log.
    pub(crate) frames: Vec<u8>,
    /// How many.
    pub(crate) count: u32,
    /// Where the next read starts.
    pub(crate) end: Option<Cursor>,
}

/// Reads the committed transactions of log `h` from `from` on, at most about
/// `max_bytes` of frames (always whole transactions; a transaction larger than that is
/// read whole), stopping at the first frame that is not part of this log's chain.
pub(crate) fn scan(
    f: &mut (impl Read + Seek),
    h: &Header,
    from: Cursor,
    max_bytes: usize,
) -> std::io::Result<Scan> {
    let size = h.frame_size();
    f.seek(SeekFrom::Start(HEADER as u64 + u64::from(from.frame) * size))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut out = Scan::default();
    let mut pending: Vec<u8> = Vec::new();
    let (mut frame, mut sum) = (from.frame, from.checksum);
    let mut buf = vec![0u8; size as usize];
    loop {
        if !read_exact_or_eof(&mut r, &mut buf)? {
            break;
        }
        let (head, page) = buf.split_at(FRAME_HEADER);
        if be(head, 0) == 0 || [be(head, 8), be(head, 12)] != h.salt {
            break;
        }
        let next = checksum(h.big_endian, page, checksum(h.big_endian, &head[..8], sum));
        if next != [be(head, 16), be(head, 20)] {
            break;
        }
        sum = next;
        frame += 1;
        pending.extend_from_slice(&buf);
        if be(head, 4) != 0 {
            out.frames.append(&mut pending);
            out.count = frame - from.frame;
            out.end = Some(Cursor { frame, checksum: sum });
            if out.frames.len() >= max_bytes {
                break;
            }
        }
    }
    Ok(out)
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => return Ok(false),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The checksum stored in frame `index` of log `h` (for checking where a reader left
/// off), or `None` when the log has no such frame of this chain's salts.
pub(crate) fn frame_checksum(
    f: &mut (impl Read + Seek),
    h: &Header,
    index: u32,
) -> std::io::Result<Option<[u32; 2]>> {
    let mut head = [0u8; FRAME_HEADER];
    f.seek(SeekFrom::Start(HEADER as u64 + u64::from(index) * h.frame_size()))?;
    if !read_exact_or_eof(f, &mut head)? || [be(&head, 8), be(&head, 12)] != h.salt {
        return Ok(None);
    }
    Ok(Some([be(&head, 16), be(&head, 20)]))
}

/// One frame of a shipped run: its page number, the database size after it when it
/// commits, and its page.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) page_no: u32,
    pub(crate) commit_pages: u32,
    pub(crate) page: &'a [u8],
}

/// The frames of `run` (as [`Scan::frames`] holds them) for pages of `page_size`.
pub(crate) fn frames(run: &[u8], page_size: u32) -> impl Iterator<Item = Frame<'_>> {
    run.chunks_exact(FRAME_HEADER + page_size as usize).map(|c| Frame {
        page_no: be(c, 0),
        commit_pages: be(c, 4),
        page: &c[FRAME_HEADER..],
    })
}

/// Checks that `run` is a chain of frames of log salts `salt` continuing checksum
/// `from`, ending with a commit; returns the checksum at its end.
pub(crate) fn check_run(
    run: &[u8],
    page_size: u32,
    big_endian: bool,
    salt: [u32; 2],
    from: [u32; 2],
) -> Result<[u32; 2], String> {
    let size = FRAME_HEADER + page_size as usize;
    if run.is_empty() || !run.len().is_multiple_of(size) {
        return Err(format!("{} bytes of frames is not a whole number of {size}-byte frames", run.len()));
    }
    let mut sum = from;
    let mut last_commit = 0;
    for (i, c) in run.chunks_exact(size).enumerate() {
        if be(c, 0) == 0 || [be(c, 8), be(c, 12)] != salt {
            return Err(format!("frame {i} is not of this log (page number or salts)"));
        }
        sum = checksum(big_endian, &c[FRAME_HEADER..], checksum(big_endian, &c[..8], sum));
        if sum != [be(c, 16), be(c, 20)] {
            return Err(format!("frame {i} breaks the checksum chain"));
        }
        last_commit = be(c, 4);
    }
    if last_commit == 0 {
        return Err("the last frame does not commit".into());
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log written by SQLite itself: its header checks, its frames chain, and a
    /// byte flipped anywhere in a frame cuts the chain there.
    #[test]
    fn reads_what_sqlite_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t(x);
             INSERT INTO t VALUES (randomblob(3000)); INSERT INTO t VALUES (randomblob(3000));",
        )
        .unwrap();
        let wal = dir.path().join("a.db-wal");
        let mut f = std::fs::File::open(&wal).unwrap();
        let h = read_header(&mut f).unwrap().expect("a valid header");
        assert_eq!(h.page_size, 4096);
        let start = Cursor { frame: 0, checksum: h.checksum };
        let all = scan(&mut f, &h, start, usize::MAX).unwrap();
        let frames_in_file = (std::fs::metadata(&wal).unwrap().len() - HEADER as u64) / h.frame_size();
        assert_eq!(u64::from(all.count), frames_in_file);
        let end = all.end.unwrap();
        assert_eq!(check_run(&all.frames, h.page_size, h.big_endian, h.salt, h.checksum), Ok(end.checksum));
        assert_eq!(frame_checksum(&mut f, &h, end.frame - 1).unwrap(), Some(end.checksum));
        // Reading on from the end finds nothing new; a byte flipped in the last frame
        // ends the chain before that frame's transaction.
        assert_eq!(scan(&mut f, &h, end, usize::MAX).unwrap().count, 0);
        let mut bytes = std::fs::read(&wal).unwrap();
        let last = bytes.len() - 100;
        bytes[last] ^= 1;
        let mut cut = std::io::Cursor::new(bytes);
        let partial = scan(&mut cut, &h, start, usize::MAX).unwrap();
        assert!(partial.count < all.count, "{} of {}", partial.count, all.count);
        // A header with a bad checksum is no header.
        let mut head = [0u8; HEADER];
        head.copy_from_slice(&std::fs::read(&wal).unwrap()[..HEADER]);
        assert!(parse_header(&head).is_some());
        head[17] ^= 0x40;
        assert!(parse_header(&head).is_none());
    }

    /// A real log damaged at random places, many times over: reading it never panics,
    /// and whatever it yields is a whole, checking chain of frames.
    #[test]
    fn damaged_logs_yield_only_checking_frames() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t(x);")
            .unwrap();
        for i in 0..12 {
            c.execute("INSERT INTO t VALUES (randomblob(?1))", [500 * (i + 1)]).unwrap();
        }
        let good = std::fs::read(dir.path().join("a.db-wal")).unwrap();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..400 {
            let mut bytes = good.clone();
            for _ in 0..=(next() % 4) {
                let at = (next() % bytes.len() as u64) as usize;
                match round % 3 {
                    0 => bytes[at] ^= 1 << (next() % 8),
                    1 => bytes.truncate(at),
                    _ => bytes[at] = next() as u8,
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let mut f = std::io::Cursor::new(bytes);
            let Some(h) = read_header(&mut f).unwrap() else { continue };
            let scan = scan(&mut f, &h, Cursor { frame: 0, checksum: h.checksum }, usize::MAX).unwrap();
            if let Some(end) = scan.end {
                let checked = check_run(&scan.frames, h.page_size, h.big_endian, h.salt, h.checksum);
                assert_eq!(checked, Ok(end.checksum), "round {round}");
            } else {
                assert_eq!(scan.count, 0);
            }
        }
    }
}
