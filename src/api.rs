//! The SikkerKey control-plane client: the five calls the agent makes, every one signed,
//! every one bounded by timeouts, and every failure classified so the runtime knows whether
//! to stop, wait for the lock, or retry.
//!
//! This is the only module that speaks HTTP.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, RequestSigner, SignedHeaders};
use crate::secret::Secret;
use crate::trust::{self, TrustError, TrustRoots};

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
            connect: Duration::from_secs(10),
            total: Duration::from_secs(30),
        }
    }
}

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

/// How far the machine's clock may be from the server's `Date` before a 401 is blamed on
/// it. The server's window is wider; this only has to exceed network delay and rounding.
const SKEW_TOLERANCE_SECS: i64 = 30;

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
                match tls_failure(source) {
                    Some(reason) => write!(
                        f,
                        "TLS failed: {reason} (if a private CA or a TLS-inspecting proxy signs its certificate, set {} or SSL_CERT_FILE to that CA's PEM file)",
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

/// Why a TLS handshake failed, in words, or `None` for failures that are not TLS.
fn tls_failure(e: &ureq::Error) -> Option<String> {
    use rustls::{CertificateError, Error as Tls};
    let tls = match e {
        ureq::Error::Rustls(t) => Some(t),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<Tls>()),
        ureq::Error::Tls(text) => return Some((*text).to_owned()),
        _ => None,
    }?;
    Some(match tls {
        Tls::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "its certificate is not signed by a CA this agent trusts (UnknownIssuer)".into()
        }
        Tls::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "its certificate is not valid for this host name (NotValidForName)".into(),
        Tls::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "its certificate has expired (Expired)".into(),
        other => other.to_string(),
    })
}

impl std::error::Error for ApiError {}

/// Connection details as the sync config carries them (and the local config, which adds
/// field-name overrides). `Debug` is safe: the admin password is a [`Secret`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub admin_user: String,
    #[serde(with = "crate::secret::serde_secret")]
    pub admin_pass: Secret,
    pub project_reference: String,
}

/// `GET /v1/secret/{id}/sync-config`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncConfig {
    pub provider_type: String,
    pub connection: Connection,
    pub managed_username: String,
    /// Any JSON number is taken (negative as 0, too large as `u64::MAX`), so an odd value
    /// from the server cannot make every poll fail; [`SyncConfig::poll_interval`] clamps.
    #[serde(deserialize_with = "lenient_seconds")]
    pub poll_interval_seconds: u64,
    pub pending_rotation_id: Option<String>,
    #[serde(with = "crate::secret::serde_opt_secret")]
    pub pending_value: Option<Secret>,
    pub rotation_status: String,
}

/// The shortest and longest poll interval the agent accepts from the server.
pub const MIN_POLL_SECS: u64 = 5;
pub const MAX_POLL_SECS: u64 = 3600;

fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_i64().map(|_| 0))
            .or_else(|| n.as_f64().map(|f| if f <= 0.0 { 0 } else { f as u64 }))
            .unwrap_or(0),
        _ => 0,
    })
}

/// A pending rotation: its id and the new value (a JSON object as a string).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRotation {
    pub id: String,
    pub value: Secret,
}

impl SyncConfig {
    /// The pending rotation, when both its id and value are present and non-empty.
    pub fn pending(&self) -> Option<PendingRotation> {
        let id = self
            .pending_rotation_id
            .as_deref()
            .filter(|s| !s.is_empty())?;
        let value = self.pending_value.as_ref().filter(|v| !v.is_empty())?;
        Some(PendingRotation {
            id: id.to_owned(),
            value: value.clone(),
        })
    }

    /// The poll interval the server asks for: 0 means 10 s, and the rest is clamped to
    /// 5 s..1 h ([`MIN_POLL_SECS`], [`MAX_POLL_SECS`]).
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval_checked().0
    }

    /// The poll interval, and a warning when the server's value was out of range.
    pub fn poll_interval_checked(&self) -> (Duration, Option<String>) {
        let asked = self.poll_interval_seconds;
        let used = match asked {
            0 => 10,
            s => s.clamp(MIN_POLL_SECS, MAX_POLL_SECS),
        };
        let warning = (asked != 0 && asked != used).then(|| {
            format!(
                "the server asks for a poll interval of {asked} s; using {used} s (the agent polls every {MIN_POLL_SECS} s to {MAX_POLL_SECS} s)"
            )
        });
        (Duration::from_secs(used), warning)
    }
}

/// A heartbeat's `status`: the two words protocol.md allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Error,
}

impl Health {
    /// The wire word, which `list` and `status` print too.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Error => "error",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Health reported by a heartbeat, with the error's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatStatus {
    Healthy,
    Error(String),
}

impl HeartbeatStatus {
    pub fn health(&self) -> Health {
        match self {
            HeartbeatStatus::Healthy => Health::Healthy,
            HeartbeatStatus::Error(_) => Health::Error,
        }
    }

    /// The error's message; empty when healthy.
    pub fn message(&self) -> &str {
        match self {
            HeartbeatStatus::Healthy => "",
            HeartbeatStatus::Error(m) => m,
        }
    }
}

/// The body of `POST /v1/secret/{id}/agent/heartbeat`: `{"status": ..., "error": ...}`,
/// the error empty when healthy.
#[derive(Debug, Serialize)]
pub struct HeartbeatBody<'a> {
    pub status: Health,
    pub error: &'a str,
}

impl<'a> From<&'a HeartbeatStatus> for HeartbeatBody<'a> {
    fn from(status: &'a HeartbeatStatus) -> Self {
        HeartbeatBody {
            status: status.health(),
            error: status.message(),
        }
    }
}

#[derive(Deserialize)]
struct ValueAnswer {
    value: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
}

/// A request with the four signature headers of protocol.md.
fn signed<B>(request: ureq::RequestBuilder<B>, h: &SignedHeaders) -> ureq::RequestBuilder<B> {
    request
        .header("X-Machine-Id", &h.machine_id)
        .header("X-Timestamp", &h.timestamp)
        .header("X-Nonce", &h.nonce)
        .header("X-Signature", &h.signature)
}

/// The proxy variables the HTTP client reads, in the order it tries them (ureq's
/// `Proxy::try_from_env`); `NO_PROXY`/`no_proxy` beside them is a list and takes any text.
pub const PROXY_VARIABLES: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

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

/// Every proxy variable that is set must name a proxy the client can use: the client
/// itself skips a malformed one and goes to the next, or direct, which would send the
/// agent around the proxy its operator chose.
fn check_proxy_variables() -> Result<(), ClientSetupError> {
    for variable in PROXY_VARIABLES {
        let Some(value) = std::env::var_os(variable) else {
            continue;
        };
        let bad = |reason| Err(ClientSetupError::Proxy { variable, reason });
        let Some(value) = value.to_str() else {
            return bad("it is not UTF-8 text");
        };
        if value.is_empty() {
            return bad("it is set but empty");
        }
        // Exactly the text the client will parse: one it cannot parse it would skip.
        match ureq::Proxy::new(value) {
            Ok(p)
                if matches!(
                    p.protocol(),
                    ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https
                ) => {}
            Ok(_) => return bad("only http:// and https:// proxies (HTTP CONNECT) are supported"),
            Err(_) => return bad("it is not a proxy URL"),
        }
    }
    Ok(())
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
        serde_json::from_str(&body).map_err(|e| ApiError::BadResponse {
            call,
            secret_id: secret_id.into(),
            reason: e.to_string(),
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
            let skew = server_time.map(|t| t - unix_now());
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

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since 1970 of an HTTP `Date` in IMF-fixdate form
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form RFC 9110 lets servers send. Our own:
/// parsing it with jiff, which env_logger links, grew the static binary (bench/crates.md
/// has the figures).
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
    // Days from civil (proleptic Gregorian), as in Howard Hinnant's date algorithms.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// The proxy in use, for the start-up log line: host and port only, never credentials.
fn describe_proxy(proxy: Option<&ureq::Proxy>, base_url: &str) -> String {
    let Some(proxy) = proxy else {
        return "no proxy".into();
    };
    let bypassed = base_url
        .parse::<ureq::http::Uri>()
        .is_ok_and(|uri| proxy.is_no_proxy(&uri));
    if bypassed {
        format!(
            "not through proxy {}:{} (NO_PROXY matches)",
            proxy.host(),
            proxy.port()
        )
    } else {
        format!("through proxy {}:{}", proxy.host(), proxy.port())
    }
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

    #[test]
    fn sync_config_parses_and_hides_secrets_in_debug() {
        let json = r#"{"providerType":"postgresql","connection":{"host":"h","port":5432,"database":"d",
            "adminUser":"a","adminPass":"topsecret","projectReference":""},"managedUsername":"u",
            "pollIntervalSeconds":3,"pendingRotationId":"rot_1",
            "pendingValue":"{\"username\":\"u\",\"password\":\"newsecret\"}","rotationStatus":"pending"}"#;
        let c: SyncConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.pending().unwrap().id, "rot_1");
        assert_eq!(c.poll_interval(), Duration::from_secs(5));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("newsecret"),
            "{shown}"
        );
    }

    #[test]
    fn poll_intervals_from_the_server_are_clamped_and_never_fail_to_parse() {
        for (json, secs, warns) in [
            ("18446744073709551615", 3600, true),
            ("1e300", 3600, true),
            ("-5", 10, false),
            ("7200", 3600, true),
            ("2", 5, true),
            ("30", 30, false),
            ("null", 10, false),
            ("\"x\"", 10, false),
        ] {
            let c: SyncConfig =
                serde_json::from_str(&format!(r#"{{"pollIntervalSeconds":{json}}}"#)).unwrap();
            let (d, warning) = c.poll_interval_checked();
            assert_eq!((d.as_secs(), warning.is_some()), (secs, warns), "{json}");
            // Arithmetic on the result (the poller multiplies it by up to 3) cannot overflow.
            assert!(d.checked_mul(3).is_some());
        }
    }

    /// The heartbeat body is protocol.md's, byte for byte.
    #[test]
    fn heartbeat_bodies_are_the_protocols() {
        let body = |s: &HeartbeatStatus| serde_json::to_string(&HeartbeatBody::from(s)).unwrap();
        assert_eq!(
            body(&HeartbeatStatus::Healthy),
            r#"{"status":"healthy","error":""}"#
        );
        assert_eq!(
            body(&HeartbeatStatus::Error("db \"down\"".into())),
            r#"{"status":"error","error":"db \"down\""}"#
        );
    }

    #[test]
    fn empty_pending_is_none_and_zero_interval_is_ten() {
        let c: SyncConfig = serde_json::from_str(
            r#"{"providerType":"redis","pendingRotationId":"","pendingValue":null}"#,
        )
        .unwrap();
        assert!(c.pending().is_none());
        assert_eq!(c.poll_interval(), Duration::from_secs(10));
    }
}
