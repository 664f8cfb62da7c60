//! The systemd notification protocol (`sd_notify(3)`) in a few lines over a Unix datagram
//! socket, without libsystemd: `READY=1` once start-up is done, `STATUS=` lines that
//! `systemctl status` shows, `WATCHDOG=1` from the heartbeat loop, `RELOADING=1` on SIGHUP
//! and `STOPPING=1` on the way out. Outside systemd (`NOTIFY_SOCKET` unset) every call is
//! a no-op, so the agent runs the same under any supervisor.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where systemd listens: a path, or a name in the abstract namespace (`@name`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum SocketAddr {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

/// Sends state changes to the service manager; does nothing when there is none.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier that never sends anything.
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// From `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID`, as systemd sets them.
    pub fn from_env() -> Notifier {
        let addr = match std::env::var_os("NOTIFY_SOCKET") {
            Some(s) if !s.is_empty() => {
                let bytes = std::os::unix::ffi::OsStrExt::as_bytes(s.as_os_str()).to_vec();
                match bytes.strip_prefix(b"@") {
                    Some(name) => SocketAddr::Abstract(name.to_vec()),
                    None => SocketAddr::Path(PathBuf::from(s)),
                }
            }
            _ => return Notifier::disabled(),
        };
        let socket = match UnixDatagram::unbound() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("cannot create a socket to notify systemd: {e}");
                return Notifier::disabled();
            }
        };
        // The watchdog is ours only when systemd meant this process (WATCHDOG_PID unset
        // or equal to our PID).
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|us| *us > 0 && for_us)
            .map(Duration::from_micros);
        Notifier {
            target: Some((socket, addr)),
            watchdog,
        }
    }

    /// Whether a service manager listens.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often systemd expects `WATCHDOG=1` at the latest, when it asked for it.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one message (`KEY=value` lines). Failures are logged at debug level only: a
    /// service manager that went away must not disturb the agent.
    pub fn send(&self, message: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        let sent = match addr {
            SocketAddr::Path(p) => socket.send_to(message.as_bytes(), p),
            SocketAddr::Abstract(name) => send_abstract(socket, name, message.as_bytes()),
        };
        if let Err(e) = sent {
            log::debug!("cannot notify systemd ({message:?}): {e}");
        }
    }

    /// Start-up is done; `status` says what the agent does now.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// The heartbeat loop is alive.
    pub fn watchdog(&self) {
        if self.watchdog.is_some() {
            self.send("WATCHDOG=1");
        }
    }

    /// A reload (SIGHUP) started; `reloaded` ends it.
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the local config",
            monotonic_usec()
        ));
    }

    pub fn reloaded(&self, status: &str) {
        self.ready(status);
    }

    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }
}

fn send_abstract(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> std::io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &addr)
}

/// A STATUS value must stay on one line: a newline would start a new field.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// CLOCK_MONOTONIC in microseconds, which `RELOADING=1` carries since systemd 253.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_listening_socket() {
        let dir = std::env::temp_dir().join(format!("ska-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            target: Some((UnixDatagram::unbound().unwrap(), SocketAddr::Path(path))),
            watchdog: Some(Duration::from_secs(1)),
        };
        n.ready("healthy\nsecond line");
        n.watchdog();
        let mut buf = [0u8; 512];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=healthy second line");
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_socket_nothing_happens() {
        let n = Notifier::disabled();
        assert!(!n.enabled());
        n.ready("x");
        n.watchdog();
    }
}
