//! Cutting a file into numbered parts, and hashing a part's bytes.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// One part of a file: a byte range and the name it is sent under.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartPlan {
    /// The part's number, from 0.
    pub index: u32,
    /// Where it starts in the file.
    pub offset: u64,
    /// Its length.
    pub len: u64,
    /// The name it is sent under: the file's own name when there is one part, else
    /// `name.001`, `name.002`, … (at least three digits, as the Python bot and 7-Zip name
    /// split volumes, so that `cat name.* > name` joins them in order).
    pub name: String,
}

/// The most parts one file is cut into: a message each, so a split far smaller than the
/// file would flood the chat and plan millions of parts in memory (`-sp 1` on a 2 GB
/// file asked for about 130 GB before this cap). 10,000 parts of the Bot API's 50 MB are
/// 500 GB.
pub const MAX_PARTS: u64 = 10_000;

/// The parts of a file of `size` bytes cut at `split` bytes: byte-exact, in order, the
/// last one shorter. An empty file is one empty part.
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the split size when the file
/// would be cut into more than [`MAX_PARTS`] parts (or `split` is 0), with the smallest
/// split it takes.
pub fn plan_parts(name: &str, size: u64, split: u64) -> Result<Vec<PartPlan>> {
    let count = if split == 0 { u64::MAX } else { size.div_ceil(split).max(1) };
    if count > MAX_PARTS {
        return Err(crate::ErrorKind::Config {
            setting: "split size",
            value: format!("{split} bytes"),
            expected: format!(
                "at least {} bytes for {name} ({size} bytes): a file is cut into at most {MAX_PARTS} parts",
                size.div_ceil(MAX_PARTS).max(1)
            ),
        }
        .into());
    }
    let width = count.to_string().len().max(3);
    Ok((0..count)
        .map(|i| {
            let offset = i * split;
            let len = split.min(size - offset);
            let name = if count == 1 { name.to_string() } else { format!("{name}.{:0width$}", i + 1) };
            PartPlan { index: u32::try_from(i).unwrap_or(u32::MAX), offset, len, name }
        })
        .collect())
}

/// SHA-256 (lowercase hex) of bytes `offset .. offset + len` of `path`, read in 1 MiB
/// blocks on a blocking thread (one hop for the whole part, not one per read).
pub(crate) async fn sha256_of(path: &Path, offset: u64, len: u64) -> Result<String> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || sha256_blocking(&owned, offset, len))
        .await
        .map_err(|e| Error::io(path.display(), &std::io::Error::other(e)))?
}

/// The bytes at each end of a part that its probe hashes.
const PROBE_BLOCK: u64 = 64 * 1024;

/// A part's probe: SHA-256 (lowercase hex) of its length, its first and its last 64 KiB
/// (of the whole part when shorter than 128 KiB). Two parts with the same size and probe
/// may be the same bytes; with a different probe they are not.
pub(crate) async fn probe_of(path: &Path, offset: u64, len: u64) -> Result<String> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        hasher.update(len.to_le_bytes());
        if len <= 2 * PROBE_BLOCK {
            feed(&owned, offset, len, &mut hasher)?;
        } else {
            feed(&owned, offset, PROBE_BLOCK, &mut hasher)?;
            feed(&owned, offset + len - PROBE_BLOCK, PROBE_BLOCK, &mut hasher)?;
        }
        Ok(format!("{:x}", hasher.finalize()))
    })
    .await
    .map_err(|e| Error::io(path.display(), &std::io::Error::other(e)))?
}

fn sha256_blocking(path: &Path, offset: u64, len: u64) -> Result<String> {
    let mut hasher = Sha256::new();
    feed(path, offset, len, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Feeds bytes `offset .. offset + len` of `path` to `hasher`, in 1 MiB reads.
fn feed(path: &Path, offset: u64, len: u64, hasher: &mut Sha256) -> Result<()> {
    use std::io::{Read, Seek};
    let shown = path.display();
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(&shown, &e))?;
    file.seek(std::io::SeekFrom::Start(offset)).map_err(|e| Error::io(&shown, &e))?;
    let mut reader = file.take(len);
    let mut buf = vec![0u8; usize::try_from(len.min(1 << 20)).unwrap_or(1 << 20)];
    let mut read = 0_u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::io(&shown, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        read += n as u64;
    }
    if read != len {
        return Err(Error::io(
            &shown,
            &std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("expected {len} bytes at {offset}, read {read}"),
            ),
        ));
    }
    Ok(())
}

/// The SHA-256 of a part taken from the blocks its upload reads. Blocks must come in
/// order from offset 0; a block at offset 0 starts over (a retried upload reads the part
/// again), and a block at any other unexpected offset is ignored (a stale reader of an
/// earlier attempt), so the hash is of the part's bytes exactly once.
#[derive(Debug)]
pub(crate) struct StreamHash {
    len: u64,
    state: std::sync::Mutex<(Sha256, u64)>,
}

impl StreamHash {
    pub(crate) fn new(len: u64) -> Self {
        Self { len, state: std::sync::Mutex::new((Sha256::new(), 0)) }
    }

    pub(crate) fn feed(&self, offset: u64, block: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if offset == 0 {
            *state = (Sha256::new(), 0);
        }
        if offset == state.1 {
            state.0.update(block);
            state.1 += block.len() as u64;
        }
    }

    /// The hash, once every byte of the part was seen.
    pub(crate) fn finish(&self) -> Result<String> {
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.1 != self.len {
            return Err(Error::io(
                "a part's hash",
                &std::io::Error::other(format!(
                    "the upload read {} of the part's {} bytes",
                    state.1, self.len
                )),
            ));
        }
        Ok(format!("{:x}", state.0.clone().finalize()))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn plan(name: &str, size: u64, split: u64) -> Vec<PartPlan> {
        plan_parts(name, size, split).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_30_mb_file_at_10_mb_is_three_numbered_parts() {
        let mb = 1_000_000;
        let parts = plan("a.iso", 30 * mb, 10 * mb);
        let names: Vec<_> = parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a.iso.001", "a.iso.002", "a.iso.003"]);
        assert!(parts.iter().all(|p| p.len == 10 * mb));
        assert_eq!(plan("a.iso", 30 * mb + 1, 10 * mb).last().map(|p| (p.index, p.len)), Some((3, 1)));
        assert_eq!(plan("a.iso", 10 * mb, 10 * mb)[0].name, "a.iso");
        assert_eq!(plan("e", 0, 10).len(), 1);
        assert_eq!(plan("x", 1001, 1)[1000].name, "x.1001");
    }

    #[test]
    fn a_split_that_would_make_more_than_max_parts_is_refused_before_planning() {
        // `-sp 1` on a 2 GB file: two billion parts, refused without allocating them.
        let e = plan_parts("movie.mkv", 2_000_000_000, 1).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("split size") && text.contains("movie.mkv") && text.contains("200000 bytes"),
            "{text}"
        );
        assert!(plan_parts("f", 10, 0).is_err(), "a split of 0 bytes");
        assert_eq!(plan("f", MAX_PARTS, 1).len() as u64, MAX_PARTS, "exactly the cap is allowed");
        assert!(plan_parts("f", MAX_PARTS + 1, 1).is_err());
    }

    proptest! {
        #[test]
        fn parts_cover_the_file_exactly_in_order(size in 0_u64..10_000_000, split in 1_u64..3_000_000) {
            // Splits too small for the file are refused (above); the rest plan exactly.
            prop_assert_eq!(plan_parts("f", size, split).is_err(), size.div_ceil(split) > MAX_PARTS);
            let split = split.max(size.div_ceil(MAX_PARTS));
            let plan = plan("f", size, split);
            let mut next = 0;
            for (i, p) in plan.iter().enumerate() {
                prop_assert_eq!(p.index as usize, i);
                prop_assert_eq!(p.offset, next);
                prop_assert!(p.len <= split);
                prop_assert!(p.len > 0 || size == 0);
                next += p.len;
            }
            prop_assert_eq!(next, size);
            let mut names: Vec<_> = plan.iter().map(|p| p.name.clone()).collect();
            let sorted = { let mut s = names.clone(); s.sort(); s };
            names.dedup();
            prop_assert_eq!(names.len(), plan.len());
            prop_assert_eq!(sorted, plan.iter().map(|p| p.name.clone()).collect::<Vec<_>>(), "names sort in part order");
        }
    }

    #[tokio::test]
    async fn part_hashes_match_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000_u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let want = format!("{:x}", Sha256::digest(&data[1_000_000..2_500_000]));
        assert_eq!(sha256_of(&path, 1_000_000, 1_500_000).await.unwrap(), want);
        assert!(sha256_of(&path, 2_000_000, 2_000_000).await.is_err(), "past the end");

        // The same bytes seen as an upload reads them: a retry from offset 0 starts over,
        // a stale block is ignored, and a short read is an error.
        let part = &data[1_000_000..2_500_000];
        let streamed = StreamHash::new(part.len() as u64);
        streamed.feed(0, &part[..300_000]);
        assert!(streamed.finish().is_err(), "not every byte seen");
        for (i, block) in part.chunks(262_144).enumerate() {
            streamed.feed(i as u64 * 262_144, block);
        }
        streamed.feed(262_144, &part[..10]);
        assert_eq!(streamed.finish().unwrap(), want);

        // Probes: equal for equal bytes of equal length, different when either end or the
        // length differs; a short part is probed whole.
        let probe = probe_of(&path, 0, 1_000_000).await.unwrap();
        let other = dir.path().join("g");
        let mut changed = data.clone();
        std::fs::write(&other, &changed).unwrap();
        assert_eq!(probe_of(&other, 0, 1_000_000).await.unwrap(), probe);
        changed[999_999] ^= 1;
        std::fs::write(&other, &changed).unwrap();
        assert_ne!(probe_of(&other, 0, 1_000_000).await.unwrap(), probe, "the last byte counts");
        assert_ne!(probe_of(&path, 0, 999_999).await.unwrap(), probe, "the length counts");
        assert_ne!(probe_of(&path, 0, 100).await.unwrap(), probe_of(&path, 1, 100).await.unwrap());
        assert!(probe_of(&path, 2_900_000, 200_000).await.is_err(), "past the end");
    }
}
