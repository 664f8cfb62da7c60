//! Signals for `start`, handled on one thread with `sigwait(2)` rather than in a handler:
//! SIGINT/SIGTERM ask for a clean stop (a second one exits at once with 130), SIGHUP asks
//! for the local config to be re-read. The three signals are blocked in the calling thread
//! first, so every thread spawned after it inherits the mask and only this one sees them.

use std::io;
use std::sync::Arc;
use std::thread;

use crate::agent::shutdown::{Shutdown, StopReason};
use crate::exit::Exit;

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set we own; sigaddset only adds valid signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (call it before spawning any other)
/// and starts the thread that turns them into requests on `shutdown`.
pub fn spawn(shutdown: Arc<Shutdown>) -> io::Result<()> {
    let set = signal_set();
    // SAFETY: set is initialised; a null old-mask pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut stops = 0u32;
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: set is initialised and blocked in every thread; sig is ours.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    continue;
                }
                match sig {
                    libc::SIGHUP => {
                        log::info!("SIGHUP: re-reading the local config");
                        shutdown.request_reload();
                    }
                    _ => {
                        stops += 1;
                        if stops == 1 {
                            let name = if sig == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
                            log::info!("{name}: stopping cleanly (a second signal exits at once)");
                            shutdown.request(StopReason::Signal);
                        } else {
                            crate::logging::say(
                                log::Level::Warn,
                                "second signal: exiting now; the journal lets the next start finish any rotation in flight",
                            );
                            std::process::exit(Exit::Interrupted.code());
                        }
                    }
                }
            }
        })
        .map(|_| ())
}
