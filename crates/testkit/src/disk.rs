//! A small file system that fills up: a tmpfs mounted on a temporary directory, for
//! tests of what happens when the disk is full.

use std::path::Path;

/// A tmpfs of a given size on a temporary directory, unmounted (lazily) on drop.
///
/// Mounting needs root or `CAP_SYS_ADMIN`; without it [`SmallDisk::mount`] panics with a
/// message that says so (`scripts/test` runs as root in CI).
#[derive(Debug)]
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`mount -o size=…`, e.g. `"2m"`).
    ///
    /// # Panics
    /// When `mount` cannot run or fails (not root).
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test mounts a {size} tmpfs to fill the disk and needs root (or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}
