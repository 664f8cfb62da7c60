//! The one rule for files that hold a credential the agent logs in with: the identity key,
//! the admin password file, the local config (it holds the admin password) and TLS client
//! keys. Such a file is refused when anyone but its owner may read or write it, so a
//! secret left world-readable stops the agent with a message instead of being used.
//!
//! The rule is libpq's for its client key: the owner alone (`0600` or stricter), or, for a
//! file owned by root, root plus its group reading (`0640` or stricter), so that a key
//! shared with a service user through a group like `ssl-cert` works. A symbolic link is
//! followed and the file it leads to is checked: its mode is what decides who can read the
//! content. [`read`] checks the file it has open, so what is read is what was checked.
//! A leaf: imports nothing from this crate.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Permission bits a file owned by its reader must not have: any for group or others.
const OWNER_ONLY: u32 = 0o077;
/// Permission bits a root-owned file must not have: group write or execute, any for others.
const ROOT_AND_GROUP_READ: u32 = 0o037;

/// A secret file that cannot be used.
#[derive(Debug)]
pub enum SecretFileError {
    /// Group or others may read or write it.
    TooOpen {
        /// What the file is, e.g. "TLS client key".
        what: &'static str,
        path: PathBuf,
        mode: u32,
        root_owned: bool,
    },
    /// It could not be opened or read.
    Read {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl SecretFileError {
    pub fn path(&self) -> &Path {
        match self {
            SecretFileError::TooOpen { path, .. } | SecretFileError::Read { path, .. } => path,
        }
    }
}

impl fmt::Display for SecretFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretFileError::TooOpen {
                what,
                path,
                mode,
                root_owned,
            } => {
                write!(
                    f,
                    "{what} {} is readable or writable by {} (mode {mode:04o}); refusing to use it. Fix with: chmod 600 '{}'",
                    path.display(),
                    if mode & 0o007 != 0 {
                        "others"
                    } else {
                        "its group"
                    },
                    path.display()
                )?;
                if *root_owned {
                    f.write_str(
                        " (a file owned by root may also be 0640, to share it through its group)",
                    )?;
                }
                Ok(())
            }
            SecretFileError::Read { what, path, .. } => {
                write!(f, "cannot read {what} {}", path.display())
            }
        }
    }
}

impl std::error::Error for SecretFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SecretFileError::TooOpen { .. } => None,
            SecretFileError::Read { source, .. } => Some(source),
        }
    }
}

/// Whether `meta` passes the rule; the error names `what` and `path`.
fn check_metadata(meta: &Metadata, what: &'static str, path: &Path) -> Result<(), SecretFileError> {
    let mode = meta.mode() & 0o7777;
    let root_owned = meta.uid() == 0;
    let forbidden = if root_owned {
        ROOT_AND_GROUP_READ
    } else {
        OWNER_ONLY
    };
    if mode & forbidden == 0 {
        return Ok(());
    }
    Err(SecretFileError::TooOpen {
        what,
        path: path.to_owned(),
        mode: mode & 0o777,
        root_owned,
    })
}

/// Opens `path` (following a symbolic link), checks the open file against the rule, and
/// reads it whole.
pub fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, SecretFileError> {
    let io = |source| SecretFileError::Read {
        what,
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    check_metadata(&file.metadata().map_err(io)?, what, path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Like [`read`] for a file that may not exist: `Ok(None)` when it does not.
pub fn read_optional(path: &Path, what: &'static str) -> Result<Option<Vec<u8>>, SecretFileError> {
    match read(path, what) {
        Err(SecretFileError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Ok(None)
        }
        other => other.map(Some),
    }
}

/// Checks a file that another library will read by its path (a driver's TLS key). A
/// missing or unreadable file passes here: reading it fails later, with its own message.
pub fn check(path: &Path, what: &'static str) -> Result<(), SecretFileError> {
    match std::fs::metadata(path) {
        Ok(meta) => check_metadata(&meta, what, path),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_the_owner_or_root_and_its_group_may_read() {
        let dir = std::env::temp_dir().join(format!("ska-secret-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.pem");
        std::fs::write(&path, "secret").unwrap();
        let root = unsafe { libc::geteuid() } == 0;
        for (mode, ok_for_owner, ok_for_root) in [
            (0o600, true, true),
            (0o400, true, true),
            (0o640, false, true),
            (0o660, false, false),
            (0o644, false, false),
            (0o604, false, false),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let ok = if root { ok_for_root } else { ok_for_owner };
            match read(&path, "test key") {
                Ok(bytes) => {
                    assert!(ok, "mode {mode:o} accepted");
                    assert_eq!(bytes, b"secret");
                }
                Err(e) => {
                    assert!(!ok, "mode {mode:o} refused: {e}");
                    let text = e.to_string();
                    assert!(text.contains(&format!("mode {mode:04o}")), "{text}");
                    assert!(text.contains("chmod 600"), "{text}");
                }
            }
            assert_eq!(check(&path, "test key").is_ok(), ok);
        }
        // A symbolic link is judged by the file it leads to.
        let link = dir.join("link.pem");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read(&link, "test key").is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(&link, "test key").is_ok());
        assert!(
            read_optional(&dir.join("absent"), "test key")
                .unwrap()
                .is_none()
        );
        assert!(check(&dir.join("absent"), "test key").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
