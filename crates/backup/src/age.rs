//! Encryption of off-site copies to age recipients, with the `age` program (Debian:
//! `apt-get install age`): a copy on someone else's storage holds no readable user data,
//! and only the holder of an identity (secret key) file can restore it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::util::{private_file, rename_new, run_tool};

/// The suffix of an encrypted backup.
pub const AGE_SUFFIX: &str = ".age";

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let ran = run_tool(cmd, "age").map_err(Error::Invalid)?;
    if ran.code == 0 {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{what}: age failed: {}", ran.last_error)))
    }
}

/// Encrypts `file` to every one of `recipients` (age public keys, `age1…`, or SSH public
/// keys) into `<file>.age` beside it, written under a temporary name and renamed when
/// complete. Returns the encrypted file.
///
/// # Errors
/// No recipient; a recipient age does not accept; `age` missing or failing.
pub fn encrypt(file: &Path, recipients: &[String], program: &Path) -> Result<PathBuf> {
    if recipients.is_empty() {
        return Err(Error::Invalid("encrypting needs at least one age recipient (age1…)".into()));
    }
    let out = PathBuf::from(format!("{}{AGE_SUFFIX}", file.display()));
    let temp = PathBuf::from(format!("{}.partial", out.display()));
    let mut args: Vec<&std::ffi::OsStr> = Vec::new();
    for r in recipients {
        args.push("--recipient".as_ref());
        args.push(r.as_ref());
    }
    args.extend(["--output".as_ref(), temp.as_os_str(), file.as_os_str()]);
    let result = run(Command::new(program).args(args), &format!("encrypting {}", file.display()));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, &out).map_err(|e| Error::io(&out, e))?;
    Ok(out)
}

/// Decrypts `file` (an `.age` backup) with the secret keys in `identity` into `out`,
/// which must not exist (a file there is never replaced). The plain text is written
/// under a temporary name, mode 0600 from the start, and named `out` when complete.
///
/// # Errors
/// `out` exists; the identity does not open it; `age` missing or failing.
pub fn decrypt(file: &Path, identity: &Path, out: &Path, program: &Path) -> Result<()> {
    let exists = || {
        Error::Invalid(format!(
            "{}: already there; a decrypted copy never replaces a file: decrypt into another directory",
            out.display()
        ))
    };
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(exists());
    }
    let temp = PathBuf::from(format!("{}.partial", out.display()));
    // age writes to our own file (its --output would create one readable by everyone).
    let sink = private_file(&temp)?;
    let mut cmd = Command::new(program);
    cmd.arg("--decrypt").arg("--identity").arg(identity).arg(file).stdout(sink);
    if let Err(e) = run(&mut cmd, &format!("decrypting {}", file.display())) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    rename_new(&temp, out).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        if e.kind() == std::io::ErrorKind::AlreadyExists { exists() } else { Error::io(out, e) }
    })
}
