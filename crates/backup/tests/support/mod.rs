//! What the backup tests share.

#![allow(dead_code, unreachable_pub, reason = "each test file uses part of the support")]

use mltb_store::{NewTask, Source, TaskKind};

/// `len` incompressible bytes (xorshift from `seed`).
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A leech task of user `n`, its link and name numbered by `n`.
pub fn task(n: i64) -> NewTask {
    NewTask {
        chat: 100,
        user: n,
        source: Source::Url(format!("https://example.org/file-{n}.iso")),
        kind: TaskKind::Leech,
        name: Some(format!("file-{n}.iso")),
        options: serde_json::json!({}),
    }
}

/// Rewrites the manifest of the backup or run at `path` with `edit`, and the checksum
/// after it, as a forger would: the file still passes the whole-file check.
pub fn rewrite_manifest(path: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap();
    let tail = bytes.len() - (4 + 8 + 32);
    let len = u32::from_le_bytes(bytes[tail..tail + 4].try_into().unwrap()) as usize;
    let mut manifest: serde_json::Value = serde_json::from_slice(&bytes[tail - len..tail]).unwrap();
    edit(&mut manifest);
    let json = serde_json::to_vec(&manifest).unwrap();
    let mut out = bytes[..tail - len].to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&bytes[tail + 4..tail + 12]);
    let sum = sha2::Sha256::digest(&out);
    out.extend_from_slice(&sum);
    std::fs::write(path, out).unwrap();
}

/// The permission bits of `path`.
pub fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
