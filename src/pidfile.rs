//! The PID file `agents/{id}.pid`: tells `list` and `stop` which process runs the agent, and
//! keeps two local agents from running for the same secret. Removed on a clean exit; a stale
//! one (its process is gone, or its PID now belongs to another program) is replaced.
//! A leaf: imports only `fsutil`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::fsutil;

/// Holds the PID file for the life of the agent and removes it on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

/// Why the PID file could not be taken.
#[derive(Debug)]
pub enum PidFileError {
    /// Another local process runs the agent for this secret.
    AlreadyRunning { secret_id: String, pid: u32 },
    /// The file could not be written.
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for PidFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidFileError::AlreadyRunning { secret_id, pid } => write!(
                f,
                "an agent for secret {secret_id} already runs on this machine (PID {pid}); stop it with `sikkerkey-agent stop --secret {secret_id}`"
            ),
            PidFileError::Write { path, .. } => {
                write!(f, "cannot write the PID file {}", path.display())
            }
        }
    }
}

impl std::error::Error for PidFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PidFileError::AlreadyRunning { .. } => None,
            PidFileError::Write { source, .. } => Some(source),
        }
    }
}

/// The PID recorded in `path`, if the file exists and holds a number.
pub fn read_pid(path: &Path) -> Option<u32> {
    fsutil::read_optional(path)
        .ok()
        .flatten()
        .and_then(|t| t.trim().parse().ok())
}

/// Whether a process with this PID exists (Linux: `/proc/PID`) and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Whether process `pid` is alive and is the agent for `secret_id`: its command line
/// carries the id (`--secret ID` or `--secret=ID`), so a PID the kernel reused for an
/// unrelated program is never mistaken for the agent.
///
/// A live process whose command line cannot be read (another user's, under a hardened
/// `/proc`) counts as the agent: wrongly thinking a live agent is gone would let a second
/// agent start or `remove` delete a journal in use, which is worse than an error that
/// says to stop it first.
pub fn is_agent_for(pid: u32, secret_id: &str) -> bool {
    if !process_alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return true;
    };
    let suffix = format!("={secret_id}");
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == secret_id.as_bytes() || arg.ends_with(suffix.as_bytes()))
}

/// The PID of the agent running for `secret_id` according to the PID file at `path`.
pub fn running_agent(path: &Path, secret_id: &str) -> Option<u32> {
    read_pid(path).filter(|pid| is_agent_for(*pid, secret_id))
}

impl PidFile {
    pub fn acquire(path: &Path, secret_id: &str) -> Result<PidFile, PidFileError> {
        let me = std::process::id();
        if let Some(pid) = running_agent(path, secret_id)
            && pid != me
        {
            return Err(PidFileError::AlreadyRunning {
                secret_id: secret_id.to_owned(),
                pid,
            });
        }
        fsutil::write_atomic(path, format!("{me}\n").as_bytes(), fsutil::PRIVATE).map_err(
            |source| PidFileError::Write {
                path: path.to_owned(),
                source,
            },
        )?;
        Ok(PidFile {
            path: path.to_owned(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if read_pid(&self.path) == Some(std::process::id()) {
            let _ = fsutil::remove_if_exists(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_pid_is_not_the_agent() {
        let dir = std::env::temp_dir().join(format!("ska-pid-{}", std::process::id()));
        let path = dir.join("sk_x.pid");
        // This test process is alive but is not an agent for sk_x.
        let me = format!("{}\n", std::process::id());
        fsutil::write_atomic(&path, me.as_bytes(), fsutil::PRIVATE).unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id()));
        assert_eq!(running_agent(&path, "sk_x"), None);
        fsutil::write_atomic(&path, b"999999999\n", fsutil::PRIVATE).unwrap();
        assert_eq!(running_agent(&path, "sk_x"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
