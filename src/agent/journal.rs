//! The rotation journal: one small file per secret recording the rotation in flight, written
//! atomically before the first database write and after every phase change, and removed only
//! when the database and the server's live value are known to agree.
//!
//! It never holds a plaintext password: the snapshot is a stored verifier/hash or the mark
//! "restore from the live value", and the applied password is kept as a salted SHA-256.

use std::fmt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
        let salt = hex(&salt);
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
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One rotation in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    pub version: u32,
    pub secret_id: String,
    pub rotation_id: String,
    pub phase: Phase,
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
            version: 1,
            secret_id: secret_id.to_owned(),
            rotation_id: rotation_id.to_owned(),
            phase: Phase::Applying,
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

    /// Writes `entry` durably (temp file, fsync, rename) before returning.
    pub fn save(&self, entry: &mut JournalEntry) -> Result<(), JournalError> {
        entry.updated_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
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
