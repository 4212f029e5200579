//! The process's own figures, read from the kernel at scrape time (`/proc/self`,
//! `clock_gettime`, `getrlimit`, `statvfs`).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the process uses now. A figure the kernel does not give (no `/proc`) is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessStats {
    /// User plus system CPU time since the process started, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory (`VmRSS`), in bytes.
    pub resident_memory_bytes: Option<u64>,
    /// Virtual memory (`VmSize`), in bytes.
    pub virtual_memory_bytes: Option<u64>,
    /// Open file descriptors (entries of `/proc/self/fd`).
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
}

impl ProcessStats {
    /// Reads the figures now.
    pub fn read() -> Self {
        let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let field = |name: &str| status.as_deref().and_then(|s| status_kib(s, name)).map(|kib| kib * 1024);
        Self {
            cpu_seconds: cpu.tv_sec as f64 + cpu.tv_nsec as f64 / 1e9,
            resident_memory_bytes: field("VmRSS:"),
            virtual_memory_bytes: field("VmSize:"),
            // The count includes the directory handle read_dir holds while it reads.
            open_fds: count_entries(std::path::Path::new("/proc/self/fd")).map(|n| n.saturating_sub(1)),
            max_fds: rustix::process::getrlimit(rustix::process::Resource::Nofile).current,
        }
    }
}

/// The value in KiB of a `Name:   1234 kB` line of `/proc/self/status`.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let mut words = line[name.len()..].split_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

/// Space on the file system holding a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DiskStats {
    /// Bytes an unprivileged process may still write (`f_bavail × f_frsize`).
    pub free_bytes: u64,
    /// The file system's size (`f_blocks × f_frsize`).
    pub size_bytes: u64,
}

impl DiskStats {
    /// The file system of `dir`, or `None` if it cannot be asked (the directory is gone).
    pub fn of(dir: &Path) -> Option<Self> {
        let s = rustix::fs::statvfs(dir).ok()?;
        Some(Self {
            free_bytes: s.f_bavail.saturating_mul(s.f_frsize),
            size_bytes: s.f_blocks.saturating_mul(s.f_frsize),
        })
    }
}

/// Entries of `dir` (for `/proc/self/fd`, the descriptors open, one of them the listing's own).
fn count_entries(dir: &std::path::Path) -> Option<u64> {
    std::fs::read_dir(dir).ok().map(|d| d.count() as u64)
}

/// Seconds of `d`, as a float.
pub(crate) fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read();
        assert!(s.resident_memory_bytes.unwrap() > 1024 * 1024, "{s:?}");
        assert!(s.virtual_memory_bytes.unwrap() >= s.resident_memory_bytes.unwrap());
        // Other tests in this process open and close descriptors at the same time, so
        // the count is checked for sense here and exactly on a directory of our own.
        let open = s.open_fds.unwrap();
        assert!(open >= 3, "stdin, stdout and stderr at least: {s:?}");
        assert!(s.max_fds.unwrap() >= open);
        let dir = tempfile::tempdir().unwrap();
        for i in 0..3 {
            std::fs::write(dir.path().join(i.to_string()), b"x").unwrap();
        }
        assert_eq!(count_entries(dir.path()), Some(3));
        assert_eq!(count_entries(&dir.path().join("missing")), None);
    }

    #[test]
    fn parses_status_lines() {
        let s = "Name:\tmltb\nVmRSS:\t   2048 kB\nVmSize:\tjunk\n";
        assert_eq!(status_kib(s, "VmRSS:"), Some(2048));
        assert_eq!(status_kib(s, "VmSize:"), None);
        assert_eq!(status_kib(s, "VmSwap:"), None);
    }

    #[test]
    fn disk_of_a_temp_dir() {
        let d = DiskStats::of(&std::env::temp_dir()).unwrap();
        assert!(d.size_bytes >= d.free_bytes && d.size_bytes > 0, "{d:?}");
        assert_eq!(DiskStats::of(Path::new("/no/such/dir/here")), None);
    }
}
