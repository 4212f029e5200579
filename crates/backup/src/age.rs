//! Encryption of off-site copies to age recipients, with the `age` program (Debian:
//! `apt-get install age`): a copy on someone else's storage holds no readable user data,
//! and only the holder of an identity (secret key) file can restore it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::util::run_tool;

/// The suffix of an encrypted backup.
pub const AGE_SUFFIX: &str = ".age";

fn run(program: &Path, args: &[&std::ffi::OsStr], what: &str) -> Result<()> {
    let ran = run_tool(Command::new(program).args(args), "age").map_err(Error::Invalid)?;
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
    let result = run(program, &args, &format!("encrypting {}", file.display()));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, &out).map_err(|e| Error::io(&out, e))?;
    Ok(out)
}

/// Decrypts `file` (an `.age` backup) with the secret keys in `identity` into `out`.
///
/// # Errors
/// The identity does not open it; `age` missing or failing.
pub fn decrypt(file: &Path, identity: &Path, out: &Path, program: &Path) -> Result<()> {
    let temp = PathBuf::from(format!("{}.partial", out.display()));
    let args: [&std::ffi::OsStr; 6] = [
        "--decrypt".as_ref(),
        "--identity".as_ref(),
        identity.as_os_str(),
        "--output".as_ref(),
        temp.as_os_str(),
        file.as_os_str(),
    ];
    if let Err(e) = run(program, &args, &format!("decrypting {}", file.display())) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, out).map_err(|e| Error::io(out, e))
}
