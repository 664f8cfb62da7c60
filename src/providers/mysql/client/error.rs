//! Why a connection or a query failed, as the client tells it.

use std::fmt;
use std::io;
use std::time::Duration;

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
