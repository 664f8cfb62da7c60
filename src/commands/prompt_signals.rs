//! While the password prompt has echo off, a signal that ends the process (Ctrl+C,
//! SIGTERM, SIGHUP, SIGQUIT) must not leave the terminal without echo: these handlers put
//! the saved terminal settings back and then die of the same signal, so the shell still
//! sees "killed by SIGINT".

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

static SAVED: OnceLock<libc::termios> = OnceLock::new();
static FD: AtomicI32 = AtomicI32::new(-1);
static ARMED: AtomicBool = AtomicBool::new(false);

extern "C" fn restore_and_die(sig: libc::c_int) {
    if ARMED.load(Ordering::SeqCst)
        && let Some(saved) = SAVED.get()
    {
        // SAFETY: tcsetattr, signal and raise are async-signal-safe; `saved` is a
        // fully initialised termios that is never written again.
        unsafe { libc::tcsetattr(FD.load(Ordering::SeqCst), libc::TCSANOW, saved) };
    }
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Remembers `saved` as what `fd` must be reset to, and installs the handlers.
pub fn arm(fd: i32, saved: libc::termios) {
    if SAVED.set(saved).is_err() {
        // A second prompt in one process: keep the first (original) settings.
    }
    FD.store(fd, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    for sig in SIGNALS {
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe { libc::signal(sig, restore_and_die as *const () as libc::sighandler_t) };
    }
}

/// The terminal is back to normal: signals get their default action again.
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
    for sig in SIGNALS {
        // SAFETY: resets the disposition to the default.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}
