//! Fake database servers that play an active man-in-the-middle: they accept the agent's
//! connection where the real server should be, downgrade it (no TLS, or TLS with a
//! certificate of their own) and ask for the password in a form that would reveal it.
//! Each records every byte the client sent (decrypted, when TLS was up), so a test can
//! show what reached the attacker, and what did not.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::private_ca::{Issued, PrivateCa};

/// What the fake does once the client connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTrick {
    /// Answers the SSLRequest with 'N', then asks for the password in clear.
    NoTlsThenCleartext,
    /// Answers 'N', then asks for an MD5 hash of the password.
    NoTlsThenMd5,
    /// Answers 'S' with a certificate of its own, then asks for the password in clear.
    OwnTlsThenCleartext,
    /// Answers 'S' with a certificate of its own, then asks for an MD5 hash.
    OwnTlsThenMd5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MyTrick {
    /// Offers no TLS (so `prefer` goes on in plaintext) and answers the login with
    /// caching_sha2's "perform full authentication".
    NoTlsThenFullAuth,
    /// Offers TLS with a certificate of its own, then asks for full authentication.
    OwnTlsThenFullAuth,
    /// Offers no TLS, then switches the login to mysql_clear_password.
    NoTlsThenClearPassword,
    /// Offers TLS with a certificate of its own, then switches to mysql_clear_password.
    OwnTlsThenClearPassword,
    /// Offers no TLS, then switches to sha256_password.
    NoTlsThenSha256,
}

/// A fake server on 127.0.0.1; what clients sent, connection by connection.
pub struct Mitm {
    pub port: u16,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Connections whose handler still runs (reads until the client goes away).
    active: Arc<AtomicUsize>,
    /// Kept for the life of the server: its certificate lives there.
    _ca: Option<PrivateCa>,
}

impl Mitm {
    /// Everything the clients sent, all connections together, once every connection has
    /// ended (the client hung up, or stayed silent for the fake's read timeout).
    pub fn received(&self) -> Vec<u8> {
        super::wait_until(
            Duration::from_secs(15),
            "the fake server's connections to end",
            || self.active.load(Ordering::SeqCst) == 0,
        );
        self.received.lock().unwrap().concat()
    }

    /// How many connections reached the fake.
    pub fn connections(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn received_contains(&self, needle: &str) -> bool {
        let hay = self.received();
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    pub fn postgres(trick: PgTrick) -> Mitm {
        let tls = matches!(trick, PgTrick::OwnTlsThenCleartext | PgTrick::OwnTlsThenMd5);
        Mitm::serve(tls, move |stream, tls_config| {
            fake_postgres(stream, trick, tls_config)
        })
    }

    pub fn mysql(trick: MyTrick) -> Mitm {
        let tls = matches!(
            trick,
            MyTrick::OwnTlsThenFullAuth | MyTrick::OwnTlsThenClearPassword
        );
        Mitm::serve(tls, move |stream, tls_config| {
            fake_mysql(stream, trick, tls_config)
        })
    }

    fn serve(
        tls: bool,
        handle: impl Fn(Recorded<'_, TcpStream>, Option<Arc<rustls::ServerConfig>>)
        + Send
        + Sync
        + 'static,
    ) -> Mitm {
        let (ca, config) = if tls {
            let ca = PrivateCa::new("attacker CA");
            let issued = ca.issue("mitm", "IP:127.0.0.1,DNS:localhost");
            let config = server_config(&issued);
            (Some(ca), Some(config))
        } else {
            (None, None)
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let active = Arc::new(AtomicUsize::new(0));
        let (rec, live) = (received.clone(), active.clone());
        let handle = Arc::new(handle);
        thread::Builder::new()
            .name("mitm-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
                    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
                    let index = {
                        let mut r = rec.lock().unwrap();
                        r.push(Vec::new());
                        r.len() - 1
                    };
                    let record = Recording {
                        all: rec.clone(),
                        index,
                    };
                    let (handle, config, live) = (handle.clone(), config.clone(), live.clone());
                    live.fetch_add(1, Ordering::SeqCst);
                    thread::Builder::new()
                        .name("mitm-conn".into())
                        .spawn(move || {
                            let recorded = Recorded {
                                inner: conn,
                                record: &record,
                            };
                            handle(recorded, config);
                            live.fetch_sub(1, Ordering::SeqCst);
                        })
                        .unwrap();
                }
            })
            .unwrap();
        Mitm {
            port,
            received,
            active,
            _ca: ca,
        }
    }
}

/// One connection's share of what clients sent.
pub struct Recording {
    all: Arc<Mutex<Vec<Vec<u8>>>>,
    index: usize,
}

impl Recording {
    fn add(&self, bytes: &[u8]) {
        self.all.lock().unwrap()[self.index].extend_from_slice(bytes);
    }
}

fn server_config(issued: &Issued) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&issued.cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&issued.key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

/// A stream that records what it reads.
struct Recorded<'a, S> {
    inner: S,
    record: &'a Recording,
}

impl<'a> Recorded<'a, TcpStream> {
    /// The same connection in TLS with `config` (the handshake happens on first use), still
    /// recording what it reads.
    fn into_tls(
        self,
        config: Arc<rustls::ServerConfig>,
    ) -> Option<Recorded<'a, rustls::StreamOwned<rustls::ServerConnection, TcpStream>>> {
        let session = rustls::ServerConnection::new(config).ok()?;
        Some(Recorded {
            inner: rustls::StreamOwned::new(session, self.inner),
            record: self.record,
        })
    }
}

impl<S: Read> Read for Recorded<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.record.add(&buf[..n]);
        Ok(n)
    }
}

impl<S: Write> Write for Recorded<'_, S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads until the client stops sending (closes, or is silent for a moment), recording.
fn drain(stream: &mut impl Read) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

// ---- PostgreSQL ----

fn read_pg_startup(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let len = u32::from_be_bytes(len) as usize;
    let mut body = vec![0u8; len.checked_sub(4)?];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn pg_auth_request(code: u32, extra: &[u8]) -> Vec<u8> {
    let mut m = vec![b'R'];
    m.extend_from_slice(&((8 + extra.len()) as u32).to_be_bytes());
    m.extend_from_slice(&code.to_be_bytes());
    m.extend_from_slice(extra);
    m
}

fn fake_postgres(
    mut plain: Recorded<'_, TcpStream>,
    trick: PgTrick,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    // SSLRequest (the agent sends one in every mode but disable) or a startup message.
    let Some(first) = read_pg_startup(&mut plain) else {
        return;
    };
    let asked_for_tls = first == [0x04, 0xd2, 0x16, 0x2f];
    let request = match trick {
        PgTrick::NoTlsThenCleartext | PgTrick::OwnTlsThenCleartext => pg_auth_request(3, b""),
        PgTrick::NoTlsThenMd5 | PgTrick::OwnTlsThenMd5 => pg_auth_request(5, b"salt"),
    };
    match (asked_for_tls, tls) {
        (true, Some(config)) => {
            if plain.write_all(b"S").is_err() {
                return;
            }
            let Some(mut tls) = plain.into_tls(config) else {
                return;
            };
            if read_pg_startup(&mut tls).is_none() {
                return;
            }
            let _ = tls.write_all(&request);
            drain(&mut tls);
        }
        (true, None) => {
            if plain.write_all(b"N").is_err() || read_pg_startup(&mut plain).is_none() {
                return;
            }
            let _ = plain.write_all(&request);
            drain(&mut plain);
        }
        (false, _) => {
            let _ = plain.write_all(&request);
            drain(&mut plain);
        }
    }
}

/// Whether the client sent a PasswordMessage ('p') after the startup: the password in
/// clear or its MD5 hash.
pub fn pg_sent_password_message(received: &[u8]) -> bool {
    // The recording holds the SSLRequest (8 bytes), the startup message (length-prefixed,
    // untagged) and then tagged messages; an untagged prefix is skipped by its length.
    let mut rest = received;
    let mut untagged = 2;
    while rest.len() >= 5 {
        if untagged > 0 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len < 8 || len > rest.len() {
                return false;
            }
            let is_ssl_request = len == 8 && rest[4..8] == [0x04, 0xd2, 0x16, 0x2f];
            rest = &rest[len..];
            untagged -= 1;
            if !is_ssl_request {
                untagged = 0;
            }
            continue;
        }
        if rest[0] == b'p' {
            return true;
        }
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len < 4 || len + 1 > rest.len() {
            return false;
        }
        rest = &rest[len + 1..];
    }
    false
}

// ---- MySQL ----

const CAP_PROTOCOL_41: u32 = 1 << 9;
const CAP_SSL: u32 = 1 << 11;
const CAP_SECURE_CONNECTION: u32 = 1 << 15;
const CAP_PLUGIN_AUTH: u32 = 1 << 19;
const CAP_PLUGIN_AUTH_LENENC: u32 = 1 << 21;

fn my_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut p = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
    p.extend_from_slice(payload);
    p
}

fn read_my_packet(s: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((h[3], body))
}

fn greeting(tls: bool) -> Vec<u8> {
    let mut caps =
        CAP_PROTOCOL_41 | CAP_SECURE_CONNECTION | CAP_PLUGIN_AUTH | CAP_PLUGIN_AUTH_LENENC | 1;
    if tls {
        caps |= CAP_SSL;
    }
    let mut g = vec![10];
    g.extend_from_slice(b"8.4.0-fake\0");
    g.extend_from_slice(&7u32.to_le_bytes());
    g.extend_from_slice(b"abcdefgh");
    g.push(0);
    g.extend_from_slice(&(caps as u16).to_le_bytes());
    g.push(45);
    g.extend_from_slice(&2u16.to_le_bytes());
    g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    g.push(21);
    g.extend_from_slice(&[0; 10]);
    g.extend_from_slice(b"ijklmnopqrst\0");
    g.extend_from_slice(b"caching_sha2_password\0");
    g
}

fn fake_mysql(
    mut plain: Recorded<'_, TcpStream>,
    trick: MyTrick,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    if plain
        .write_all(&my_packet(0, &greeting(tls.is_some())))
        .is_err()
    {
        return;
    }
    let Some((seq, first)) = read_my_packet(&mut plain) else {
        return;
    };
    let client_caps = first
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let answer = match trick {
        MyTrick::NoTlsThenFullAuth | MyTrick::OwnTlsThenFullAuth => vec![0x01, 0x04],
        MyTrick::NoTlsThenClearPassword | MyTrick::OwnTlsThenClearPassword => {
            b"\xfemysql_clear_password\0".to_vec()
        }
        MyTrick::NoTlsThenSha256 => b"\xfesha256_password\0abcdefghijklmnopqrst\0".to_vec(),
    };
    match (client_caps & CAP_SSL != 0, tls) {
        (true, Some(config)) => {
            let Some(mut tls) = plain.into_tls(config) else {
                return;
            };
            let Some((seq, _response)) = read_my_packet(&mut tls) else {
                return;
            };
            let _ = tls.write_all(&my_packet(seq.wrapping_add(1), &answer));
            drain(&mut tls);
        }
        _ => {
            let _ = plain.write_all(&my_packet(seq.wrapping_add(1), &answer));
            drain(&mut plain);
        }
    }
}

/// The payloads of the MySQL packets in `received` (plaintext recordings only).
pub fn my_payloads(received: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = received;
    while rest.len() >= 4 {
        let len = usize::from(rest[0]) | usize::from(rest[1]) << 8 | usize::from(rest[2]) << 16;
        if rest.len() < 4 + len {
            break;
        }
        out.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    out
}
