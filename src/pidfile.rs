//! The PID file `agents/{id}.pid`: tells `list` and `stop` which process runs the agent, and
//! keeps two local agents from running for the same secret.
//!
//! The kernel decides who runs: the agent holds an exclusive `flock` on the file for its
//! whole life, so two agents started at the same moment cannot both get it, and a crashed
//! agent's lock is gone with its process (no stale-PID guessing). `list` and `stop` ask the
//! same question the same way: is the file locked? The PID written inside only says
//! *which* process holds it, and anyone holding the lock can write any PID there, so
//! before a PID is signalled [`holds_lock`] asks the kernel (`/proc/PID/fdinfo`) whether
//! that process is the one holding the lock. Removed on a clean exit.
//! A leaf: imports only `fsutil`.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fsutil;

/// Holds the locked PID file for the life of the agent; removes it on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    /// Open for as long as the agent runs: closing it releases the lock.
    file: File,
}

/// Why the PID file could not be taken.
#[derive(Debug)]
pub enum PidFileError {
    /// Another local process holds the lock: it runs the agent for this secret. `pid` is 0
    /// when it has not written its PID yet.
    AlreadyRunning { secret_id: String, pid: u32 },
    /// The file could not be opened, locked or written.
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
                write!(f, "cannot lock or write the PID file {}", path.display())
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

/// Whether an agent holds the lock on a PID file, as `list`, `stop` and `start` all see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// No PID file.
    Absent,
    /// A PID file nobody holds: the agent that wrote it is gone.
    Unlocked(Option<u32>),
    /// A process holds the lock; the PID it wrote, when it had written one already.
    Locked(Option<u32>),
    /// The file cannot be opened (another user's agent); only its PID can be guessed at.
    Unknown,
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

/// Whether process `pid` itself holds the exclusive `flock` on `path`: one of its open
/// descriptors is that very file (same device and inode, as its `/proc/PID/fd` link
/// resolves), and the kernel lists on that descriptor (`/proc/PID/fdinfo`) a write flock
/// taken by `pid`. A process that only inherited the descriptor, or that merely has its
/// PID written in the file, does not pass. Linux only; elsewhere, or for a process this
/// user may not inspect, the answer is an error, which callers treat as "no".
pub fn holds_lock(pid: u32, path: &Path) -> io::Result<bool> {
    let file = std::fs::symlink_metadata(path)?;
    if !file.file_type().is_file() {
        return Ok(false);
    }
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let fd = fd?;
        let Ok(open) = std::fs::metadata(fd.path()) else {
            continue;
        };
        if open.dev() != file.dev() || open.ino() != file.ino() {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))?;
        if info.lines().any(|line| is_write_flock_of(line, pid)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `lock:\t1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`, taken by `pid`.
fn is_write_flock_of(line: &str, pid: u32) -> bool {
    let Some(rest) = line.strip_prefix("lock:") else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    matches!(
        fields.as_slice(),
        [_, "FLOCK", _, "WRITE", locker, ..] if *locker == pid.to_string()
    )
}

/// Asks the kernel whether an agent holds `path`: a shared lock is refused exactly while an
/// agent holds its exclusive one. The probe's own lock lasts a few microseconds; a `start` at
/// that very moment retries (see [`PidFile::acquire`]).
pub fn lock_state(path: &Path) -> LockState {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return LockState::Absent,
        Err(_) => return LockState::Unknown,
    };
    match file.try_lock_shared() {
        Ok(()) => LockState::Unlocked(read_pid(path)),
        Err(TryLockError::WouldBlock) => {
            // The holder writes its PID right after locking; give it a moment.
            for _ in 0..20 {
                if let Some(pid) = read_pid(path) {
                    return LockState::Locked(Some(pid));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            LockState::Locked(None)
        }
        Err(TryLockError::Error(_)) => LockState::Unknown,
    }
}

/// Removes a PID file nobody holds, taking the lock first so that an agent starting at this
/// moment never loses its file. Returns `Ok(false)` when an agent holds it after all.
pub fn remove_stale(path: &Path) -> io::Result<bool> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    let ours = file.metadata()?;
    if let Ok(named) = std::fs::symlink_metadata(path)
        && named.ino() == ours.ino()
        && named.dev() == ours.dev()
    {
        fsutil::remove_if_exists(path)?;
    }
    Ok(true)
}

/// How many times `acquire` looks again when the lock is busy, and how long between: long
/// enough to outlast a `list` probe, far too short to outlast a running agent.
const BUSY_RETRIES: u32 = 10;
const BUSY_PAUSE: Duration = Duration::from_millis(10);

impl PidFile {
    /// Locks the PID file and writes this process's PID into it, or names the agent that
    /// holds it.
    pub fn acquire(path: &Path, secret_id: &str) -> Result<PidFile, PidFileError> {
        let io_err = |source: io::Error| PidFileError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            fsutil::ensure_private_dir(dir).map_err(io_err)?;
        }
        let mut busy = 0;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .map_err(io_err)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    busy += 1;
                    if busy < BUSY_RETRIES {
                        std::thread::sleep(BUSY_PAUSE);
                        continue;
                    }
                    let mut text = String::new();
                    let _ = (&file).read_to_string(&mut text);
                    return Err(PidFileError::AlreadyRunning {
                        secret_id: secret_id.to_owned(),
                        pid: text.trim().parse().unwrap_or(0),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io_err(e)),
            }
            // A previous holder may have removed the file between our open and our lock:
            // then we hold a lock on a name nobody else will open. Start over on the new file.
            let same = match (file.metadata(), std::fs::symlink_metadata(path)) {
                (Ok(ours), Ok(named)) => ours.ino() == named.ino() && ours.dev() == named.dev(),
                _ => false,
            };
            if !same {
                continue;
            }
            let mut file = file;
            file.set_len(0).map_err(io_err)?;
            file.rewind().map_err(io_err)?;
            file.write_all(format!("{}\n", std::process::id()).as_bytes())
                .map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
            return Ok(PidFile {
                path: path.to_owned(),
                file,
            });
        }
    }
}

impl Drop for PidFile {
    /// Removes the file while still holding the lock, so no other agent can be holding a
    /// lock on the name being removed (see the inode check in `acquire`).
    fn drop(&mut self) {
        let _ = fsutil::remove_if_exists(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_lock_lines_are_read_by_kind_mode_and_locker() {
        let line = "lock:\t1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF";
        assert!(is_write_flock_of(line, 1234));
        assert!(!is_write_flock_of(line, 123));
        assert!(!is_write_flock_of(&line.replace("WRITE", "READ "), 1234));
        assert!(!is_write_flock_of(&line.replace("FLOCK", "POSIX"), 1234));
        assert!(!is_write_flock_of("pos:\t0", 1234));
    }

    #[test]
    fn the_lock_decides_who_runs_not_the_pid_inside() {
        let dir = std::env::temp_dir().join(format!("ska-pid-{}", std::process::id()));
        let path = dir.join("sk_x.pid");
        assert_eq!(lock_state(&path), LockState::Absent);
        // A PID file left by a dead agent, naming a live process: nobody holds it.
        let me = format!("{}\n", std::process::id());
        fsutil::write_atomic(&path, me.as_bytes(), fsutil::PRIVATE).unwrap();
        assert_eq!(
            lock_state(&path),
            LockState::Unlocked(Some(std::process::id()))
        );
        let held = PidFile::acquire(&path, "sk_x").unwrap();
        assert_eq!(
            lock_state(&path),
            LockState::Locked(Some(std::process::id()))
        );
        // flock locks belong to open files, so a second acquire in this process is refused.
        match PidFile::acquire(&path, "sk_x") {
            Err(PidFileError::AlreadyRunning { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("second acquire: {other:?}"),
        }
        assert!(holds_lock(std::process::id(), &path).unwrap());
        // Another live process (our parent) does not hold it, whatever the file says.
        let parent = std::os::unix::process::parent_id();
        assert!(!holds_lock(parent, &path).unwrap_or(false));
        drop(held);
        assert_eq!(lock_state(&path), LockState::Absent);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
