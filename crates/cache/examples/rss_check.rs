//! Is the byte budget a promise? Fills a cache whose budget is `MB` megabytes (default
//! 256) with `Vec<u8>` values of 1 KB to 64 KB under the default weigher, churning through
//! three budgets' worth of inserts, and prints resident memory (Linux `/proc/self/status`)
//! against the budget.
//!
//! ```text
//! cargo run --release -p mltb-cache --example rss_check [-- MB]
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "an example prints its figures")]

use mltb_cache::MemoryCache;

fn rss_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() {
    let mb: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let budget = mb * 1024 * 1024;
    let base = rss_bytes().unwrap_or(0);
    let cache: MemoryCache<u64, Vec<u8>> = match MemoryCache::builder().max_bytes(budget).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut written = 0;
    let mut key = 0_u64;
    let mut peak = 0;
    while written < 3 * budget {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 1024 + (x % (63 * 1024)) as usize;
        // Touch every page, as a real value would.
        let value = vec![(key & 0xff) as u8; len];
        written += len;
        key += 1;
        let _ = cache.insert(key, value);
        if key.is_multiple_of(1024) {
            peak = peak.max(rss_bytes().unwrap_or(0));
        }
    }
    let rss = rss_bytes().unwrap_or(0);
    peak = peak.max(rss);
    let s = cache.stats();
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!("budget            {:>9.1} MiB", mib(budget));
    println!("charged (weigher) {:>9.1} MiB in {} entries", mib(s.bytes), s.entries);
    println!("RSS at start      {:>9.1} MiB", mib(base));
    println!("RSS now / peak    {:>9.1} / {:.1} MiB", mib(rss), mib(peak));
    println!(
        "(RSS - start) / budget: now {:.3}, peak {:.3}",
        (rss.saturating_sub(base)) as f64 / budget as f64,
        (peak.saturating_sub(base)) as f64 / budget as f64
    );
}
