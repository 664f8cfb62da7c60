//! What the management commands share: finding a secret's files, telling whether its agent
//! runs on this machine, and stopping it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::CommandError;
use crate::exit::Exit;
use crate::files::AgentFiles;
use crate::identity;
use crate::pidfile::{LockState, lock_state, process_alive, read_pid};
use crate::settings::Settings;

/// `$SIKKERKEY_HOME`.
pub fn home(settings: &Settings) -> Result<PathBuf, CommandError> {
    identity::sikkerkey_home(settings.home.as_deref())
        .map_err(|e| CommandError::new(Exit::Config, e))
}

/// The files of `secret_id`'s agent; a bad id is a usage error.
pub fn files(secret_id: &str, settings: &Settings) -> Result<AgentFiles, CommandError> {
    AgentFiles::new(&home(settings)?, secret_id).map_err(|e| CommandError::new(Exit::Usage, e))
}

/// Whether an agent runs for a secret, as far as its PID file tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentProcess {
    /// No PID file.
    NotRunning,
    /// A PID file whose process is gone (or is now some other program).
    Stale(u32),
    Running(u32),
}

impl AgentProcess {
    pub fn pid(self) -> Option<u32> {
        match self {
            AgentProcess::NotRunning => None,
            AgentProcess::Stale(p) | AgentProcess::Running(p) => Some(p),
        }
    }
}

/// What the PID file's lock says, the same test `start` applies: an agent runs exactly
/// while it holds the lock. A file this user cannot open (another user's agent) falls back
/// to whether the PID inside names a live process.
pub fn agent_process(files: &AgentFiles) -> AgentProcess {
    match lock_state(&files.pid()) {
        LockState::Absent | LockState::Unlocked(None) => AgentProcess::NotRunning,
        LockState::Unlocked(Some(pid)) => AgentProcess::Stale(pid),
        LockState::Locked(pid) => AgentProcess::Running(pid.unwrap_or(0)),
        LockState::Unknown => match read_pid(&files.pid()) {
            Some(pid) if process_alive(pid) => AgentProcess::Running(pid),
            Some(pid) => AgentProcess::Stale(pid),
            None => AgentProcess::NotRunning,
        },
    }
}

/// Sends SIGTERM to the agent with `pid` and waits until it is gone or `timeout` passes.
pub fn terminate(secret_id: &str, pid: u32, timeout: Duration) -> Result<(), CommandError> {
    if pid == 0 {
        // kill(0) would signal our own process group.
        return Err(CommandError::new(
            Exit::Failure,
            format!(
                "the agent for secret {secret_id} holds its PID file but has not written its PID yet; try again in a moment"
            ),
        ));
    }
    let target = libc::pid_t::try_from(pid).map_err(|_| {
        CommandError::new(
            Exit::Failure,
            format!("PID {pid} in the PID file is out of range"),
        )
    })?;
    // SAFETY: kill(2) with a positive pid signals that one process; no memory is involved.
    if unsafe { libc::kill(target, libc::SIGTERM) } != 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(()),
            Some(libc::EPERM) => Err(CommandError::new(
                Exit::Failure,
                format!(
                    "not allowed to stop the agent for secret {secret_id} (PID {pid}): it runs as another user; try again with sudo"
                ),
            )),
            _ => Err(CommandError::new(
                Exit::Failure,
                format!("cannot signal PID {pid}: {err}"),
            )),
        };
    }
    let deadline = Instant::now() + timeout;
    while process_alive(pid) {
        if Instant::now() >= deadline {
            return Err(CommandError::new(
                Exit::Failure,
                format!(
                    "the agent for secret {secret_id} (PID {pid}) is still running {} s after SIGTERM; it may be finishing a rotation. \
                     Check with `sikkerkey-agent list`; `kill -KILL {pid}` stops it at once and the next start finishes any journaled rotation",
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
