//! How a control-plane call fails: [`ApiError`], classified ([`ErrorClass`]) so the
//! runtime knows whether to stop, wait for the lock, or retry, and worded with what to do
//! next; [`ClientSetupError`] for a client that cannot be set up at all.

use std::fmt;

use crate::tls_failure::TlsFailure;
use crate::trust::{self, TrustError};

/// What kind of failure an API error is, which decides what the runtime does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 403 or 404: the secret is gone or this machine lost access. Stop cleanly.
    Terminal,
    /// 409: another machine holds the agent lock for this secret.
    Locked,
    /// Transport failure, timeout, 5xx or 429: try again later.
    Retryable,
    /// 401 because this machine's clock is too far from the server's: retrying soon only
    /// earns more 401s (and an IP lock-out), so wait long and say to fix the clock.
    ClockSkew,
    /// Anything else (400, 401, unexpected answers).
    Other,
}

/// A failed control-plane call.
#[derive(Debug)]
pub enum ApiError {
    /// The server answered with a non-2xx status; `message` is its `{"error"}` text.
    Status {
        call: &'static str,
        secret_id: String,
        status: u16,
        message: String,
    },
    /// No answer: connection refused, DNS, TLS, timeout, dropped connection.
    Transport {
        call: &'static str,
        secret_id: String,
        url: String,
        /// Boxed: the transport error is large and errors travel by value.
        source: Box<ureq::Error>,
    },
    /// 401 with a server clock (its `Date` header) far from ours, or a message about the
    /// timestamp: the signed timestamp is outside the server's window.
    ClockSkew {
        call: &'static str,
        secret_id: String,
        /// Server time minus local time, when the server sent a `Date`.
        skew_secs: Option<i64>,
        message: String,
    },
    /// A 2xx answer whose body is not what the protocol says.
    BadResponse {
        call: &'static str,
        secret_id: String,
        reason: String,
    },
}

impl ApiError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ApiError::Status {
                status: 403 | 404, ..
            } => ErrorClass::Terminal,
            ApiError::Status { status: 409, .. } => ErrorClass::Locked,
            ApiError::Status {
                status: 429 | 500..=599,
                ..
            } => ErrorClass::Retryable,
            ApiError::Transport { .. } => ErrorClass::Retryable,
            ApiError::ClockSkew { .. } => ErrorClass::ClockSkew,
            ApiError::Status { .. } | ApiError::BadResponse { .. } => ErrorClass::Other,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::ClockSkew { .. } => Some(401),
            _ => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Status {
                call,
                secret_id,
                status,
                message,
            } => {
                write!(
                    f,
                    "{call} for secret {secret_id} failed: HTTP {status}: {message}"
                )?;
                match status {
                    401 => write!(
                        f,
                        " (check this machine's identity and clock; it is approved in the dashboard?)"
                    ),
                    403 => write!(f, " (this machine has no access grant to the secret)"),
                    404 => write!(f, " (the secret does not exist or was deleted)"),
                    409 => write!(
                        f,
                        " (another machine is the registered agent for this secret; stop it, or reset the agent lock in the dashboard)"
                    ),
                    _ => Ok(()),
                }
            }
            ApiError::Transport {
                call,
                secret_id,
                url,
                source,
            } => {
                // The reason is part of the message (retry warnings print only this
                // line); ureq's errors carry no secrets.
                write!(f, "{call} for secret {secret_id} could not reach {url}: ")?;
                match tls_failure(source, url) {
                    Some(reason) => write!(
                        f,
                        "TLS failed: {reason}; if a private CA or a TLS-inspecting proxy signs its certificate, set {} or SSL_CERT_FILE to that CA's PEM file",
                        trust::CA_FILE_VAR
                    ),
                    None => write!(f, "{source}"),
                }
            }
            ApiError::ClockSkew {
                call,
                secret_id,
                skew_secs,
                message,
            } => {
                write!(
                    f,
                    "{call} for secret {secret_id} failed: HTTP 401: {message}: "
                )?;
                match skew_secs {
                    Some(s) if *s > 0 => {
                        write!(f, "this machine's clock is {s} s behind the server's")?
                    }
                    Some(s) => write!(
                        f,
                        "this machine's clock is {} s ahead of the server's",
                        s.unsigned_abs()
                    )?,
                    None => write!(f, "the server refused the request's timestamp")?,
                }
                write!(
                    f,
                    ", so every signed request is refused; synchronise the clock with NTP (e.g. `timedatectl set-ntp true`, or chrony)"
                )
            }
            ApiError::BadResponse {
                call,
                secret_id,
                reason,
            } => {
                write!(
                    f,
                    "{call} for secret {secret_id}: unexpected answer from the server: {reason}"
                )
            }
        }
    }
}

/// Why a TLS handshake with the control plane at `url` failed, in words, or `None` for
/// failures that are not TLS.
fn tls_failure(e: &ureq::Error, url: &str) -> Option<String> {
    let failure = match e {
        ureq::Error::Rustls(t) => TlsFailure::of_rustls(t),
        ureq::Error::Io(io) => TlsFailure::of_rustls(io.get_ref()?.downcast_ref()?),
        ureq::Error::Tls(text) => {
            TlsFailure::of_text(text).unwrap_or_else(|| TlsFailure::Other((*text).to_owned()))
        }
        _ => return None,
    };
    let host = crate::identity::UrlParts::split(url).map_or(url, |u| u.host);
    Some(failure.describe(host))
}

impl std::error::Error for ApiError {}

/// Why the control-plane client cannot be set up; each names the variable to fix.
#[derive(Debug)]
pub enum ClientSetupError {
    /// A CA variable names nothing usable.
    Trust(TrustError),
    /// A proxy variable is empty or not a proxy URL the client can use. The value is not
    /// repeated: it may carry the proxy's password.
    Proxy {
        variable: &'static str,
        reason: &'static str,
    },
}

impl fmt::Display for ClientSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientSetupError::Trust(e) => write!(f, "{e}"),
            ClientSetupError::Proxy { variable, reason } => write!(
                f,
                "cannot use the proxy in {variable}: {reason}; give http://host:port (with user:password@ when the proxy needs it), or unset it"
            ),
        }
    }
}

impl std::error::Error for ClientSetupError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let s = |status| ApiError::Status {
            call: "x",
            secret_id: "s".into(),
            status,
            message: String::new(),
        };
        assert_eq!(s(404).class(), ErrorClass::Terminal);
        assert_eq!(s(403).class(), ErrorClass::Terminal);
        assert_eq!(s(409).class(), ErrorClass::Locked);
        assert_eq!(s(503).class(), ErrorClass::Retryable);
        assert_eq!(s(429).class(), ErrorClass::Retryable);
        assert_eq!(s(400).class(), ErrorClass::Other);
        assert_eq!(s(401).class(), ErrorClass::Other);
    }
}
