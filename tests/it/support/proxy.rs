//! Databases that go away or stop answering, without touching the server: a TCP proxy
//! that can refuse connections, swallow new ones, or freeze open ones mid-session (and
//! forward again), and a port that accepts connections and never speaks.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const FORWARD: u8 = 0;
const REFUSE: u8 = 1;
const BLACK_HOLE: u8 = 2;

pub struct TcpProxy {
    port: u16,
    mode: Arc<AtomicU8>,
    /// While set, bytes already read are held, as with a server stuck mid-statement.
    frozen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Every connection opened through the proxy (both ends), to sever on a mode change.
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 and forwards to `target` ("host:port").
    pub fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let frozen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (m, f, s, l) = (mode.clone(), frozen.clone(), stop.clone(), live.clone());
        let target = target.to_owned();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                match m.load(Ordering::SeqCst) {
                    REFUSE => {
                        let _ = client.shutdown(Shutdown::Both);
                    }
                    BLACK_HOLE => l.lock().unwrap().push(client),
                    _ => {
                        let Ok(server) = TcpStream::connect(&target) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        l.lock()
                            .unwrap()
                            .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                        pipe(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            f.clone(),
                        );
                        pipe(server, client, f.clone());
                    }
                }
            }
        });
        TcpProxy {
            port,
            mode,
            frozen,
            stop,
            live,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Switches mode and severs every open connection. Connections are closed before a
    /// freeze is lifted, so bytes held while frozen never reach the server.
    fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.frozen.store(false, Ordering::SeqCst);
    }

    /// Open connections stay open but nothing more passes in either direction.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Severs every open connection and refuses new ones.
    pub fn cut(&self) {
        self.set_mode(REFUSE);
    }

    /// Severs every open connection; new ones are accepted and never answered.
    pub fn hang(&self) {
        self.set_mode(BLACK_HOLE);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.set_mode(FORWARD);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>) {
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

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A listener whose connections the kernel accepts and nobody ever answers.
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
