//! A small synchronous MySQL/MariaDB client: connect (TCP with timeouts, or the server's
//! Unix socket), upgrade to TLS with the agent's own rustls configuration, authenticate,
//! and run text-protocol queries. The agent's own rather than the `mysql` crate's because
//! of who gets the password: that crate trusts Mozilla's roots beside a CA file, sends the
//! clear password over TLS whatever the certificate check said, and over plaintext asks
//! the server for an RSA key to encrypt the password to. Here an answer that reveals the
//! password goes only to a server whose certificate was verified, or over the Unix socket,
//! and the server's RSA key is never requested.
//!
//! Every read and write has the socket's timeout; nothing here keeps the password after
//! authentication.

use std::fmt;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::auth::{self, Answer, Plugin};
use super::wire::{Framed, Reader, Transport, put_lenenc_int};
use crate::providers::tls::{TlsMode, TlsSettings};
use crate::secret::Secret;

/// Capability flags (the subset the agent uses or checks).
mod cap {
    pub const LONG_PASSWORD: u32 = 1;
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const SSL: u32 = 1 << 11;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
}

/// `SERVER_MORE_RESULTS_EXISTS` in an OK or EOF packet's status.
const MORE_RESULTS: u16 = 0x0008;
/// utf8mb4_general_ci, which every MySQL and MariaDB with utf8mb4 knows.
const UTF8MB4: u8 = 45;
const MAX_PACKET: u32 = 1 << 24;
const COM_QUIT: u8 = 0x01;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0E;

/// Where to connect.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    Tcp {
        host: &'a str,
        port: u16,
    },
    /// The server's Unix socket: never leaves the machine, so it needs no TLS.
    Socket(&'a str),
}

/// One login.
pub struct ConnectOptions<'a> {
    pub endpoint: Endpoint<'a>,
    pub user: &'a str,
    pub password: &'a Secret,
    pub database: Option<&'a str>,
    /// Ignored for a Unix socket.
    pub tls: &'a TlsSettings,
    pub connect_timeout: Duration,
    /// Each read and write.
    pub io_timeout: Duration,
}

/// Why a connection or a query failed.
#[derive(Debug)]
pub enum Error {
    /// The server's ERR packet.
    Server {
        code: u16,
        state: String,
        message: String,
    },
    /// No connection within the connect timeout.
    ConnectTimeout(Duration),
    /// No connection: refused, unreachable, no address.
    Connect(io::Error),
    /// The TLS handshake failed or was not answered.
    Tls(io::Error),
    /// TLS is demanded and the server does not offer it.
    NoTls,
    /// The server asked for something that reveals the password, on a connection that did
    /// not verify the server. Nothing was sent.
    Refused {
        request: &'static str,
        over_tls: bool,
    },
    /// An authentication method the agent does not speak.
    UnsupportedAuth(String),
    /// Reading or writing failed after connecting (a timeout shows as one).
    Io(io::Error),
    /// The server's bytes are not the protocol.
    Protocol(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Server {
                code,
                state,
                message,
            } => write!(f, "{message} (error {code}, SQLSTATE {state})"),
            Error::ConnectTimeout(t) => {
                write!(f, "no connection within {} s", t.as_secs_f32())
            }
            Error::Connect(e) => write!(f, "cannot connect: {e}"),
            Error::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Error::NoTls => f.write_str("the server does not support TLS"),
            Error::Refused { request, .. } => write!(
                f,
                "refused to send {request} to a server that was not verified"
            ),
            Error::UnsupportedAuth(why) => f.write_str(why),
            Error::Io(e) => write!(f, "{e}"),
            Error::Protocol(what) => write!(f, "the server broke the protocol: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) | Error::Tls(e) | Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// One row of a text result set: each column's bytes, `None` for SQL NULL.
pub type Row = Vec<Option<Vec<u8>>>;

/// A column value as a Rust type.
pub trait FromValue: Sized {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String>;
}

impl FromValue for Vec<u8> {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
        value.ok_or_else(|| "NULL where a value was expected".to_owned())
    }
}

impl FromValue for String {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
        String::from_utf8(Vec::from_value(value)?).map_err(|_| "a value is not UTF-8".to_owned())
    }
}

/// Unsigned integers: ports, round counts.
macro_rules! unsigned_from_value {
    ($($t:ty),+) => {$(
        impl FromValue for $t {
            fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
                let text = String::from_value(value)?;
                text.trim().parse().map_err(|_| {
                    format!("\"{text}\" is not a whole number up to {}", <$t>::MAX)
                })
            }
        }
    )+};
}

unsigned_from_value!(u16, u32);

/// A comparison's result: MySQL and MariaDB return `0` or `1`.
impl FromValue for bool {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
        match String::from_value(value)?.trim() {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(format!("\"{other}\" is not a truth value")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
        value.map(|v| T::from_value(Some(v))).transpose()
    }
}

/// A row as a Rust type: one value, or a tuple of them.
pub trait FromRow: Sized {
    fn from_row(row: Row) -> Result<Self, String>;
}

fn column<T: FromValue>(row: &mut std::vec::IntoIter<Option<Vec<u8>>>) -> Result<T, String> {
    T::from_value(row.next().ok_or("fewer columns than expected")?)
}

impl FromRow for String {
    fn from_row(row: Row) -> Result<Self, String> {
        column(&mut row.into_iter())
    }
}

macro_rules! tuple_from_row {
    ($($t:ident),+) => {
        impl<$($t: FromValue),+> FromRow for ($($t,)+) {
            fn from_row(row: Row) -> Result<Self, String> {
                let mut it = row.into_iter();
                Ok(($(column::<$t>(&mut it)?,)+))
            }
        }
    };
}
tuple_from_row!(A);
tuple_from_row!(A, B);
tuple_from_row!(A, B, C);
tuple_from_row!(A, B, C, D);

/// What TLS a session negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSession {
    pub protocol: String,
    pub cipher: Option<String>,
}

/// An authenticated session.
pub struct Conn {
    framed: Framed,
    tls: Option<TlsSession>,
    /// Whether the login went through (only then is there a session to quit).
    authenticated: bool,
}

/// What the server's greeting says (protocol version 10).
struct Greeting {
    capabilities: u32,
    nonce: Vec<u8>,
    plugin: Plugin,
}

impl Conn {
    /// Connects, upgrades to TLS as the settings say, and logs in.
    pub fn connect(opts: &ConnectOptions<'_>) -> Result<Conn, Error> {
        let (transport, host) = match opts.endpoint {
            Endpoint::Tcp { host, port } => (
                Transport::Tcp(tcp(host, port, opts.connect_timeout, opts.io_timeout)?),
                Some(host),
            ),
            Endpoint::Socket(path) => {
                let s = UnixStream::connect(path).map_err(Error::Connect)?;
                s.set_read_timeout(Some(opts.io_timeout))
                    .map_err(Error::Connect)?;
                s.set_write_timeout(Some(opts.io_timeout))
                    .map_err(Error::Connect)?;
                (Transport::Unix(s), None)
            }
        };
        let mut framed = Framed::new(transport);
        let greeting = read_greeting(&framed.read_packet()?)?;
        let mut tls = None;
        let mut secure = host.is_none();
        if let Some(host) = host.filter(|_| opts.tls.mode != TlsMode::Disable) {
            if greeting.capabilities & cap::SSL != 0 {
                let (upgraded, session) = start_tls(framed, &greeting, opts, host)?;
                framed = upgraded;
                tls = Some(session);
                secure = opts.tls.authenticates_server();
            } else if opts.tls.mode != TlsMode::Prefer {
                return Err(Error::NoTls);
            }
        }
        let mut conn = Conn {
            framed,
            tls,
            authenticated: false,
        };
        conn.authenticate(&greeting, opts, secure)?;
        conn.authenticated = true;
        Ok(conn)
    }

    /// The TLS session, when the connection has one.
    pub fn tls(&self) -> Option<&TlsSession> {
        self.tls.as_ref()
    }

    fn authenticate(
        &mut self,
        greeting: &Greeting,
        opts: &ConnectOptions<'_>,
        secure: bool,
    ) -> Result<(), Error> {
        let over_tls = self.tls.is_some();
        let refuse = |request| Error::Refused { request, over_tls };
        // The first answer goes with the login; a plugin that would want the password
        // itself is answered as mysql_native_password, and the server switches if the
        // account needs another plugin.
        let mut plugin = match greeting.plugin {
            Plugin::CachingSha2 => Plugin::CachingSha2,
            _ => Plugin::Native,
        };
        let first = match auth::answer(&plugin, opts.password, &greeting.nonce) {
            Answer::Proof(data) => data,
            _ => unreachable!("native and caching_sha2 answer with a proof"),
        };
        let response = handshake_response(greeting, opts, self.tls.is_some(), &plugin, &first);
        self.framed.write_packet(&response)?;
        loop {
            let packet = self.framed.read_packet()?;
            match packet.first() {
                Some(0x00) => return Ok(()),
                Some(0xFF) => return Err(server_error(&packet)),
                // AuthSwitchRequest: another plugin, with its own challenge.
                Some(0xFE) => {
                    if packet.len() == 1 {
                        return Err(Error::UnsupportedAuth(
                            "the server asked for the pre-4.1 mysql_old_password exchange, which the agent refuses (its hash is broken); give the account a current plugin".into(),
                        ));
                    }
                    let mut r = Reader::new(&packet[1..]);
                    plugin = Plugin::from_name(r.nul_terminated());
                    let nonce = r.rest();
                    let data = match auth::answer(&plugin, opts.password, nonce) {
                        Answer::Proof(data) => data,
                        Answer::Password(_) if secure => auth::cleartext(opts.password),
                        Answer::Password(request) => return Err(refuse(request)),
                        Answer::Unsupported(why) => return Err(Error::UnsupportedAuth(why)),
                    };
                    self.framed.write_packet(&data)?;
                }
                // AuthMoreData: caching_sha2's verdict on the fast path.
                Some(0x01) if plugin == Plugin::CachingSha2 => match packet.get(1) {
                    // Fast authentication succeeded; the OK packet follows.
                    Some(0x03) => {}
                    // Full authentication: the password itself, never an RSA key request.
                    Some(0x04) if secure => {
                        self.framed.write_packet(&auth::cleartext(opts.password))?;
                    }
                    Some(0x04) => return Err(refuse(auth::FULL_AUTHENTICATION)),
                    _ => {
                        return Err(Error::Protocol(
                            "an unknown caching_sha2_password message".into(),
                        ));
                    }
                },
                _ => {
                    return Err(Error::Protocol(format!(
                        "an unexpected packet during authentication with {}",
                        plugin.name()
                    )));
                }
            }
        }
    }

    /// One round trip (COM_PING): shows that the server kept the session after the login
    /// (a failing `init_connect` ends it right after authentication).
    pub fn ping(&mut self) -> Result<(), Error> {
        self.framed.reset_sequence();
        self.framed.write_packet(&[COM_PING])?;
        let packet = self.framed.read_packet()?;
        match packet.first() {
            Some(0x00) => Ok(()),
            Some(0xFF) => Err(server_error(&packet)),
            _ => Err(Error::Protocol("an unexpected answer to a ping".into())),
        }
    }

    /// Runs a statement and discards any rows.
    pub fn query_drop(&mut self, sql: &str) -> Result<(), Error> {
        self.query_rows(sql).map(drop)
    }

    /// Runs a query and converts each row.
    pub fn query<T: FromRow>(&mut self, sql: &str) -> Result<Vec<T>, Error> {
        self.query_rows(sql)?
            .into_iter()
            .map(|row| T::from_row(row).map_err(Error::Protocol))
            .collect()
    }

    /// The first row of a query, converted.
    pub fn query_first<T: FromRow>(&mut self, sql: &str) -> Result<Option<T>, Error> {
        self.query_rows(sql)?
            .into_iter()
            .next()
            .map(|row| T::from_row(row).map_err(Error::Protocol))
            .transpose()
    }

    /// COM_QUERY in the text protocol: the rows of the first result set; any further
    /// result sets are read and dropped.
    fn query_rows(&mut self, sql: &str) -> Result<Vec<Row>, Error> {
        self.framed.reset_sequence();
        let mut command = Vec::with_capacity(sql.len() + 1);
        command.push(COM_QUERY);
        command.extend_from_slice(sql.as_bytes());
        self.framed.write_packet(&command)?;
        let mut first = None;
        loop {
            let (rows, more) = self.read_result()?;
            first.get_or_insert(rows);
            if !more {
                return Ok(first.unwrap_or_default());
            }
        }
    }

    /// One result: an OK packet, or columns and rows; and whether another result follows.
    fn read_result(&mut self) -> Result<(Vec<Row>, bool), Error> {
        let packet = self.framed.read_packet()?;
        let columns = match packet.first() {
            Some(0x00) => return Ok((Vec::new(), ok_status(&packet)? & MORE_RESULTS != 0)),
            Some(0xFF) => return Err(server_error(&packet)),
            Some(0xFB) => {
                return Err(Error::Protocol(
                    "the server asked for a local file (LOAD DATA LOCAL), which the agent never sends".into(),
                ));
            }
            _ => Reader::new(&packet)
                .lenenc_int()?
                .ok_or_else(|| Error::Protocol("a NULL column count".into()))?,
        };
        // Column definitions, then the EOF that ends them (CLIENT_DEPRECATE_EOF is off).
        loop {
            let p = self.framed.read_packet()?;
            if is_eof(&p) {
                break;
            }
            if p.first() == Some(&0xFF) {
                return Err(server_error(&p));
            }
        }
        let columns =
            usize::try_from(columns).map_err(|_| Error::Protocol("too many columns".into()))?;
        let mut rows = Vec::new();
        loop {
            let p = self.framed.read_packet()?;
            if is_eof(&p) {
                let mut r = Reader::new(&p[1..]);
                let _warnings = r.u16().unwrap_or(0);
                let status = r.u16().unwrap_or(0);
                return Ok((rows, status & MORE_RESULTS != 0));
            }
            if p.first() == Some(&0xFF) {
                return Err(server_error(&p));
            }
            let mut r = Reader::new(&p);
            let mut row = Vec::with_capacity(columns);
            for _ in 0..columns {
                row.push(r.lenenc_bytes()?.map(<[u8]>::to_vec));
            }
            rows.push(row);
        }
    }
}

impl Drop for Conn {
    /// Says goodbye (COM_QUIT, and TLS's close_notify) so the server logs no aborted
    /// connection; bounded by the write timeout, errors ignored.
    fn drop(&mut self) {
        if !self.authenticated {
            return;
        }
        self.framed.reset_sequence();
        let _ = self.framed.write_packet(&[COM_QUIT]);
        if let Transport::Tls(s) = &mut self.framed.transport {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

/// TCP to the first address of `host` that answers within the timeout, with every later
/// wait bounded.
fn tcp(host: &str, port: u16, connect: Duration, io: Duration) -> Result<TcpStream, Error> {
    let addrs = (host, port).to_socket_addrs().map_err(Error::Connect)?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, connect) {
            Ok(s) => {
                s.set_read_timeout(Some(io)).map_err(Error::Connect)?;
                s.set_write_timeout(Some(io)).map_err(Error::Connect)?;
                s.set_nodelay(true).map_err(Error::Connect)?;
                let sock = socket2::SockRef::from(&s);
                sock.set_tcp_keepalive(
                    &socket2::TcpKeepalive::new().with_time(Duration::from_secs(10)),
                )
                .map_err(Error::Connect)?;
                sock.set_tcp_user_timeout(Some(io))
                    .map_err(Error::Connect)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = Some(Error::ConnectTimeout(connect))
            }
            Err(e) => last = Some(Error::Connect(e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::Connect(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no address"),
        ))
    }))
}

fn read_greeting(packet: &[u8]) -> Result<Greeting, Error> {
    if packet.first() == Some(&0xFF) {
        return Err(server_error(packet));
    }
    let bad = |what: &str| Error::Protocol(format!("a malformed greeting ({what})"));
    let mut r = Reader::new(packet);
    let version = r.u8()?;
    if version != 10 {
        return Err(bad(&format!("protocol version {version}")));
    }
    let _server_version = r.nul_terminated();
    let _connection_id = r.u32()?;
    let mut nonce = r.take(8)?.to_vec();
    let _filler = r.u8()?;
    let mut capabilities = u32::from(r.u16()?);
    let mut plugin = Plugin::Native;
    if !r.is_empty() {
        let _charset = r.u8()?;
        let _status = r.u16()?;
        capabilities |= u32::from(r.u16()?) << 16;
        let data_len = usize::from(r.u8()?);
        let _reserved = r.take(10)?;
        if capabilities & cap::SECURE_CONNECTION != 0 {
            let n = data_len.saturating_sub(8).max(13);
            let part2 = r.take(n.min(r.len()))?;
            nonce.extend_from_slice(part2.strip_suffix(&[0]).unwrap_or(part2));
        }
        if capabilities & cap::PLUGIN_AUTH != 0 {
            plugin = Plugin::from_name(r.nul_terminated());
        }
    }
    if capabilities & cap::PROTOCOL_41 == 0 || capabilities & cap::SECURE_CONNECTION == 0 {
        return Err(Error::UnsupportedAuth(
            "the server speaks only the pre-4.1 protocol, which the agent does not".into(),
        ));
    }
    Ok(Greeting {
        capabilities,
        nonce,
        plugin,
    })
}

/// The capabilities this client asks for (only those the server has).
fn client_flags(greeting: &Greeting, opts: &ConnectOptions<'_>, tls: bool) -> u32 {
    let mut flags = cap::LONG_PASSWORD
        | cap::LONG_FLAG
        | cap::PROTOCOL_41
        | cap::TRANSACTIONS
        | cap::SECURE_CONNECTION
        | cap::MULTI_RESULTS
        | cap::PLUGIN_AUTH
        | cap::PLUGIN_AUTH_LENENC_CLIENT_DATA;
    if opts.database.is_some() {
        flags |= cap::CONNECT_WITH_DB;
    }
    if tls {
        flags |= cap::SSL;
    }
    flags & greeting.capabilities
}

/// The SSLRequest: the first 32 bytes of a handshake response, with CLIENT_SSL.
fn ssl_request(greeting: &Greeting, opts: &ConnectOptions<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&client_flags(greeting, opts, true).to_le_bytes());
    out.extend_from_slice(&MAX_PACKET.to_le_bytes());
    out.push(UTF8MB4);
    out.extend_from_slice(&[0; 23]);
    out
}

fn handshake_response(
    greeting: &Greeting,
    opts: &ConnectOptions<'_>,
    tls: bool,
    plugin: &Plugin,
    auth_data: &[u8],
) -> Vec<u8> {
    let flags = client_flags(greeting, opts, tls);
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&MAX_PACKET.to_le_bytes());
    out.push(UTF8MB4);
    out.extend_from_slice(&[0; 23]);
    out.extend_from_slice(opts.user.as_bytes());
    out.push(0);
    if flags & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        put_lenenc_int(&mut out, auth_data.len() as u64);
    } else {
        out.push(auth_data.len() as u8);
    }
    out.extend_from_slice(auth_data);
    if let Some(db) = opts.database.filter(|_| flags & cap::CONNECT_WITH_DB != 0) {
        out.extend_from_slice(db.as_bytes());
        out.push(0);
    }
    if flags & cap::PLUGIN_AUTH != 0 {
        out.extend_from_slice(plugin.name().as_bytes());
        out.push(0);
    }
    out
}

/// Sends the SSLRequest and completes a TLS handshake with the agent's configuration for
/// the mode, before anything else crosses the wire.
fn start_tls(
    mut framed: Framed,
    greeting: &Greeting,
    opts: &ConnectOptions<'_>,
    host: &str,
) -> Result<(Framed, TlsSession), Error> {
    framed.write_packet(&ssl_request(greeting, opts))?;
    let config = opts
        .tls
        .client_config()
        .map_err(|e| Error::Tls(io::Error::other(e.to_string())))?;
    let name = ServerName::try_from(host.to_owned()).map_err(|_| {
        Error::Tls(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("\"{host}\" is not a host name or IP address TLS can check"),
        ))
    })?;
    let conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| Error::Tls(io::Error::other(e)))?;
    let (transport, seq) = framed.into_parts();
    let Transport::Tcp(tcp) = transport else {
        unreachable!("TLS starts only on TCP")
    };
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(Error::Tls)?;
    }
    let session = TlsSession {
        protocol: match stream.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        },
        cipher: stream
            .conn
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str().map(str::to_owned)),
    };
    // The handshake response continues the sequence the SSLRequest began.
    let upgraded = Framed::with_sequence(Transport::Tls(Box::new(stream)), seq);
    Ok((upgraded, session))
}

fn server_error(packet: &[u8]) -> Error {
    let mut r = Reader::new(packet.get(1..).unwrap_or_default());
    let code = r.u16().unwrap_or(0);
    let rest = r.rest();
    let (state, message) = match rest.strip_prefix(b"#") {
        Some(tail) if tail.len() >= 5 => {
            (String::from_utf8_lossy(&tail[..5]).into_owned(), &tail[5..])
        }
        _ => ("HY000".to_owned(), rest),
    };
    Error::Server {
        code,
        state,
        message: String::from_utf8_lossy(message).into_owned(),
    }
}

/// The status flags of an OK packet.
fn ok_status(packet: &[u8]) -> Result<u16, Error> {
    let mut r = Reader::new(&packet[1..]);
    let _affected = r.lenenc_int()?;
    let _last_id = r.lenenc_int()?;
    Ok(r.u16()?)
}

/// The EOF packet of the pre-5.7 framing: 0xFE and at most 8 more bytes.
fn is_eof(packet: &[u8]) -> bool {
    packet.first() == Some(&0xFE) && packet.len() < 9
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A scripted server on a Unix socket of its own; `script` plays the server's side.
    fn serve(
        script: impl FnOnce(&mut Framed) + Send + 'static,
    ) -> (std::path::PathBuf, std::thread::JoinHandle<()>) {
        let dir = std::env::temp_dir().join(format!(
            "ska-mysql-client-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mysqld.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut framed = Framed::new(Transport::Unix(stream));
            script(&mut framed);
            let _ = std::fs::remove_dir_all(dir);
        });
        (path, handle)
    }

    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn greeting_packet(plugin: &str) -> Vec<u8> {
        let caps: u32 = cap::PROTOCOL_41
            | cap::SECURE_CONNECTION
            | cap::PLUGIN_AUTH
            | cap::PLUGIN_AUTH_LENENC_CLIENT_DATA
            | cap::CONNECT_WITH_DB
            | cap::LONG_PASSWORD;
        let mut g = vec![10];
        g.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
        g.extend_from_slice(&42u32.to_le_bytes());
        g.extend_from_slice(b"12345678");
        g.push(0);
        g.extend_from_slice(&(caps as u16).to_le_bytes());
        g.push(45);
        g.extend_from_slice(&2u16.to_le_bytes());
        g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        g.push(21);
        g.extend_from_slice(&[0; 10]);
        g.extend_from_slice(b"abcdefghijkl\0");
        g.extend_from_slice(plugin.as_bytes());
        g.push(0);
        g
    }

    fn ok_packet() -> Vec<u8> {
        vec![0x00, 0, 0, 2, 0, 0, 0]
    }

    fn options<'a>(
        path: &'a str,
        password: &'a Secret,
        tls: &'a TlsSettings,
    ) -> ConnectOptions<'a> {
        ConnectOptions {
            endpoint: Endpoint::Socket(path),
            user: "app",
            password,
            database: Some("shop"),
            tls,
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_greeting_gives_the_twenty_byte_nonce_and_the_default_plugin() {
        let g = read_greeting(&greeting_packet("mysql_native_password")).unwrap();
        assert_eq!(g.nonce, b"12345678abcdefghijkl");
        assert_eq!(g.plugin, Plugin::Native);
        assert!(g.capabilities & cap::SSL == 0);
        let e = read_greeting(&[
            0xFF, 0x10, 0x04, b'#', b'0', b'8', b'S', b'0', b'1', b'n', b'o',
        ])
        .err()
        .unwrap();
        assert!(matches!(e, Error::Server { code: 1040, .. }), "{e}");
    }

    #[test]
    fn login_response_carries_user_scramble_database_and_plugin() {
        let (path, server) = serve(|f| {
            f.write_packet(&greeting_packet("mysql_native_password"))
                .unwrap();
            let response = f.read_packet().unwrap();
            let mut r = Reader::new(&response[32..]);
            assert_eq!(r.nul_terminated(), b"app");
            let scramble = r.lenenc_bytes().unwrap().unwrap();
            assert_eq!(
                scramble,
                auth::scramble_native(b"12345678abcdefghijkl", b"pw").as_slice()
            );
            assert_eq!(r.nul_terminated(), b"shop");
            assert_eq!(r.nul_terminated(), b"mysql_native_password");
            f.write_packet(&ok_packet()).unwrap();
            // COM_QUERY with a result set: two columns, a row with a NULL.
            f.reset_sequence();
            let query = f.read_packet().unwrap();
            assert_eq!(query, b"\x03SELECT Host, plugin FROM t");
            f.write_packet(&[2]).unwrap();
            f.write_packet(b"\x03def").unwrap();
            f.write_packet(b"\x03def").unwrap();
            f.write_packet(&[0xFE, 0, 0, 2, 0]).unwrap();
            f.write_packet(b"\x01%\xFB").unwrap();
            f.write_packet(b"\x09localhost\x15mysql_native_password")
                .unwrap();
            f.write_packet(&[0xFE, 0, 0, 2, 0]).unwrap();
            // COM_QUIT on drop.
            f.reset_sequence();
            assert_eq!(f.read_packet().unwrap(), [COM_QUIT]);
        });
        let pw = Secret::new("pw");
        let tls = TlsSettings::default();
        let path = path.display().to_string();
        let mut conn = Conn::connect(&options(&path, &pw, &tls)).unwrap();
        assert_eq!(conn.tls(), None);
        let rows: Vec<(String, Option<String>)> = conn.query("SELECT Host, plugin FROM t").unwrap();
        assert_eq!(
            rows,
            vec![
                ("%".to_owned(), None),
                (
                    "localhost".to_owned(),
                    Some("mysql_native_password".to_owned())
                )
            ]
        );
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn over_the_unix_socket_full_authentication_gets_the_password() {
        let (path, server) = serve(|f| {
            f.write_packet(&greeting_packet("caching_sha2_password"))
                .unwrap();
            let _response = f.read_packet().unwrap();
            f.write_packet(&[0x01, 0x04]).unwrap();
            assert_eq!(f.read_packet().unwrap(), b"pw\0");
            f.write_packet(&[
                0xFF, 0x15, 0x04, b'#', b'2', b'8', b'0', b'0', b'0', b'n', b'o',
            ])
            .unwrap();
        });
        let pw = Secret::new("pw");
        let tls = TlsSettings::default();
        let path = path.display().to_string();
        let e = Conn::connect(&options(&path, &pw, &tls)).err().unwrap();
        assert!(matches!(e, Error::Server { code: 1045, .. }), "{e}");
        server.join().unwrap();
    }

    #[test]
    fn an_unknown_plugin_is_named_and_nothing_is_sent_for_it() {
        let (path, server) = serve(|f| {
            f.write_packet(&greeting_packet("mysql_native_password"))
                .unwrap();
            let _response = f.read_packet().unwrap();
            f.write_packet(b"\xfedialog\0\x04Password: ").unwrap();
            assert!(f.read_packet().is_err(), "the client answered the dialog");
        });
        let pw = Secret::new("pw");
        let tls = TlsSettings::default();
        let path = path.display().to_string();
        let e = Conn::connect(&options(&path, &pw, &tls)).err().unwrap();
        assert!(
            matches!(&e, Error::UnsupportedAuth(why) if why.contains("dialog")),
            "{e}"
        );
        server.join().unwrap();
    }
}
