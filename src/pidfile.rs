//! The PID file `agents/{id}.pid`: tells `list` and `stop` which process runs the agent, and
//! keeps two local agents from running for the same secret. Removed on a clean exit; a stale
//! one (its process is gone) is replaced.

use std::path::{Path, PathBuf};

use crate::agent::AgentError;
use crate::fsutil;

/// Holds the PID file for the life of the agent and removes it on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

/// The PID recorded in `path`, if the file exists and holds a number.
pub fn read_pid(path: &Path) -> Option<u32> {
    fsutil::read_optional(path)
        .ok()
        .flatten()
        .and_then(|t| t.trim().parse().ok())
}

/// Whether a process with this PID exists (Linux: `/proc/PID`).
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

impl PidFile {
    pub fn acquire(path: &Path, secret_id: &str) -> Result<PidFile, AgentError> {
        let me = std::process::id();
        if let Some(pid) = read_pid(path)
            && pid != me
            && process_alive(pid)
        {
            return Err(AgentError::AlreadyRunning {
                secret_id: secret_id.to_owned(),
                pid,
            });
        }
        fsutil::write_private_atomic(path, format!("{me}\n").as_bytes()).map_err(|source| {
            AgentError::Io {
                what: format!("write the PID file {}", path.display()),
                source,
            }
        })?;
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
