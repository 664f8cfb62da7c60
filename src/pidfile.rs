//! The PID file `agents/{id}.pid`: tells `list` and `stop` which process runs the agent, and
//! keeps two local agents from running for the same secret. Removed on a clean exit; a stale
//! one (its process is gone, or its PID now belongs to another program) is replaced.

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

/// The PID of the agent running for `secret_id` according to the PID file at `path`:
/// the process must be alive and have the secret id among its arguments, so a PID that
/// the kernel reused for an unrelated process is never mistaken for the agent.
pub fn running_agent(path: &Path, secret_id: &str) -> Option<u32> {
    let pid = read_pid(path)?;
    if !process_alive(pid) {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == secret_id.as_bytes() || arg.ends_with(format!("={secret_id}").as_bytes()))
        .then_some(pid)
}

impl PidFile {
    pub fn acquire(path: &Path, secret_id: &str) -> Result<PidFile, AgentError> {
        let me = std::process::id();
        if let Some(pid) = running_agent(path, secret_id)
            && pid != me
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_pid_is_not_the_agent() {
        let dir = std::env::temp_dir().join(format!("ska-pid-{}", std::process::id()));
        let path = dir.join("sk_x.pid");
        // This test process is alive but is not an agent for sk_x.
        fsutil::write_private_atomic(&path, format!("{}\n", std::process::id()).as_bytes())
            .unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id()));
        assert_eq!(running_agent(&path, "sk_x"), None);
        fsutil::write_private_atomic(&path, b"999999999\n").unwrap();
        assert_eq!(running_agent(&path, "sk_x"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
