//! The signed, bounded HTTP client for one secret's agent endpoints: the five calls, the
//! request signature of protocol.md, and the classification of every answer.

use std::time::Duration;

use super::error::{ApiError, ClientSetupError};
use super::proxy::{check_proxy_variables, describe_proxy};
use super::wire::{ErrorAnswer, HeartbeatBody, HeartbeatStatus, SyncConfig, ValueAnswer};
use crate::clock;
use crate::defaults;
use crate::identity::{Identity, RequestSigner, SignedHeaders};
use crate::json_problem::JsonProblem;
use crate::secret::Secret;
use crate::trust::{self, TrustRoots};

/// Timeouts for control-plane calls.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    pub connect: Duration,
    /// Bound on one whole call (connect, send, receive).
    pub total: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            connect: defaults::HTTP_CONNECT,
            total: defaults::HTTP_TOTAL,
        }
    }
}

/// How far the machine's clock may be from the server's `Date` before a 401 is blamed on
/// it. The server's window is wider; this only has to exceed network delay and rounding.
const SKEW_TOLERANCE_SECS: i64 = 30;

/// A request with the four signature headers of protocol.md.
fn signed<B>(request: ureq::RequestBuilder<B>, h: &SignedHeaders) -> ureq::RequestBuilder<B> {
    request
        .header("X-Machine-Id", &h.machine_id)
        .header("X-Timestamp", &h.timestamp)
        .header("X-Nonce", &h.nonce)
        .header("X-Signature", &h.signature)
}

/// Size of each HTTP connection buffer, and the largest response header accepted.
const HTTP_BUFFER: usize = 16 * 1024;

/// A signed client for one secret's agent endpoints.
pub struct ApiClient {
    base_url: String,
    /// The path part of the API URL (`/prefix`, or empty): requests go to and are signed
    /// for `{prefix}/v1/...`, the path the server actually receives.
    path_prefix: String,
    signer: RequestSigner,
    agent: ureq::Agent,
}

impl ApiClient {
    /// A client for `identity`'s control plane, trusting what [`trust::load`] finds (with
    /// the CAs of `ca_file` added) and going through the proxy the environment names
    /// (`ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`, in that order, and `NO_PROXY`).
    pub fn new(
        identity: Identity,
        timeouts: HttpTimeouts,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, ClientSetupError> {
        let base_url = identity.api_url.clone();
        check_proxy_variables()?;
        let roots = trust::load(ca_file).map_err(ClientSetupError::Trust)?;
        Ok(Self::with_signer(
            base_url,
            identity.into_signer(),
            timeouts,
            roots,
        ))
    }

    pub fn with_signer(
        base_url: String,
        signer: RequestSigner,
        timeouts: HttpTimeouts,
        roots: TrustRoots,
    ) -> Self {
        let root_certs = if roots.bundled() {
            ureq::tls::RootCerts::WebPki
        } else {
            roots
                .certificates
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
                .into()
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeouts.connect))
            .timeout_global(Some(timeouts.total))
            // ureq's defaults (128 KiB in, 128 KiB out, zero-filled) are a quarter of an
            // idle agent's memory for each pooled connection. Our requests and answers are
            // a few hundred bytes; bodies stream through the buffers in pieces anyway.
            .input_buffer_size(HTTP_BUFFER)
            .output_buffer_size(HTTP_BUFFER)
            .max_response_header_size(HTTP_BUFFER)
            .user_agent(concat!("sikkerkey-agent/", env!("CARGO_PKG_VERSION")))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(root_certs)
                    .build(),
            )
            .build();
        let base_url = base_url.trim_end_matches('/').to_owned();
        let path_prefix = base_url
            .parse::<ureq::http::Uri>()
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let trust = if base_url.starts_with("https://") {
            format!("trusting {}", roots.description)
        } else {
            "plain HTTP to a loopback address, no certificate to check".to_owned()
        };
        log::info!(
            "control plane {base_url}: {trust}; {}",
            describe_proxy(config.proxy(), &base_url)
        );
        ApiClient {
            base_url,
            path_prefix,
            signer,
            agent: config.into(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET /v1/secret/{id}`: the live value.
    pub fn live_value(&self, secret_id: &str) -> Result<Secret, ApiError> {
        let call = "reading the live value";
        let path = format!("/v1/secret/{secret_id}");
        let answer: ValueAnswer = self.get_json(call, secret_id, &path)?;
        answer
            .value
            .map(Secret::new)
            .ok_or_else(|| ApiError::BadResponse {
                call,
                secret_id: secret_id.into(),
                reason: "no \"value\" field".into(),
            })
    }

    /// `GET /v1/secret/{id}/sync-config`.
    pub fn sync_config(&self, secret_id: &str) -> Result<SyncConfig, ApiError> {
        let path = format!("/v1/secret/{secret_id}/sync-config");
        self.get_json("fetching the sync config", secret_id, &path)
    }

    /// A signed GET whose answer is JSON of type `T`.
    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        call: &'static str,
        secret_id: &str,
        path: &str,
    ) -> Result<T, ApiError> {
        let body = self.request(call, secret_id, "GET", path, None)?;
        // serde's own message quotes the value it stumbled on, and these answers carry
        // secret values: say where the body is wrong, never what it holds.
        serde_json::from_str(&body).map_err(|e| ApiError::BadResponse {
            call,
            secret_id: secret_id.into(),
            reason: format!("the JSON has {}", JsonProblem::of(&e)),
        })
    }

    /// `POST /v1/secret/{id}/agent/heartbeat`.
    pub fn heartbeat(&self, secret_id: &str, status: &HeartbeatStatus) -> Result<(), ApiError> {
        let body = serde_json::to_string(&HeartbeatBody::from(status))
            .expect("a heartbeat body always serializes");
        self.request(
            "sending a heartbeat",
            secret_id,
            "POST",
            &format!("/v1/secret/{secret_id}/agent/heartbeat"),
            Some(&body),
        )
        .map(drop)
    }

    /// `POST /v1/secret/{id}/agent/confirm-rotation`.
    pub fn confirm_rotation(&self, secret_id: &str, rotation_id: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({"rotationId": rotation_id}).to_string();
        self.request(
            "confirming the rotation",
            secret_id,
            "POST",
            &format!("/v1/secret/{secret_id}/agent/confirm-rotation"),
            Some(&body),
        )
        .map(drop)
    }

    /// `POST /v1/secret/{id}/agent/reject-rotation`.
    pub fn reject_rotation(
        &self,
        secret_id: &str,
        rotation_id: &str,
        error: &str,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({"rotationId": rotation_id, "error": error}).to_string();
        self.request(
            "rejecting the rotation",
            secret_id,
            "POST",
            &format!("/v1/secret/{secret_id}/agent/reject-rotation"),
            Some(&body),
        )
        .map(drop)
    }

    fn request(
        &self,
        call: &'static str,
        secret_id: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, ApiError> {
        let url = format!("{}{}", self.base_url, path);
        let h = self.signer.sign(
            method,
            &format!("{}{path}", self.path_prefix),
            body.unwrap_or("").as_bytes(),
        );
        let transport = |source| ApiError::Transport {
            call,
            secret_id: secret_id.into(),
            url: self.base_url.clone(),
            source: Box::new(source),
        };
        let result = match body {
            None => signed(self.agent.get(&url), &h).call(),
            Some(b) => signed(self.agent.post(&url), &h)
                .content_type("application/json")
                .send(b.as_bytes()),
        };
        let mut response = result.map_err(transport)?;
        let status = response.status().as_u16();
        let server_time = response
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(transport)?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let message = serde_json::from_str::<ErrorAnswer>(&text)
            .ok()
            .and_then(|a| a.error)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| reason_phrase(status).to_owned());
        if status == 401 {
            let skew = server_time.map(|t| t - clock::unix_now() as i64);
            if skew.is_some_and(|s| s.abs() > SKEW_TOLERANCE_SECS)
                || message.to_ascii_lowercase().contains("timestamp")
            {
                return Err(ApiError::ClockSkew {
                    call,
                    secret_id: secret_id.into(),
                    skew_secs: skew,
                    message,
                });
            }
        }
        Err(ApiError::Status {
            call,
            secret_id: secret_id.into(),
            status,
            message,
        })
    }
}

/// Seconds since 1970 of an HTTP `Date` in IMF-fixdate form
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form RFC 9110 lets servers send.
fn parse_http_date(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let days = clock::days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not found",
        409 => "conflict",
        429 => "too many requests",
        500 => "internal server error",
        502 => "bad gateway",
        503 => "service unavailable",
        504 => "gateway timeout",
        _ => "no error message in the answer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API URL check splits URLs the way the HTTP client does: same host, same
    /// verdict on user info, for the URLs that fool a naive split.
    #[test]
    fn the_url_check_sees_the_host_the_client_connects_to() {
        for url in [
            "http://127.0.0.1:80@evil.example",
            "http://127.0.0.1:80@evil.example:8080/x",
            "https://user:pw@api.sikkerkey.com",
            "https://a@b@api.sikkerkey.com/p",
            "http://[::1]:8080/prefix",
            "http://localhost",
            "https://api.sikkerkey.com:443/sikkerkey",
            "http://127.0.0.1.evil.com",
        ] {
            let uri: ureq::http::Uri = url.parse().unwrap();
            let authority = uri.authority().unwrap();
            let ours = crate::identity::UrlParts::split(url).unwrap();
            assert_eq!(ours.host, authority.host(), "{url}");
            assert_eq!(ours.user_info, authority.as_str().contains('@'), "{url}");
            assert_eq!(ours.scheme, uri.scheme_str().unwrap(), "{url}");
        }
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 01 Dec 2026 09:00:00 GMT"),
            Some(1_796_115_600)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }

    /// The signature covers the path the server receives, prefix included.
    #[test]
    fn a_path_prefix_is_requested_and_signed() {
        use ed25519_dalek::{Signature, SigningKey, Verifier};
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let client = ApiClient::with_signer(
            format!("http://127.0.0.1:{port}/sikkerkey/"),
            RequestSigner::from_key(key.clone(), "m1"),
            HttpTimeouts::default(),
            crate::trust::load(None).unwrap(),
        );
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = std::collections::HashMap::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let Some((k, v)) = h.trim_end().split_once(':') else {
                    break;
                };
                headers.insert(k.to_ascii_lowercase(), v.trim().to_owned());
            }
            let body = r#"{"value":"v"}"#;
            write!(
                &stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            (line, headers)
        });
        client.live_value("sk_1").unwrap();
        let (line, headers) = server.join().unwrap();
        assert_eq!(line.trim_end(), "GET /sikkerkey/v1/secret/sk_1 HTTP/1.1");
        let message = crate::identity::signing_message(
            "GET",
            "/sikkerkey/v1/secret/sk_1",
            &headers["x-timestamp"],
            &headers["x-nonce"],
            b"",
        );
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&headers["x-signature"])
            .unwrap();
        use base64::Engine as _;
        key.verifying_key()
            .verify(message.as_bytes(), &Signature::from_slice(&sig).unwrap())
            .unwrap();
    }
}
