//! Words for what TLS did not allow: a refused password request on a connection that
//! did not verify the server ([`password_refusal`]), and a failed handshake with what to
//! change in the database's TLS settings ([`explain_failure`]; the failure itself is
//! described in the agent's shared words, `tls_failure.rs`).

use super::mode::TlsMode;
use super::settings::TlsSettings;
use crate::tls_failure::TlsFailure;

/// The kind of connection on which a request for the password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    /// No TLS (mode `disable`, or `prefer` against a server without TLS).
    Plaintext,
    /// TLS whose certificate was not checked (`prefer`, `require`).
    Tls,
}

/// Why the agent would not answer a request that reveals the password (`request`, in the
/// protocol's words), on a connection of kind `channel` made with `settings`, and what
/// would allow it: the setting that verifies the server, then `alternative` (the
/// provider's other ways, each starting with "; or").
pub fn password_refusal(
    request: &str,
    channel: Unverified,
    settings: &TlsSettings,
    alternative: &str,
) -> String {
    let over = match channel {
        Unverified::Plaintext if settings.mode == TlsMode::Prefer => {
            "a plaintext connection (mode prefer, and the server said it has no TLS)".to_owned()
        }
        Unverified::Plaintext => format!("a plaintext connection (mode {})", settings.mode),
        Unverified::Tls => format!(
            "a TLS connection whose certificate was not checked (mode {})",
            settings.mode
        ),
    };
    format!(
        "the server asked for {request}; refused, because on {over} nothing shows that the peer is the database, and whoever answers at this address (anyone in the network path) would learn the password; to allow it, verify the server: {}{alternative}",
        settings.how_to_verify()
    )
}

/// Why a TLS connection failed, in words an operator acts on; `None` when `error` (or
/// anything in its source chain) is not about TLS. Reads rustls's error where the driver
/// keeps it, else the driver's text.
pub fn explain_failure(
    error: &(dyn std::error::Error + 'static),
    host: &str,
    mode: TlsMode,
) -> Option<String> {
    TlsFailure::in_chain(error).map(|f| explain(&f, host, mode))
}

/// [`explain_failure`] for drivers that only keep the text of the TLS error.
pub fn explain_text(text: &str, host: &str, mode: TlsMode) -> Option<String> {
    TlsFailure::of_text(text).map(|f| explain(&f, host, mode))
}

/// The failure in the shared words, and what to do about it in a database's settings.
fn explain(failure: &TlsFailure, host: &str, mode: TlsMode) -> String {
    let remedy = match failure {
        TlsFailure::UnknownCa => "; give the CA that signed it with --tls-ca-file".to_owned(),
        TlsFailure::NameMismatch => {
            "; connect by a name or address the certificate lists".to_owned()
        }
        TlsFailure::NoTls => format!(", and mode {mode} never falls back to plaintext"),
        TlsFailure::Refused => {
            " (does it demand a client certificate? give --tls-cert-file and --tls-key-file)"
                .to_owned()
        }
        _ => String::new(),
    };
    format!(
        "TLS ({mode}) to {host} failed: {}{remedy}",
        failure.describe(host)
    )
}

#[cfg(test)]
mod tests {
    use rustls::CertificateError;

    use super::*;

    #[test]
    fn failures_are_named() {
        let host = "db.example";
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::other(e);
        let text = explain_failure(&io, host, TlsMode::VerifyFull).unwrap();
        assert!(
            text.contains("unknown CA") && text.contains(host) && text.contains("verify-full"),
            "{text}"
        );
        let text = explain_text(
            "invalid peer certificate: NotValidForName",
            host,
            TlsMode::VerifyFull,
        )
        .unwrap();
        assert!(text.contains("name mismatch"), "{text}");
        let text =
            explain_text("invalid peer certificate: Expired", host, TlsMode::VerifyCa).unwrap();
        assert!(
            text.contains("expired") && text.contains("verify-ca"),
            "{text}"
        );
        assert!(explain_text("connection refused", host, TlsMode::Require).is_none());
    }
}
