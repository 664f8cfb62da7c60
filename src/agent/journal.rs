//! The rotation journal: one small file per secret recording the rotation in flight, written
//! atomically before the first database write and after every phase change, and removed only
//! when the database and the server's live value are known to agree.
//!
//! It never holds a plaintext password: the snapshot is a stored verifier/hash or the mark
//! "restore from the live value", and the applied password is kept as a salted SHA-256.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::unix_now;
use crate::files::check_secret_id;
use crate::fsutil::{self, JsonFileError};
use crate::secret::Secret;

/// Where a rotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Snapshot taken; the new password may or may not be in the database.
    Applying,
    /// The new password is in the database and verified; the server has not acknowledged
    /// the confirmation yet.
    Confirming,
    /// The rotation failed; the old credential is being put back and the server told.
    Rejecting,
}

/// How to put the old credential back. The stored verifier is a [`Secret`], so `Debug` is safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Snapshot {
    /// The user did not exist: rollback removes it.
    Absent,
    /// The database's stored verifier or hash (provider-specific text).
    Stored {
        #[serde(with = "crate::secret::serde_secret")]
        value: Secret,
    },
    /// The stored form could not be read: rollback re-reads the live value from the server.
    LiveValue,
}

/// A salted SHA-256 of a password: enough to recognise it again, useless to log in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordDigest {
    pub salt: String,
    pub sha256: String,
}

impl PasswordDigest {
    pub fn of(password: &Secret) -> Self {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).expect("the operating system's random number generator failed");
        let salt = crate::hex::lower(&salt);
        let sha256 = digest(&salt, password);
        PasswordDigest { salt, sha256 }
    }

    pub fn matches(&self, password: &Secret) -> bool {
        digest(&self.salt, password) == self.sha256
    }
}

fn digest(salt: &str, password: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(password.expose().as_bytes());
    crate::hex::lower(&h.finalize())
}

/// The journal format this agent writes; it reads this one and the ones listed in
/// [`READABLE_VERSIONS`]. Version 1 had no [`JournaledTarget`].
pub const JOURNAL_VERSION: u32 = 2;
const READABLE_VERSIONS: [u32; 2] = [1, 2];

/// Where a rotation ran, so that a rollback goes to that database even when the sync
/// config now points elsewhere. No credential: the admin login comes from the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournaledTarget {
    /// `providerType`, e.g. `postgresql`.
    pub provider: String,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub database: String,
}

/// One rotation in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    pub version: u32,
    pub secret_id: String,
    pub rotation_id: String,
    pub phase: Phase,
    /// The database the rotation changed (absent in version-1 journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<JournaledTarget>,
    pub username: String,
    pub snapshot: Snapshot,
    pub applied: PasswordDigest,
    /// Why the rotation is being rejected (phase `Rejecting`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Set once the server has acknowledged the rejection.
    #[serde(default)]
    pub rejected: bool,
    pub updated_at: u64,
}

impl JournalEntry {
    pub fn new(
        secret_id: &str,
        rotation_id: &str,
        username: &str,
        snapshot: Snapshot,
        new_password: &Secret,
    ) -> Self {
        JournalEntry {
            version: JOURNAL_VERSION,
            secret_id: secret_id.to_owned(),
            rotation_id: rotation_id.to_owned(),
            phase: Phase::Applying,
            target: None,
            username: username.to_owned(),
            snapshot,
            applied: PasswordDigest::of(new_password),
            error: String::new(),
            rejected: false,
            updated_at: 0,
        }
    }
}

/// A journal that cannot be read or written.
#[derive(Debug)]
pub enum JournalError {
    /// Reading failed, or the file is not a journal entry.
    Load(JsonFileError),
    /// Writing or removing failed.
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = match self {
            JournalError::Load(JsonFileError::Parse { path, .. }) => {
                return write!(
                    f,
                    "the rotation journal {} is corrupt; check that the database password matches the secret's live value, then delete the file",
                    path.display()
                );
            }
            JournalError::Load(e) => e.path(),
            JournalError::Write { path, .. } => path,
        };
        write!(
            f,
            "cannot read or write the rotation journal {}",
            path.display()
        )
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Load(e) => e.source(),
            JournalError::Write { source, .. } => Some(source),
        }
    }
}

/// What [`Journal::load_for`] found.
#[derive(Debug)]
pub enum Loaded {
    /// No rotation in flight.
    Empty,
    Entry(Box<JournalEntry>),
    /// The file is unusable: the database must be brought back to the live value, then
    /// the file moved aside ([`Journal::set_aside`]).
    Damaged {
        why: String,
    },
}

/// What sets a damaged copy's name apart: `{secret}.journal.damaged-<unix time>`.
const DAMAGED_INFIX: &str = ".damaged-";

/// How long set-aside journals are kept. They are for a human to read after the agent
/// recovered (the agent never reads them again), and they may hold a stored verifier, so
/// they do not stay forever: at most `keep` per secret, none older than `max_age`.
pub struct Retention {
    pub keep: usize,
    pub max_age: Duration,
}

/// README ("Files") documents these numbers.
pub const DAMAGED_RETENTION: Retention = Retention {
    keep: 5,
    max_age: Duration::from_secs(30 * 24 * 3600),
};

/// The journal file of one secret.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn new(path: PathBuf) -> Self {
        Journal { path }
    }

    pub fn load(&self) -> Result<Option<JournalEntry>, JournalError> {
        fsutil::load_json(&self.path).map_err(JournalError::Load)
    }

    /// Loads the journal of `secret_id`. A file that is not a journal entry (truncated, not
    /// JSON), is for another secret, or is of a version this agent cannot read is
    /// [`Loaded::Damaged`], never an error that would wedge the secret.
    pub fn load_for(&self, secret_id: &str) -> Result<Loaded, JournalError> {
        let why = match self.load() {
            Ok(None) => return Ok(Loaded::Empty),
            // The id is quoted only when it is a well-formed one: nothing else of a file
            // that is not this secret's journal reaches the log.
            Ok(Some(e)) if e.secret_id != secret_id => match check_secret_id(&e.secret_id) {
                Ok(()) => format!("it records a rotation of another secret ({})", e.secret_id),
                Err(_) => "it records a rotation of another secret".to_owned(),
            },
            Ok(Some(e)) if !READABLE_VERSIONS.contains(&e.version) => format!(
                "it is of journal version {}, which this agent cannot read (it reads {:?})",
                e.version, READABLE_VERSIONS
            ),
            Ok(Some(e)) => return Ok(Loaded::Entry(Box::new(e))),
            // Where the text fails, never what it holds (JsonProblem quotes nothing).
            Err(JournalError::Load(JsonFileError::Parse { source, .. })) => {
                format!("it is not a journal entry ({source})")
            }
            Err(JournalError::Load(JsonFileError::Read { source, .. }))
                if source.kind() == std::io::ErrorKind::InvalidData =>
            {
                format!("it is not text ({source})")
            }
            Err(e) => return Err(e),
        };
        Ok(Loaded::Damaged { why })
    }

    /// Moves the file to `{journal}.damaged-<unix time>`, mode 0600, for a human to read,
    /// then prunes the older copies ([`Journal::prune_damaged`]).
    pub fn set_aside(&self) -> Result<PathBuf, JournalError> {
        use std::os::unix::fs::PermissionsExt;
        let now = unix_now();
        let mut name = self.path.clone().into_os_string();
        name.push(format!("{DAMAGED_INFIX}{now}"));
        let moved_to = PathBuf::from(name);
        let io = |source| JournalError::Write {
            path: self.path.clone(),
            source,
        };
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        std::fs::rename(&self.path, &moved_to).map_err(io)?;
        self.prune_damaged(now);
        Ok(moved_to)
    }

    /// Deletes the set-aside copies of this journal that [`DAMAGED_RETENTION`] no longer
    /// keeps: those set aside more than its `max_age` before `now`, and all but the newest
    /// `keep`. Returns the paths deleted. Failures are logged and left for the next call:
    /// pruning never stops a job.
    pub fn prune_damaged(&self, now: u64) -> Vec<PathBuf> {
        let (Some(dir), Some(name)) = (
            self.path.parent(),
            self.path.file_name().and_then(|n| n.to_str()),
        ) else {
            return Vec::new();
        };
        let prefix = format!("{name}{DAMAGED_INFIX}");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut copies: Vec<(u64, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let file_name = e.file_name();
                let at = file_name.to_str()?.strip_prefix(&prefix)?.parse().ok()?;
                Some((at, e.path()))
            })
            .collect();
        copies.sort_by(|a, b| b.cmp(a));
        let max_age = DAMAGED_RETENTION.max_age.as_secs();
        let mut deleted = Vec::new();
        for (i, (at, path)) in copies.into_iter().enumerate() {
            if i < DAMAGED_RETENTION.keep && now.saturating_sub(at) <= max_age {
                continue;
            }
            match fsutil::remove_if_exists(&path) {
                Ok(_) => deleted.push(path),
                Err(e) => log::warn!(
                    "cannot delete the old damaged journal {}: {e}",
                    path.display()
                ),
            }
        }
        deleted
    }

    /// Writes `entry` durably (temp file, fsync, rename) before returning.
    pub fn save(&self, entry: &mut JournalEntry) -> Result<(), JournalError> {
        entry.updated_at = unix_now();
        let text = serde_json::to_vec_pretty(entry).expect("journal entries always serialize");
        fsutil::write_atomic(&self.path, &text, fsutil::PRIVATE).map_err(|source| {
            JournalError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }

    pub fn clear(&self) -> Result<(), JournalError> {
        fsutil::remove_if_exists(&self.path)
            .map(drop)
            .map_err(|source| JournalError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_foreign_and_future_journals_are_set_aside() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ska-journal-aside-{}", std::process::id()));
        let path = dir.join("sk_1.journal");
        let journal = Journal::new(path.clone());
        let mut entry =
            JournalEntry::new("sk_1", "rot_1", "app", Snapshot::Absent, &Secret::new("p"));
        journal.save(&mut entry).unwrap();
        let good = std::fs::read_to_string(&path).unwrap();
        assert!(matches!(
            journal.load_for("sk_1").unwrap(),
            Loaded::Entry(_)
        ));
        let future = good.replace("\"version\": 2", "\"version\": 99");
        for (text, secret, why) in [
            (&good[..good.len() / 2], "sk_1", "not a journal entry"),
            ("\u{0}garbage", "sk_1", "not a journal entry"),
            (&good[..], "sk_2", "another secret (sk_1)"),
            (&future[..], "sk_1", "version 99"),
        ] {
            std::fs::write(&path, text).unwrap();
            match journal.load_for(secret).unwrap() {
                Loaded::Damaged { why: w } => {
                    assert!(w.contains(why), "{w}");
                    let moved_to = journal.set_aside().unwrap();
                    assert!(!path.exists());
                    let mode = std::fs::metadata(&moved_to).unwrap().permissions().mode();
                    assert_eq!(mode & 0o777, 0o600);
                    assert_eq!(std::fs::read_to_string(&moved_to).unwrap(), text);
                    std::fs::remove_file(moved_to).unwrap();
                }
                other => panic!("{other:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_copies_are_kept_five_at_most_and_thirty_days_at_most() {
        let dir = std::env::temp_dir().join(format!("ska-journal-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let journal = Journal::new(dir.join("sk_1.journal"));
        let now = 2_000_000_000;
        let day = 24 * 3600;
        let ages = [0, 1, 2, 3, 4, 5, 29 * day, 31 * day];
        for age in ages {
            std::fs::write(dir.join(format!("sk_1.journal.damaged-{}", now - age)), "x").unwrap();
        }
        // Another secret's copies and other files are not this journal's to prune.
        std::fs::write(
            dir.join(format!("sk_2.journal.damaged-{}", now - 40 * day)),
            "x",
        )
        .unwrap();
        std::fs::write(dir.join("sk_1.journal.damaged-notes"), "x").unwrap();
        let deleted = journal.prune_damaged(now);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(deleted.len(), 3, "{deleted:?}");
        let mut expected: Vec<String> = ages[..5]
            .iter()
            .map(|age| format!("sk_1.journal.damaged-{}", now - age))
            .collect();
        expected.push("sk_1.journal.damaged-notes".into());
        expected.push(format!("sk_2.journal.damaged-{}", now - 40 * day));
        expected.sort();
        assert_eq!(left, expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn round_trip_without_plaintext() {
        let dir = std::env::temp_dir().join(format!("ska-journal-{}", std::process::id()));
        let journal = Journal::new(dir.join("sk_1.journal"));
        assert!(journal.load().unwrap().is_none());
        let pw = Secret::new("N3w-p@ss'word");
        let mut entry = JournalEntry::new(
            "sk_1",
            "rot_1",
            "app",
            Snapshot::Stored {
                value: Secret::new("SCRAM-SHA-256$x"),
            },
            &pw,
        );
        journal.save(&mut entry).unwrap();
        let text = std::fs::read_to_string(dir.join("sk_1.journal")).unwrap();
        assert!(!text.contains("N3w-p@ss"), "{text}");
        let loaded = journal.load().unwrap().unwrap();
        assert_eq!(loaded, entry);
        assert!(loaded.applied.matches(&pw));
        assert!(!loaded.applied.matches(&Secret::new("other")));
        journal.clear().unwrap();
        assert!(journal.load().unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
