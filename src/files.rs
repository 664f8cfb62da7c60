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

    /// Where the official CLI keeps this secret's local config: `$HOME/.sikkerkey/agents`,
    /// even when `SIKKERKEY_HOME` names another directory. `None` when that is our own
    /// directory (or there is no `HOME`).
    pub fn official_config(&self) -> Option<PathBuf> {
        official_agents_dir(&self.dir).map(|dir| dir.join(format!("{}.json", self.secret_id)))
    }

    /// The local config in force: ours when it exists, else the official CLI's when only
    /// that one exists (see [`official_config`](Self::official_config)), else ours (which
    /// does not exist).
    pub fn local_config(&self) -> LocalConfigPath {
        let ours = self.config();
        if !ours.exists()
            && let Some(official) = self.official_config().filter(|p| p.exists())
        {
            return LocalConfigPath {
                path: official,
                official: true,
                ours,
            };
        }
        LocalConfigPath {
            path: ours.clone(),
            official: false,
            ours,
        }
    }
}

/// Which file holds a secret's local config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfigPath {
    pub path: PathBuf,
    /// Found only where the official CLI keeps it.
    pub official: bool,
    /// Where ours would be.
    pub ours: PathBuf,
}

impl LocalConfigPath {
    /// The warning to give when the config in force is the official CLI's copy.
    pub fn warning(&self) -> Option<String> {
        self.official.then(|| {
            format!(
                "using the local config {} written by the official CLI, which keeps local configs in $HOME/.sikkerkey/agents even with SIKKERKEY_HOME set; move it to {} (this agent's SIKKERKEY_HOME) to keep it with the agent's other files",
                self.path.display(),
                self.ours.display()
            )
        })
    }
}

pub fn agents_dir(home: &Path) -> PathBuf {
    home.join("agents")
}

/// `$HOME/.sikkerkey/agents`, where the official CLI keeps local configs whatever
/// `SIKKERKEY_HOME` says, when that is not `ours`.
pub fn official_agents_dir(ours: &Path) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    let dir = agents_dir(&Path::new(&home).join(".sikkerkey"));
    let same = match (dir.canonicalize(), ours.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => dir == ours,
    };
    (!same).then_some(dir)
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
