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
