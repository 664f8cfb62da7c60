//! The packets of the connection phase and the generic answers, as data: the server's
//! greeting, the SSLRequest and handshake response the client writes, and the ERR, OK and
//! EOF packets it reads.

use super::error::Error;
use crate::providers::mysql::auth::Plugin;
use crate::providers::mysql::wire::{Reader, put_lenenc_int};

/// Capability flags (the subset the agent uses or checks).
pub mod cap {
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

/// utf8mb4_general_ci, which every MySQL and MariaDB with utf8mb4 knows.
const UTF8MB4: u8 = 45;
const MAX_PACKET: u32 = 1 << 24;

/// What the server's greeting says (protocol version 10).
pub struct Greeting {
    pub capabilities: u32,
    pub nonce: Vec<u8>,
    pub plugin: Plugin,
}

/// The server's first packet.
pub fn read_greeting(packet: &[u8]) -> Result<Greeting, Error> {
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
fn client_flags(greeting: &Greeting, with_database: bool, tls: bool) -> u32 {
    let mut flags = cap::LONG_PASSWORD
        | cap::LONG_FLAG
        | cap::PROTOCOL_41
        | cap::TRANSACTIONS
        | cap::SECURE_CONNECTION
        | cap::MULTI_RESULTS
        | cap::PLUGIN_AUTH
        | cap::PLUGIN_AUTH_LENENC_CLIENT_DATA;
    if with_database {
        flags |= cap::CONNECT_WITH_DB;
    }
    if tls {
        flags |= cap::SSL;
    }
    flags & greeting.capabilities
}

/// The SSLRequest: the first 32 bytes of a handshake response, with CLIENT_SSL.
pub fn ssl_request(greeting: &Greeting, with_database: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&client_flags(greeting, with_database, true).to_le_bytes());
    out.extend_from_slice(&MAX_PACKET.to_le_bytes());
    out.push(UTF8MB4);
    out.extend_from_slice(&[0; 23]);
    out
}

/// The login: `user`, the first authentication answer for `plugin`, and `database`.
pub fn handshake_response(
    greeting: &Greeting,
    user: &str,
    database: Option<&str>,
    tls: bool,
    plugin: &Plugin,
    auth_data: &[u8],
) -> Vec<u8> {
    let flags = client_flags(greeting, database.is_some(), tls);
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&MAX_PACKET.to_le_bytes());
    out.push(UTF8MB4);
    out.extend_from_slice(&[0; 23]);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    if flags & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        put_lenenc_int(&mut out, auth_data.len() as u64);
    } else {
        out.push(auth_data.len() as u8);
    }
    out.extend_from_slice(auth_data);
    if let Some(db) = database.filter(|_| flags & cap::CONNECT_WITH_DB != 0) {
        out.extend_from_slice(db.as_bytes());
        out.push(0);
    }
    if flags & cap::PLUGIN_AUTH != 0 {
        out.extend_from_slice(plugin.name().as_bytes());
        out.push(0);
    }
    out
}

/// An ERR packet as the error it reports.
pub fn server_error(packet: &[u8]) -> Error {
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
pub fn ok_status(packet: &[u8]) -> Result<u16, Error> {
    let mut r = Reader::new(&packet[1..]);
    let _affected = r.lenenc_int()?;
    let _last_id = r.lenenc_int()?;
    Ok(r.u16()?)
}

/// The EOF packet of the pre-5.7 framing: 0xFE and at most 8 more bytes.
pub fn is_eof(packet: &[u8]) -> bool {
    packet.first() == Some(&0xFE) && packet.len() < 9
}
