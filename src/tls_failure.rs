//! Why a TLS handshake failed, in the words every part of the agent uses. The
//! control-plane client (`api`) and the database providers (`providers::tls`) read the
//! rustls error, or a driver's text of it, into one [`TlsFailure`] and describe it the
//! same way; each adds what to do about it in its own terms (`SIKKERKEY_CA_FILE` for the
//! control plane, `--tls-ca-file` for a database).

use rustls::CertificateError;

/// What went wrong, as far as the agent tells failures apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The certificate's chain leads to no CA this agent trusts.
    UnknownCa,
    /// The certificate is valid, but not for the name or address connected to.
    NameMismatch,
    Expired,
    NotValidYet,
    /// The server said in-band that it has no TLS.
    NoTls,
    /// The server answered something that is not TLS.
    NotTls,
    /// The server closed the connection during the handshake (a plaintext mongod does, on
    /// a ClientHello).
    ClosedInHandshake,
    /// The server refused the handshake, as one that demands a client certificate does.
    Refused,
    /// Another certificate problem, with rustls's name for it when known.
    InvalidCertificate(Option<String>),
    /// A rustls error of another kind, in rustls's words.
    Other(String),
}

impl TlsFailure {
    /// The failure a rustls error stands for.
    pub fn of_rustls(e: &rustls::Error) -> TlsFailure {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => TlsFailure::UnknownCa,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsFailure::NameMismatch,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsFailure::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsFailure::NotValidYet
                }
                other => TlsFailure::InvalidCertificate(Some(format!("{other:?}"))),
            },
            other => TlsFailure::of_text(&format!("{other} {other:?}"))
                .unwrap_or_else(|| TlsFailure::Other(other.to_string())),
        }
    }

    /// The failure a driver's text of a TLS error names; `None` when the text is not
    /// about TLS.
    pub fn of_text(text: &str) -> Option<TlsFailure> {
        let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        Some(
            if has(&["UnknownIssuer", "unknown issuer", "UnknownCA", "unknown ca"]) {
                TlsFailure::UnknownCa
            } else if has(&[
                "NotValidForName",
                "not valid for name",
                "CertNotValidForName",
            ]) {
                TlsFailure::NameMismatch
            } else if has(&["Expired", "expired"]) && has(&["certificate", "Certificate"]) {
                TlsFailure::Expired
            } else if has(&["NotValidYet"]) {
                TlsFailure::NotValidYet
            } else if has(&[
                "server does not support TLS",
                "server does not have this capability",
                "does not support SSL",
            ]) {
                TlsFailure::NoTls
            } else if has(&[
                "InvalidContentType",
                "corrupt message",
                "CorruptMessage",
                "TLS handshake timed out",
            ]) {
                TlsFailure::NotTls
            } else if has(&["unexpected end of file", "UnexpectedEof"]) {
                TlsFailure::ClosedInHandshake
            } else if has(&[
                "CertificateRequired",
                "certificate required",
                "HandshakeFailure",
                "BadCertificate",
                "bad certificate",
                "peer sent no certificates",
            ]) {
                TlsFailure::Refused
            } else if has(&["InvalidCertificate", "invalid peer certificate"]) {
                TlsFailure::InvalidCertificate(None)
            } else {
                return None;
            },
        )
    }

    /// The failure a rustls error anywhere in `error`'s source chain stands for (also
    /// inside an `io::Error`), else what the chain's text names; `None` when nothing in it
    /// is about TLS.
    pub fn in_chain(error: &(dyn std::error::Error + 'static)) -> Option<TlsFailure> {
        let mut text = String::new();
        let mut current = Some(error);
        while let Some(e) = current {
            let rustls_error = e.downcast_ref::<rustls::Error>().or_else(|| {
                e.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            });
            if let Some(r) = rustls_error {
                return Some(TlsFailure::of_rustls(r));
            }
            text.push_str(&format!("{e} {e:?} "));
            current = e.source();
        }
        TlsFailure::of_text(&text)
    }

    /// What happened, for a connection to `host`.
    pub fn describe(&self, host: &str) -> String {
        match self {
            TlsFailure::UnknownCa => {
                "the server's certificate is not signed by a trusted CA (unknown CA)".to_owned()
            }
            TlsFailure::NameMismatch => {
                format!("the server's certificate is not valid for \"{host}\" (name mismatch)")
            }
            TlsFailure::Expired => {
                "the server's certificate has expired (or the clock here is wrong)".to_owned()
            }
            TlsFailure::NotValidYet => {
                "the server's certificate is not valid yet (or the clock here is wrong)".to_owned()
            }
            TlsFailure::NoTls => "the server does not offer TLS".to_owned(),
            TlsFailure::NotTls => {
                "the server did not answer in TLS: is this its TLS port, and is TLS on there?"
                    .to_owned()
            }
            TlsFailure::ClosedInHandshake => {
                "the server did not answer in TLS (it closed the connection in the handshake): is this its TLS port, and is TLS on there?"
                    .to_owned()
            }
            TlsFailure::Refused => "the server refused the handshake".to_owned(),
            TlsFailure::InvalidCertificate(None) => {
                "the server's certificate is invalid".to_owned()
            }
            TlsFailure::InvalidCertificate(Some(why)) => {
                format!("the server's certificate is invalid: {why}")
            }
            TlsFailure::Other(text) => text.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_and_driver_texts_name_the_same_failure() {
        let cert = |c| TlsFailure::of_rustls(&rustls::Error::InvalidCertificate(c));
        assert_eq!(cert(CertificateError::UnknownIssuer), TlsFailure::UnknownCa);
        assert_eq!(
            cert(CertificateError::NotValidForName),
            TlsFailure::NameMismatch
        );
        assert_eq!(cert(CertificateError::Expired), TlsFailure::Expired);
        assert_eq!(cert(CertificateError::NotValidYet), TlsFailure::NotValidYet);
        assert_eq!(
            cert(CertificateError::Revoked),
            TlsFailure::InvalidCertificate(Some("Revoked".into()))
        );
        for (text, failure) in [
            (
                "invalid peer certificate: UnknownIssuer",
                TlsFailure::UnknownCa,
            ),
            (
                "invalid peer certificate: NotValidForName",
                TlsFailure::NameMismatch,
            ),
            ("invalid peer certificate: Expired", TlsFailure::Expired),
            ("server does not support TLS", TlsFailure::NoTls),
            ("received corrupt message", TlsFailure::NotTls),
            (
                "failed to fill whole buffer (UnexpectedEof)",
                TlsFailure::ClosedInHandshake,
            ),
            (
                "received fatal alert: HandshakeFailure",
                TlsFailure::Refused,
            ),
        ] {
            assert_eq!(TlsFailure::of_text(text), Some(failure), "{text}");
        }
        assert_eq!(TlsFailure::of_text("connection refused"), None);
    }

    #[test]
    fn a_rustls_error_is_found_inside_an_io_error() {
        let io = std::io::Error::other(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert_eq!(TlsFailure::in_chain(&io), Some(TlsFailure::UnknownCa));
        let plain = std::io::Error::other("connection refused");
        assert_eq!(TlsFailure::in_chain(&plain), None);
    }

    #[test]
    fn descriptions_name_the_host_where_it_matters() {
        let text = TlsFailure::NameMismatch.describe("db.example");
        assert!(
            text.contains("\"db.example\"") && text.contains("name mismatch"),
            "{text}"
        );
        assert!(TlsFailure::UnknownCa.describe("x").contains("unknown CA"));
    }
}
