//! Where the agent keeps its per-secret files under `$SIKKERKEY_HOME/agents/`: the local
//! config (`{id}.json`, shared with the official CLI), the PID file, the rotation journal
//! and the small state file `list` reads.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret id that is unsafe as a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSecretId(pub String);

impl fmt::Display for BadSecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not a valid secret id (expected letters, digits, '_', '-' or '.', like sk_a1b2c3)",
            self.0
        )
    }
}

impl std::error::Error for BadSecretId {}

/// Checks a secret id before it becomes part of a path or a URL.
pub fn check_secret_id(id: &str) -> Result<(), BadSecretId> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BadSecretId(id.to_owned()))
    }
}

/// The files of one secret's agent.
#[derive(Debug, Clone)]
pub struct AgentFiles {
    dir: PathBuf,
    secret_id: String,
}

impl AgentFiles {
    pub fn new(home: &Path, secret_id: &str) -> Result<Self, BadSecretId> {
        check_secret_id(secret_id)?;
        Ok(AgentFiles {
            dir: agents_dir(home),
            secret_id: secret_id.to_owned(),
        })
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `{id}.json`: the local config written by `configure`.
    pub fn config(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.secret_id))
    }

    /// `{id}.pid`: the running agent's PID.
    pub fn pid(&self) -> PathBuf {
        self.dir.join(format!("{}.pid", self.secret_id))
    }

    /// `{id}.journal`: the rotation in flight, if any.
    pub fn journal(&self) -> PathBuf {
        self.dir.join(format!("{}.journal", self.secret_id))
    }

    /// `{id}.state.json`: last heartbeat and last rotation, for `list`.
    pub fn state(&self) -> PathBuf {
        self.dir.join(format!("{}.state.json", self.secret_id))
    }
}

pub fn agents_dir(home: &Path) -> PathBuf {
    home.join("agents")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_ids_that_could_escape_the_directory_are_refused() {
        assert!(check_secret_id("sk_a1b2c3d4e5").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "sk 1", "sk\n1"] {
            assert!(check_secret_id(bad).is_err(), "{bad:?}");
        }
    }
}
