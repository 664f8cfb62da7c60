//! A TCP proxy between the agent and a database, so a test can make the database
//! unreachable (connections refused) or hung (connections accepted, never answered) at a
//! chosen moment, and reachable again, without touching the server.

#![allow(dead_code)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

const FORWARD: u8 = 0;
const REFUSE: u8 = 1;
const BLACK_HOLE: u8 = 2;

pub struct TcpProxy {
    port: u16,
    mode: Arc<AtomicU8>,
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
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (m, s, l, target) = (mode.clone(), stop.clone(), live.clone(), target.to_owned());
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
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                }
            }
        });
        TcpProxy {
            port,
            mode,
            stop,
            live,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
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

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
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
