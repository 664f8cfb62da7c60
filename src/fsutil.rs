//! Files on disk, in one place: every file the agent writes goes through [`write_atomic`]
//! (temp file, fsync, rename, fsync of the directory) so a crash leaves either the old or
//! the new content, never half of one; every JSON file it reads goes through [`load_json`].
//! A leaf: imports only [`crate::json_problem`].

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use crate::json_problem::JsonProblem;

/// Mode of the agent's own files: only the owner may read them.
pub const PRIVATE: u32 = 0o600;
/// Mode of files other users must read (service definitions; they hold no secrets).
pub const PUBLIC: u32 = 0o644;

/// Creates `dir` (and parents) with mode 0700; tightens an existing one that is looser.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `contents` to `path` atomically with `mode`. A private file's directory is
/// created 0700 (and tightened); any other file's directory is created as the umask says
/// and otherwise left alone. A failed write leaves no temp file behind.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    if mode & 0o077 == 0 {
        ensure_private_dir(dir)?;
    } else {
        fs::create_dir_all(dir)?;
    }
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// Removes `path`, treating "already gone" as success.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads a file that may not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A JSON file that exists but cannot be used. Callers add what the file is and what to
/// do about it.
#[derive(Debug)]
pub enum JsonFileError {
    /// The file exists but could not be read.
    Read { path: PathBuf, source: io::Error },
    /// The file is not JSON of the expected shape.
    Parse { path: PathBuf, source: JsonProblem },
}

impl JsonFileError {
    pub fn path(&self) -> &Path {
        match self {
            JsonFileError::Read { path, .. } | JsonFileError::Parse { path, .. } => path,
        }
    }
}

impl fmt::Display for JsonFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonFileError::Read { path, .. } => write!(f, "cannot read {}", path.display()),
            JsonFileError::Parse { path, .. } => write!(
                f,
                "{} is not valid JSON of the expected shape",
                path.display()
            ),
        }
    }
}

impl std::error::Error for JsonFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JsonFileError::Read { source, .. } => Some(source),
            JsonFileError::Parse { source, .. } => Some(source),
        }
    }
}

/// Parses `text`, read from `path`; the error says where it fails, never what is there.
pub fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, JsonFileError> {
    serde_json::from_str(text).map_err(|e| JsonFileError::Parse {
        path: path.to_owned(),
        source: JsonProblem::of(&e),
    })
}

/// Reads and parses the JSON file at `path`; `Ok(None)` when there is none.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, JsonFileError> {
    let text = read_optional(path).map_err(|source| JsonFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.map(|t| parse_json(path, &t)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let dir = std::env::temp_dir().join(format!("ska-fsutil-{}", std::process::id()));
        let path = dir.join("sub").join("f.json");
        write_atomic(&path, b"one", PRIVATE).unwrap();
        write_atomic(&path, b"two", PRIVATE).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(path.parent().unwrap()), 0o700);
        write_atomic(&path, b"three", PUBLIC).unwrap();
        assert_eq!(mode_of(&path), 0o644);
        assert!(remove_if_exists(&path).unwrap());
        assert!(!remove_if_exists(&path).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("ska-fsutil-fail-{}", std::process::id()));
        // The target is a non-empty directory, so the rename fails after the temp file
        // was written.
        let path = dir.join("occupied");
        fs::create_dir_all(path.join("inside")).unwrap();
        assert!(write_atomic(&path, b"x", PRIVATE).is_err());
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["occupied"], "temp file left behind");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_files_missing_broken_and_good() {
        let dir = std::env::temp_dir().join(format!("ska-fsutil-json-{}", std::process::id()));
        let path = dir.join("v.json");
        assert!(load_json::<Vec<u32>>(&path).unwrap().is_none());
        write_atomic(&path, b"[1, 2", PRIVATE).unwrap();
        let e = load_json::<Vec<u32>>(&path).unwrap_err();
        assert!(matches!(e, JsonFileError::Parse { .. }), "{e}");
        assert!(e.to_string().contains("v.json"), "{e}");
        // Where it fails, never what is there: serde would quote the value.
        write_atomic(
            &path,
            br#"{"a": "SCRAM-SHA-256$4096:c2FsdA==$secret"}"#,
            PRIVATE,
        )
        .unwrap();
        let e = load_json::<Vec<u32>>(&path).unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(
            !chain.contains("SCRAM") && chain.contains("line 1"),
            "{chain}"
        );
        write_atomic(&path, b"[1, 2]", PRIVATE).unwrap();
        assert_eq!(load_json::<Vec<u32>>(&path).unwrap(), Some(vec![1, 2]));
        fs::remove_dir_all(&dir).unwrap();
    }
}
