//! File names from the network made safe to write: names from `Content-Disposition` and
//! torrent metadata are chosen by whoever serves them, so they are cleaned before they
//! touch the disk, and every path is checked to stay inside the task's directory.
//!
//! - [`sanitize_component`]: one file name — no `/` or `\`, no `.` or `..`, no control
//!   or bidirectional-override characters, no Windows-reserved names (`CON`, `nul.txt`,
//!   `COM1`, …), no trailing dots or spaces, never empty, and at most a given number of
//!   bytes with UTF-8 kept valid and the extension kept where it fits.
//! - [`sanitize_relative_path`]: a multi-file torrent's path, component by component,
//!   with absolute prefixes and `..` dropped.
//! - [`unique_in`]: a free name in a directory, renaming collisions `name (1).ext`.
//! - [`resolve_inside`]: a relative path joined to a root, refused if it would land
//!   outside the root, also through symlinks already on disk.
//!
//! # Example
//!
//! ```
//! use mltb_engine::names::{sanitize_component, sanitize_relative_path, NAME_MAX};
//!
//! assert_eq!(sanitize_component("../../etc/passwd", NAME_MAX), ".._.._etc_passwd");
//! assert_eq!(sanitize_component("CON.txt", NAME_MAX), "_CON.txt");
//! assert_eq!(sanitize_component("report\u{202E}fdp.exe", NAME_MAX), "report_fdp.exe");
//! assert_eq!(sanitize_component("..", NAME_MAX), "file");
//! assert_eq!(sanitize_component("ééééé.mkv", 9), "éé.mkv");
//! assert_eq!(sanitize_relative_path("/abs/../x/./y.bin"), std::path::Path::new("abs/x/y.bin"));
//! ```

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::{Error, ErrorKind, Result};

/// The longest file name most Linux file systems accept, in bytes.
pub const NAME_MAX: usize = 255;

/// The name used when nothing usable is left.
pub const FALLBACK_NAME: &str = "file";

/// The longest extension (with its dot) kept when a name is shortened.
const MAX_EXTENSION: usize = 16;

/// How many `name (n).ext` candidates [`unique_in`] tries.
const MAX_RENAMES: u32 = 10_000;

/// Windows device names, reserved with any extension.
const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// Whether `c` must not appear in a file name: path separators, control characters (C0,
/// DEL, C1), line and paragraph separators, and the invisible direction marks and
/// overrides that make `exe.txt` display as `txt.exe`.
fn is_unsafe(c: char) -> bool {
    matches!(c, '/' | '\\' | '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{FEFF}')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || c.is_control()
}

/// Whether a name is a Windows device name (`CON`, `nul.txt`, `com1.tar.gz`, `LPT9 `),
/// which rclone remotes on Windows file systems and Windows users cannot open.
fn is_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or_default().trim_end_matches([' ', '.']);
    if RESERVED.iter().any(|r| stem.eq_ignore_ascii_case(r)) {
        return true;
    }
    let mut chars = stem.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let digit: Vec<char> = chars.collect();
    (prefix.eq_ignore_ascii_case("COM") || prefix.eq_ignore_ascii_case("LPT"))
        && matches!(digit.as_slice(), ['1'..='9' | '¹' | '²' | '³'])
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn trim_end(s: &str) -> &str {
    s.trim_end_matches(|c: char| c == '.' || c.is_whitespace())
}

/// `name` within `max` bytes, keeping a short extension when it has one.
fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return trim_end(name).to_string();
    }
    let ext_len_max = MAX_EXTENSION.min(max / 2);
    if let Some(dot) = name.rfind('.').filter(|&d| d > 0) {
        let ext = &name[dot..];
        if (2..=ext_len_max).contains(&ext.len()) && !ext.contains(char::is_whitespace) {
            let stem = trim_end(cut(&name[..dot], max - ext.len()));
            if !stem.is_empty() {
                return format!("{stem}{ext}");
            }
        }
    }
    trim_end(cut(name, max)).to_string()
}

/// One file name, safe to create in a directory: see the [module docs](self).
///
/// Unsafe characters become `_`; leading and trailing whitespace and trailing dots go; a
/// Windows device name gets a leading `_`; a name longer than `max_bytes` is cut on a
/// character boundary, keeping an extension of up to 16 bytes; nothing usable left
/// gives [`FALLBACK_NAME`] (cut to `max_bytes`). `max_bytes` is at least 1.
///
/// The result is never empty, `.` or `..`, has no `/`, `\`, NUL or control character,
/// is at most `max_bytes` bytes, and is unchanged by a second pass.
pub fn sanitize_component(name: &str, max_bytes: usize) -> String {
    let max = max_bytes.max(1);
    let cleaned: String = name.chars().map(|c| if is_unsafe(c) { '_' } else { c }).collect();
    let mut out = fit(cleaned.trim_start(), max);
    if is_reserved(&out) {
        out = fit(&format!("_{out}"), max);
    }
    if out.is_empty() || out == "." || out == ".." {
        out = cut(FALLBACK_NAME, max).to_string();
    }
    out
}

/// A folder for a task's files, such as the one `-m` gathers links into:
/// [`sanitize_component`] with [`NAME_MAX`], never hidden: a name starting with `.` gets a
/// leading `_` (the engine's own entries in a task's directory start with `.mltb-`, and
/// the upload skips them).
///
/// ```
/// use mltb_engine::names::folder_name;
///
/// assert_eq!(folder_name("holiday photos"), "holiday photos");
/// assert_eq!(folder_name("../up"), "_.._up");
/// assert_eq!(folder_name(".mltb-link-0"), "_.mltb-link-0");
/// ```
pub fn folder_name(name: &str) -> String {
    let out = sanitize_component(name, NAME_MAX);
    if out.starts_with('.') { fit(&format!("_{out}"), NAME_MAX) } else { out }
}

/// A relative path for a file of a multi-file torrent: split on `/` and `\`, with empty,
/// `.` and `..` components dropped (so nothing climbs out, and an absolute path becomes
/// relative) and each remaining component passed through [`sanitize_component`] with
/// [`NAME_MAX`]. Never empty: nothing usable gives [`FALLBACK_NAME`].
pub fn sanitize_relative_path(path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.split(['/', '\\']) {
        if matches!(part.trim(), "" | "." | "..") {
            continue;
        }
        out.push(sanitize_component(part, NAME_MAX));
    }
    if out.as_os_str().is_empty() {
        out.push(FALLBACK_NAME);
    }
    out
}

/// A path in `dir` for `name` (sanitised with [`NAME_MAX`]) that does not exist yet:
/// `name.ext`, else `name (1).ext`, `name (2).ext`, … Anything already there counts,
/// a dangling symlink too.
///
/// The check and the later creation are two steps: create the file with
/// `OpenOptions::create_new` and pick again if that fails, when other writers share the
/// directory.
pub fn unique_in(dir: &Path, name: &str) -> Result<PathBuf> {
    let name = sanitize_component(name, NAME_MAX);
    let taken = |p: &Path| match p.symlink_metadata() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(p.display(), &e)),
    };
    let first = dir.join(&name);
    if !taken(&first)? {
        return Ok(first);
    }
    let (stem, ext) = match name.rfind('.').filter(|&d| d > 0 && name.len() - d <= MAX_EXTENSION) {
        Some(d) => name.split_at(d),
        None => (name.as_str(), ""),
    };
    for n in 1..=MAX_RENAMES {
        let suffix = format!(" ({n}){ext}");
        let stem = trim_end(cut(stem, NAME_MAX.saturating_sub(suffix.len())));
        let candidate = dir.join(format!("{stem}{suffix}"));
        if !taken(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(ErrorKind::Io {
        path: first.display().to_string(),
        reason: format!("{MAX_RENAMES} names like it are taken already"),
    }
    .into())
}

/// `root` joined with `relative`, refused unless it stays inside `root`.
///
/// `relative` must be relative and free of `..`; it need not exist. The deepest part
/// of the result that exists on disk is resolved (symlinks followed) and must still be
/// inside the resolved `root`, so a symlink planted in the task directory cannot send a
/// write elsewhere. Returns the path under the resolved root.
///
/// Errors are [`ErrorKind::Io`] naming the path: an absolute path or `..`, a path that
/// resolves outside `root`, or a `root` that cannot be resolved.
///
/// Only what is on disk at the time of the call is checked: nothing else may create
/// symlinks in the task directory between this check and the write.
pub fn resolve_inside(root: &Path, relative: &Path) -> Result<PathBuf> {
    let refuse =
        |reason: String| -> Error { ErrorKind::Io { path: relative.display().to_string(), reason }.into() };
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(refuse("'..' is not allowed in a path inside the task directory".into()));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("an absolute path is not allowed inside the task directory".into()));
            }
        }
    }
    let root = root.canonicalize().map_err(|e| Error::io(root.display(), &e))?;
    let joined = root.join(&clean);
    // The deepest existing ancestor (the path itself when it exists), resolved.
    let mut existing = joined.as_path();
    let resolved = loop {
        match existing.canonicalize() {
            Ok(resolved) => break resolved,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A dangling symlink is refused: where it points may be created later.
                if existing.symlink_metadata().is_ok() {
                    return Err(refuse(format!("{} is a symlink to nothing", existing.display())));
                }
                existing = existing.parent().unwrap_or(&root);
            }
            Err(e) => return Err(Error::io(existing.display(), &e)),
        }
    };
    if !resolved.starts_with(&root) {
        return Err(refuse(format!(
            "it resolves to {}, outside the task directory {}",
            resolved.display(),
            root.display()
        )));
    }
    let rest = joined.strip_prefix(existing).unwrap_or(Path::new(""));
    Ok(if rest.as_os_str().is_empty() { resolved } else { resolved.join(rest) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        let table: &[(&str, usize, &str)] = &[
            ("report.pdf", 255, "report.pdf"),
            ("a/b\\c", 255, "a_b_c"),
            ("..", 255, "file"),
            (".", 255, "file"),
            ("...", 255, "file"),
            ("", 255, "file"),
            ("   ", 255, "file"),
            ("\0", 255, "_"),
            ("a\0b", 255, "a_b"),
            ("line\nbreak\r.txt", 255, "line_break_.txt"),
            ("tab\there", 255, "tab_here"),
            ("del\u{7f}c1\u{85}\u{9b}", 255, "del_c1__"),
            ("sep\u{2028}\u{2029}", 255, "sep__"),
            ("evil\u{202E}txt.exe", 255, "evil_txt.exe"),
            ("name. . .", 255, "name"),
            ("  lead and trail  ", 255, "lead and trail"),
            (".hidden", 255, ".hidden"),
            ("CON", 255, "_CON"),
            ("con.txt", 255, "_con.txt"),
            ("Nul.tar.gz", 255, "_Nul.tar.gz"),
            ("COM1", 255, "_COM1"),
            ("lpt9.log", 255, "_lpt9.log"),
            ("COM¹", 255, "_COM¹"),
            ("COM0", 255, "COM0"),
            ("CONSOLE", 255, "CONSOLE"),
            ("con .txt", 255, "_con .txt"),
            ("file", 2, "fi"),
            ("..", 1, "f"),
            ("abcdef.txt", 8, "abcd.txt"),
            ("abcdef.verylongextension", 10, "abcdef.ver"),
            ("abc. .txt", 8, "abc.txt"),
            ("日本語.mkv", 9, "日.mkv"),
            ("日本語", 8, "日本"),
            ("CONxx.a", 5, "_CO.a"),
            ("aaaa.", 2, "aa"),
            ("aaaa.b", 2, "aa"),
        ];
        for (input, max, want) in table {
            assert_eq!(sanitize_component(input, *max), *want, "{input:?} within {max}");
        }
    }

    #[test]
    fn paths() {
        let table: &[(&str, &str)] = &[
            ("dir/file.bin", "dir/file.bin"),
            ("/etc/passwd", "etc/passwd"),
            ("../../../../etc/shadow", "etc/shadow"),
            ("a\\..\\b", "a/b"),
            ("a/./b//c", "a/b/c"),
            ("..", "file"),
            ("", "file"),
            ("x/CON/aux.txt", "x/_CON/_aux.txt"),
            ("C:\\Windows\\x", "C:/Windows/x"),
        ];
        for (input, want) in table {
            assert_eq!(sanitize_relative_path(input), Path::new(want), "{input:?}");
        }
    }

    #[test]
    fn collisions_are_renamed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(unique_in(dir.path(), "a.txt").unwrap(), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), b"").unwrap();
        assert_eq!(unique_in(dir.path(), "a.txt").unwrap(), dir.path().join("a (1).txt"));
        std::fs::write(dir.path().join("a (1).txt"), b"").unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("a (2).txt")).unwrap();
        assert_eq!(unique_in(dir.path(), "a.txt").unwrap(), dir.path().join("a (3).txt"));
        std::fs::create_dir(dir.path().join("noext")).unwrap();
        assert_eq!(unique_in(dir.path(), "noext").unwrap(), dir.path().join("noext (1)"));
        let long = format!("{}.bin", "x".repeat(300));
        let first = unique_in(dir.path(), &long).unwrap();
        std::fs::write(&first, b"").unwrap();
        let second = unique_in(dir.path(), &long).unwrap();
        let name = second.file_name().unwrap().to_str().unwrap();
        assert!(name.len() <= NAME_MAX && name.ends_with(" (1).bin"), "{name}");
        // A hostile name is sanitised first.
        assert_eq!(unique_in(dir.path(), "../x").unwrap(), dir.path().join(".._x"));
    }

    #[test]
    fn resolving_stays_inside() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("task");
        let outside = base.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let canon = root.canonicalize().unwrap();
        assert_eq!(resolve_inside(&root, Path::new("a/b.bin")).unwrap(), canon.join("a/b.bin"));
        assert_eq!(resolve_inside(&root, Path::new("sub/./c")).unwrap(), canon.join("sub/c"));
        assert_eq!(resolve_inside(&root, Path::new("")).unwrap(), canon);
        for bad in ["../x", "sub/../../x", "/etc/passwd"] {
            let err = resolve_inside(&root, Path::new(bad)).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Io { .. }), "{bad}: {err}");
            assert!(err.to_string().starts_with(bad), "{err}");
        }
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let err = resolve_inside(&root, Path::new("link/file")).unwrap_err();
        assert!(err.to_string().contains("outside the task directory"), "{err}");
        std::os::unix::fs::symlink("/etc/passwd", root.join("pw")).unwrap();
        assert!(resolve_inside(&root, Path::new("pw")).is_err());
        std::os::unix::fs::symlink(base.path().join("later"), root.join("dangling")).unwrap();
        let err = resolve_inside(&root, Path::new("dangling")).unwrap_err();
        assert!(err.to_string().contains("symlink to nothing"), "{err}");
        // A symlink that stays inside is fine.
        std::os::unix::fs::symlink(root.join("sub"), root.join("inner")).unwrap();
        assert_eq!(resolve_inside(&root, Path::new("inner/d")).unwrap(), canon.join("sub/d"));
        // The root may itself be reached through a symlink.
        let alias = base.path().join("alias");
        std::os::unix::fs::symlink(&root, &alias).unwrap();
        assert_eq!(resolve_inside(&alias, Path::new("a")).unwrap(), canon.join("a"));
    }
}
