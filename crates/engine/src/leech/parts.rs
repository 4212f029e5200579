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

/// The parts of a file of `size` bytes cut at `split` bytes: byte-exact, in order, the
/// last one shorter. An empty file is one empty part.
pub fn plan_parts(name: &str, size: u64, split: u64) -> Vec<PartPlan> {
    let split = split.max(1);
    let count = size.div_ceil(split).max(1);
    let width = count.to_string().len().max(3);
    (0..count)
        .map(|i| {
            let offset = i * split;
            let len = split.min(size - offset);
            let name = if count == 1 { name.to_string() } else { format!("{name}.{:0width$}", i + 1) };
            PartPlan { index: u32::try_from(i).unwrap_or(u32::MAX), offset, len, name }
        })
        .collect()
}

/// SHA-256 (lowercase hex) of bytes `offset .. offset + len` of `path`, read in 1 MiB
/// blocks on a blocking thread (one hop for the whole part, not one per read).
pub(crate) async fn sha256_of(path: &Path, offset: u64, len: u64) -> Result<String> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || sha256_blocking(&owned, offset, len))
        .await
        .map_err(|e| Error::io(path.display(), &std::io::Error::other(e)))?
}

fn sha256_blocking(path: &Path, offset: u64, len: u64) -> Result<String> {
    use std::io::{Read, Seek};
    let shown = path.display();
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(&shown, &e))?;
    file.seek(std::io::SeekFrom::Start(offset)).map_err(|e| Error::io(&shown, &e))?;
    let mut reader = file.take(len);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
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
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_30_mb_file_at_10_mb_is_three_numbered_parts() {
        let mb = 1_000_000;
        let plan = plan_parts("a.iso", 30 * mb, 10 * mb);
        let names: Vec<_> = plan.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a.iso.001", "a.iso.002", "a.iso.003"]);
        assert!(plan.iter().all(|p| p.len == 10 * mb));
        assert_eq!(plan_parts("a.iso", 30 * mb + 1, 10 * mb).last().map(|p| (p.index, p.len)), Some((3, 1)));
        assert_eq!(plan_parts("a.iso", 10 * mb, 10 * mb)[0].name, "a.iso");
        assert_eq!(plan_parts("e", 0, 10).len(), 1);
        assert_eq!(plan_parts("x", 1001, 1)[1000].name, "x.1001");
    }

    proptest! {
        #[test]
        fn parts_cover_the_file_exactly_in_order(size in 0_u64..10_000_000, split in 1_u64..3_000_000) {
            let plan = plan_parts("f", size, split);
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
    }
}
