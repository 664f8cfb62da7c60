//! Servers that stop answering, for the "a hung database leads to an error, never a
//! stuck thread" tests: a port that accepts connections and never speaks, and a relay that
//! forwards to a real server until it is frozen, after which it holds every byte.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A listener whose connections are accepted by the kernel and never answered.
pub struct BlackHole {
    _listener: TcpListener,
    port: u16,
}

impl BlackHole {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        BlackHole {
            _listener: listener,
            port,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A TCP relay to `target` that can be frozen: connections stay open but nothing more
/// passes in either direction, as with a server stuck mid-statement.
pub struct FreezableRelay {
    port: u16,
    frozen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl FreezableRelay {
    pub fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (f, s, l, target) = (
            frozen.clone(),
            stop.clone(),
            live.clone(),
            target.to_owned(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                l.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                relay(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    f.clone(),
                );
                relay(server, client, f.clone());
            }
        });
        FreezableRelay {
            port,
            frozen,
            stop,
            live,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

impl Drop for FreezableRelay {
    fn drop(&mut self) {
        // Close first, then thaw: bytes held while frozen must never reach the server.
        self.stop.store(true, Ordering::SeqCst);
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.frozen.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn relay(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>) {
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while frozen.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
