//! What the management commands share: finding a secret's files, telling whether its agent
//! runs on this machine, and stopping it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CommandError;
use crate::cli::{self, Command};
use crate::exit::Exit;
use crate::files::AgentFiles;
use crate::identity;
use crate::pidfile::{LockState, holds_lock, lock_state, process_alive, read_pid};
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

/// Why `pid` is not to be signalled as `secret_id`'s agent; `None` when it is that agent:
/// the process that holds the PID file's lock itself (the kernel says so, not the file),
/// running an agent binary (named as this one is, or `sikkerkey-agent`/`sikkerkey`) with
/// the command line `start --secret <secret_id>` (in any spelling `start` accepts).
/// Anyone who can take the lock can write any PID into the file; this is what keeps
/// root's `stop` from signalling a process the file merely names.
pub fn not_the_agent(files: &AgentFiles, secret_id: &str, pid: u32) -> Option<String> {
    match holds_lock(pid, &files.pid()) {
        Ok(true) => {}
        Ok(false) => {
            return Some(format!(
                "PID {pid} does not hold the lock on {} (the file names a process that is not the one holding it)",
                files.pid().display()
            ));
        }
        Err(e) => {
            return Some(format!(
                "cannot tell whether PID {pid} holds the lock on {} ({e})",
                files.pid().display()
            ));
        }
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let name = exe.as_deref().and_then(executable_name);
    let ours = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(executable_name);
    let is_agent_binary = name.as_deref().is_some_and(|n| {
        ["sikkerkey-agent", "sikkerkey"].contains(&n) || Some(n) == ours.as_deref()
    });
    if !is_agent_binary {
        return Some(format!(
            "PID {pid} holds the lock on {} but runs {}, not sikkerkey-agent",
            files.pid().display(),
            name.as_deref()
                .unwrap_or("a program this user cannot inspect")
        ));
    }
    // NUL-terminated arguments; the first is the program.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<OsString> = cmdline
        .strip_suffix(&[0])
        .unwrap_or(&cmdline)
        .split(|b| *b == 0)
        .skip(1)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    // cli::parse takes `--log-format` wherever it stands, as `start` does.
    let command = cli::parse(args).ok().map(|invocation| invocation.command);
    match command {
        Some(Command::Start { secret }) if secret == secret_id => None,
        _ => Some(format!(
            "PID {pid} holds the lock on {} but is not running `start --secret {secret_id}`",
            files.pid().display()
        )),
    }
}

/// The file name of an executable, without the ` (deleted)` the kernel appends once the
/// file was replaced (an upgraded agent still running).
fn executable_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    Some(name.strip_suffix(" (deleted)").unwrap_or(name).to_owned())
}

/// Sends SIGTERM to `secret_id`'s agent, `pid`, and waits until it is gone or `timeout`
/// passes. Signals nothing unless [`not_the_agent`] finds that `pid` is that agent.
pub fn terminate(
    files: &AgentFiles,
    secret_id: &str,
    pid: u32,
    timeout: Duration,
) -> Result<(), CommandError> {
    if pid == 0 {
        // kill(0) would signal our own process group.
        return Err(CommandError::new(
            Exit::Failure,
            format!(
                "the agent for secret {secret_id} holds its PID file but has not written its PID yet; try again in a moment"
            ),
        ));
    }
    if let Some(why) = not_the_agent(files, secret_id, pid) {
        return Err(CommandError::new(
            Exit::Failure,
            format!(
                "refusing to signal PID {pid} as the agent for secret {secret_id}: {why}; nothing was signalled. \
                 Find the process holding the lock with `fuser -v {}` and stop it by hand",
                files.pid().display()
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
