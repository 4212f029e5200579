//! Which backups to keep: the newest N, and the newest of each of the last days, weeks
//! and months that have one (as restic and borg count them).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::ops::{Listed, list, verify};
use crate::util::{Lock, civil};

/// A retention policy. A backup is kept when any rule keeps it; all zero keeps only
/// the newest good backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// The newest `n` backups.
    pub keep_last: usize,
    /// The newest backup of each of the last `n` days (UTC) that have one.
    pub keep_daily: usize,
    /// The newest of each of the last `n` ISO weeks (Monday to Sunday, UTC).
    pub keep_weekly: usize,
    /// The newest of each of the last `n` calendar months (UTC).
    pub keep_monthly: usize,
}

impl Retention {
    /// The seed's policy and more: the last 3, 7 daily, 4 weekly, 6 monthly.
    pub fn standard() -> Self {
        Self { keep_last: 3, keep_daily: 7, keep_weekly: 4, keep_monthly: 6 }
    }

    /// The indices (into `times`, newest first, Unix ms) this policy keeps.
    pub(crate) fn select(&self, times: &[u64]) -> HashSet<usize> {
        let mut keep: HashSet<usize> = (0..times.len().min(self.keep_last)).collect();
        let day = |ms: u64| (ms / 86_400_000) as i64;
        let buckets: [(usize, &dyn Fn(u64) -> i64); 3] = [
            (self.keep_daily, &day),
            // 1970-01-01 was a Thursday: shifting by 3 days starts weeks on Monday.
            (self.keep_weekly, &|ms| (day(ms) + 3).div_euclid(7)),
            (self.keep_monthly, &|ms| {
                let (y, m, _) = civil(day(ms));
                y * 12 + i64::from(m)
            }),
        ];
        for (n, bucket) in buckets {
            let mut seen = HashSet::new();
            for (i, &t) in times.iter().enumerate() {
                if seen.len() >= n {
                    break;
                }
                if seen.insert(bucket(t)) {
                    keep.insert(i);
                }
            }
        }
        keep
    }
}

/// What [`prune`] did (or would do, dry).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Pruned {
    /// Backups kept, newest first.
    pub kept: Vec<PathBuf>,
    /// Backups deleted (or to delete, dry).
    pub deleted: Vec<PathBuf>,
    /// Files that look like backups but cannot be read: left alone, for a person to look
    /// at.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Deletes the backups in `dir` that `policy` does not keep, under the directory's
/// lock. The newest backup that verifies is always kept, whatever the policy, so the
/// only good backup is never deleted. `dry`: decide, delete nothing.
///
/// # Errors
/// Another backup or prune holds the directory; I/O errors.
pub fn prune(dir: &Path, policy: &Retention, dry: bool) -> Result<Pruned> {
    let _lock = Lock::try_take(
        &dir.join(".mltb-backup.lock"),
        &format!("another mltb-backup is working on {}; wait for it to end", dir.display()),
    )?;
    let mut out = Pruned::default();
    let (readable, unreadable): (Vec<Listed>, Vec<Listed>) =
        list(dir)?.into_iter().partition(|l| l.manifest.is_ok());
    out.unreadable = unreadable.into_iter().map(|l| (l.path, l.manifest.err().unwrap_or_default())).collect();
    let times: Vec<u64> = readable.iter().map(Listed::created_unix_ms).collect();
    let mut keep = policy.select(&times);
    // The newest good backup stays: check the kept ones first, newest first.
    let kept_good = {
        let mut order: Vec<usize> = keep.iter().copied().collect();
        order.sort_unstable();
        order.into_iter().any(|i| verify(&readable[i].path).is_ok())
    };
    if !kept_good
        && let Some(i) =
            (0..readable.len()).filter(|i| !keep.contains(i)).find(|&i| verify(&readable[i].path).is_ok())
    {
        keep.insert(i);
    }
    for (i, l) in readable.into_iter().enumerate() {
        if keep.contains(&i) {
            out.kept.push(l.path);
        } else {
            if !dry {
                std::fs::remove_file(&l.path).map_err(|e| Error::io(&l.path, e))?;
            }
            out.deleted.push(l.path);
        }
    }
    if !dry && !out.deleted.is_empty() {
        crate::util::sync_dir(dir)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;
    const HOUR: u64 = 3_600_000;

    /// Backups every 6 hours for 60 days, newest first, ending 2026-12-03 (a Thursday).
    fn times() -> Vec<u64> {
        let end = 1_796_256_000_000; // 2026-12-03 00:00 UTC
        (0..240).map(|k| end - k * 6 * HOUR).collect()
    }

    #[test]
    fn each_rule_keeps_the_newest_of_its_buckets() {
        let t = times();
        let last = Retention { keep_last: 5, ..Retention::default() }.select(&t);
        assert_eq!(last, (0..5).collect());
        let daily = Retention { keep_daily: 7, ..Retention::default() }.select(&t);
        // The newest is alone in its day (00:00); then one per earlier day at 18:00.
        let mut d: Vec<usize> = daily.into_iter().collect();
        d.sort_unstable();
        assert_eq!(d, [0, 1, 5, 9, 13, 17, 21]);
        let weekly = Retention { keep_weekly: 3, ..Retention::default() }.select(&t);
        // Thursday 00:00 is in the week that began Monday 2026-11-30; the next kept ones
        // are the last of the weeks before: Sundays 2026-11-29 and 2026-11-22, 18:00.
        let mut w: Vec<usize> = weekly.into_iter().collect();
        w.sort_unstable();
        assert_eq!(w, [0, 13, 41]);
        let monthly = Retention { keep_monthly: 3, ..Retention::default() }.select(&t);
        let mut m: Vec<u64> = monthly.into_iter().map(|i| t[i]).collect();
        m.sort_unstable();
        // 2026-10-31 18:00, 2026-11-30 18:00, 2026-12-03 00:00.
        assert_eq!(m, [1_793_469_600_000, 1_796_061_600_000, 1_796_256_000_000]);
        assert!(Retention::default().select(&t).is_empty());
        assert_eq!(Retention::standard().select(&t[..2]).len(), 2);
        // Two backups a day apart are two days.
        assert_eq!(Retention { keep_daily: 2, ..Retention::default() }.select(&[5 * DAY, 4 * DAY]).len(), 2);
    }
}
