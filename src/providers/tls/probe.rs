//! What a TLS connection negotiated, for `test`, and a bare handshake of the agent's own
//! for drivers that do not show their session or hide why it failed.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::failure::{explain_failure, explain_text};
use super::settings::TlsSettings;

/// What a connection negotiated, for `test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsStatus {
    /// Not encrypted.
    Plaintext,
    /// Encrypted; the protocol (e.g. "TLSv1.3") and cipher suite when known.
    Encrypted {
        protocol: String,
        cipher: Option<String>,
    },
    /// The provider cannot tell.
    Unknown,
}

impl TlsStatus {
    /// One line for `test`: protocol and whether the certificate was verified.
    pub fn describe(&self, settings: &TlsSettings) -> String {
        let origin = format!("mode {} from {}", settings.mode, settings.origin.describe());
        match self {
            TlsStatus::Plaintext => {
                format!("not encrypted ({origin}); passwords cross the network in the clear")
            }
            TlsStatus::Encrypted { protocol, cipher } => format!(
                "{protocol}{} ({origin}); {}",
                cipher
                    .as_ref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default(),
                settings.verification()
            ),
            TlsStatus::Unknown => format!("{origin}; the negotiated protocol is not known"),
        }
    }
}

/// Why [`probe`] got no TLS session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// No TCP connection (or no address): not a TLS matter.
    Connect(String),
    /// The handshake failed or went unanswered; explained in operator's words.
    Handshake(String),
}

/// Opens a TCP connection to a server that speaks TLS from the first byte (Redis on its
/// `tls-port`, MongoDB), completes a handshake with `settings`, and says what was
/// negotiated. Sends nothing but the handshake: for `test`, and to explain a driver's
/// failure that does not say whether the handshake was answered.
pub fn probe(
    host: &str,
    port: u16,
    settings: &TlsSettings,
    timeout: Duration,
) -> Result<TlsStatus, ProbeFailure> {
    let connect = |e: std::io::Error| ProbeFailure::Connect(e.to_string());
    let config = settings
        .client_config()
        .map_err(|e| ProbeFailure::Handshake(e.to_string()))?;
    let name = ServerName::try_from(host.to_owned()).map_err(|_| {
        ProbeFailure::Handshake(format!(
            "\"{host}\" is not a host name or IP address TLS can check"
        ))
    })?;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(connect)?
        .next()
        .ok_or_else(|| ProbeFailure::Connect(format!("{host} has no address")))?;
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
    tcp.set_read_timeout(Some(timeout)).map_err(connect)?;
    tcp.set_write_timeout(Some(timeout)).map_err(connect)?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| ProbeFailure::Handshake(e.to_string()))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            let timed_out = matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            );
            let explained = if timed_out {
                explain_text("TLS handshake timed out", host, settings.mode)
            } else {
                explain_failure(&e, host, settings.mode)
            };
            return Err(ProbeFailure::Handshake(explained.unwrap_or_else(|| {
                format!("TLS ({}) to {host} failed: {e}", settings.mode)
            })));
        }
    }
    let status = TlsStatus::Encrypted {
        protocol: conn
            .protocol_version()
            .map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default(),
        cipher: conn
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str().map(str::to_owned)),
    };
    conn.send_close_notify();
    let _ = conn.complete_io(&mut tcp);
    let _ = tcp.flush();
    let mut sink = [0u8; 1];
    let _ = tcp.read(&mut sink);
    Ok(status)
}
