//! A fake SikkerKey control plane for tests: an HTTP/1.1 server on 127.0.0.1 that checks
//! every request's signature, timestamp and nonce exactly as protocol.md says, implements
//! the agent lock, pending/confirm/reject, 404/403, records heartbeats, and injects faults.
//!
//! It speaks plain HTTP, or HTTPS with a certificate from a test's private CA
//! ([`FakeControlPlane::start_tls`]), as production does.
//!
//! Test code only: it is never compiled into the release binary.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Writes a machine identity into `home` the way the official CLI lays it out
/// (vaults/vault1/identity.json + private.pem, 0600) and registers its key with `cp`.
pub fn write_identity(cp: &FakeControlPlane, home: &std::path::Path, machine_id: &str) {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use std::os::unix::fs::PermissionsExt;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("random seed");
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    cp.register_machine(machine_id, key.verifying_key());
    let vault = home.join("vaults").join("vault1");
    std::fs::create_dir_all(&vault).unwrap();
    let key_path = vault.join("private.pem");
    let pem = key.to_pkcs8_pem(Default::default()).unwrap();
    std::fs::write(&key_path, pem.as_bytes()).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let identity = json!({
        "machineId": machine_id, "machineName": "test", "vaultId": "vault1",
        "apiUrl": "https://api.invalid", "privateKeyPath": key_path,
    });
    std::fs::write(vault.join("identity.json"), identity.to_string()).unwrap();
}

/// The endpoints, for fault injection and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Secret,
    SyncConfig,
    Heartbeat,
    Confirm,
    Reject,
}

/// What to do instead of (or before) answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a JSON error, without processing.
    Status(u16),
    /// Wait, then process normally.
    Delay(Duration),
    /// Close the connection without an answer, without processing.
    Close,
    /// Answer 200 with exactly this body, without processing: a server that sends what
    /// the protocol does not allow.
    Body(&'static str),
    /// Process normally, then close the connection without sending the answer.
    ProcessThenClose,
    /// Process now, answer after this wait: an answer true when computed and stale when
    /// it arrives.
    ProcessThenDelay(Duration),
}

/// A heartbeat the server received.
#[derive(Debug, Clone)]
pub struct HeartbeatSeen {
    pub at: Instant,
    pub machine: String,
    pub status: String,
    pub error: String,
}

/// The server-side state of one managed secret.
#[derive(Debug, Clone)]
pub struct SecretState {
    pub provider_type: String,
    pub connection: Value,
    pub managed_username: String,
    pub poll_interval_seconds: u64,
    pub live_value: String,
    pub version: u32,
    pub pending: Option<(String, String)>,
    pub rotation_status: String,
    pub last_error: String,
    pub locked_to: Option<String>,
    pub deleted: bool,
    pub revoked: HashSet<String>,
}

impl SecretState {
    pub fn new(
        provider_type: &str,
        connection: Value,
        managed_username: &str,
        live_value: &str,
    ) -> Self {
        SecretState {
            provider_type: provider_type.into(),
            connection,
            managed_username: managed_username.into(),
            poll_interval_seconds: 10,
            live_value: live_value.into(),
            version: 1,
            pending: None,
            rotation_status: "idle".into(),
            last_error: String::new(),
            locked_to: None,
            deleted: false,
            revoked: HashSet::new(),
        }
    }
}

#[derive(Default)]
struct State {
    machines: HashMap<String, VerifyingKey>,
    nonces: HashSet<String>,
    secrets: HashMap<String, SecretState>,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    heartbeats: Vec<(String, HeartbeatSeen)>,
    confirms: Vec<(String, String)>,
    rejects: Vec<(String, String, String)>,
    calls: HashMap<Endpoint, usize>,
    /// Connections accepted and not yet served to their end, and the client ports of all
    /// accepted so far (for [`FakeControlPlane::settle`]).
    open_connections: usize,
    accepted_ports: HashSet<u16>,
    unauthorized: Vec<String>,
    bodies: Vec<String>,
    /// Where the API is mounted (`/sikkerkey`, or empty: at the root), as behind a
    /// reverse proxy that forwards the whole path.
    mount: String,
}

/// The fake server. Stops when dropped.
pub struct FakeControlPlane {
    addr: std::net::SocketAddr,
    tls: bool,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl FakeControlPlane {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Serves HTTPS on 127.0.0.1 with this certificate chain and PKCS#8 key (PEM files).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("read the fake control plane's certificate")
            .collect::<Result<_, _>>()
            .expect("parse the fake control plane's certificate");
        let key = PrivateKeyDer::from_pem_file(key).expect("read the fake control plane's key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a usable certificate and key");
        Self::start_with(Some(Arc::new(config)))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake control plane");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let secure = tls.is_some();
        let acceptor = thread::Builder::new()
            .name("fake-cp-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if sp.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    {
                        let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
                        s.open_connections += 1;
                        if let Ok(peer) = conn.peer_addr() {
                            s.accepted_ports.insert(peer.port());
                        }
                    }
                    let (st, counter) = (st.clone(), st.clone());
                    let tls = tls.clone();
                    let spawned =
                        thread::Builder::new()
                            .name("fake-cp-conn".into())
                            .spawn(move || {
                                let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
                                let _ = conn.set_nodelay(true);
                                match tls {
                                    None => serve_connection(conn, st.clone()),
                                    Some(config) => {
                                        if let Ok(session) = rustls::ServerConnection::new(config) {
                                            serve_connection(
                                                rustls::StreamOwned::new(session, conn),
                                                st.clone(),
                                            )
                                        }
                                    }
                                }
                                st.lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .open_connections -= 1;
                            });
                    if spawned.is_err() {
                        counter
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .open_connections -= 1;
                    }
                }
            })
            .unwrap();
        FakeControlPlane {
            addr,
            tls: secure,
            state,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Serves the API under `prefix` (e.g. `/sikkerkey`) from now on; the root answers 404.
    /// Signatures are checked over the whole path received, prefix included.
    pub fn mount_under(&self, prefix: &str) {
        self.lock().mount = prefix.to_owned();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register_machine(&self, machine_id: &str, key: VerifyingKey) {
        self.lock().machines.insert(machine_id.into(), key);
    }

    pub fn add_secret(&self, id: &str, secret: SecretState) {
        self.lock().secrets.insert(id.into(), secret);
    }

    pub fn with_secret<R>(&self, id: &str, f: impl FnOnce(&mut SecretState) -> R) -> R {
        f(self
            .lock()
            .secrets
            .get_mut(id)
            .expect("unknown secret in the fake control plane"))
    }

    pub fn set_pending(&self, id: &str, rotation_id: &str, value: &str) {
        self.with_secret(id, |s| {
            s.pending = Some((rotation_id.into(), value.into()));
            s.rotation_status = "pending".into();
        });
    }

    /// The server drops the pending rotation without promoting it ("Retry rotation" / reset).
    pub fn clear_pending(&self, id: &str) {
        self.with_secret(id, |s| {
            s.pending = None;
            s.rotation_status = "idle".into();
        });
    }

    pub fn live_value(&self, id: &str) -> String {
        self.with_secret(id, |s| s.live_value.clone())
    }

    pub fn pending(&self, id: &str) -> Option<(String, String)> {
        self.with_secret(id, |s| s.pending.clone())
    }

    pub fn rotation_status(&self, id: &str) -> String {
        self.with_secret(id, |s| s.rotation_status.clone())
    }

    pub fn delete_secret(&self, id: &str) {
        self.with_secret(id, |s| s.deleted = true);
    }

    pub fn revoke(&self, id: &str, machine_id: &str) {
        self.with_secret(id, |s| {
            s.revoked.insert(machine_id.into());
        });
    }

    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        let mut st = self.lock();
        let q = st.faults.entry(endpoint).or_default();
        q.extend(std::iter::repeat_n(fault, times));
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub fn heartbeats(&self, id: &str) -> Vec<HeartbeatSeen> {
        self.lock()
            .heartbeats
            .iter()
            .filter(|(s, _)| s == id)
            .map(|(_, h)| h.clone())
            .collect()
    }

    pub fn confirms(&self, id: &str) -> Vec<String> {
        self.lock()
            .confirms
            .iter()
            .filter(|(s, _)| s == id)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// (rotation id, error) of each accepted rejection.
    pub fn rejects(&self, id: &str) -> Vec<(String, String)> {
        self.lock()
            .rejects
            .iter()
            .filter(|(s, _, _)| s == id)
            .map(|(_, r, e)| (r.clone(), e.clone()))
            .collect()
    }

    /// Waits until every request a client sent before this call has been handled: a
    /// killed agent's last request may still sit in a socket buffer (or its connection in
    /// the listen backlog), and would otherwise be handled after the test has moved on.
    /// A connection of its own, accepted after every earlier one, marks the point; then
    /// every open connection is served to its end.
    pub fn settle(&self) {
        let marker =
            std::net::TcpStream::connect(self.addr).expect("connect to the fake control plane");
        let port = marker.local_addr().unwrap().port();
        self.wait_state("accepting a marker connection", |st| {
            st.accepted_ports.contains(&port)
        });
        drop(marker);
        self.wait_state("finishing its open connections", |st| {
            st.open_connections == 0
        });
    }

    /// Polls the state until `done` holds; panics after 30 s naming `what`. (This file is
    /// also built alone, by the demo, so it has a wait of its own.)
    fn wait_state(&self, what: &str, done: impl Fn(&State) -> bool) {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        while !done(&self.lock()) {
            assert!(
                std::time::Instant::now() < end,
                "the fake control plane timed out {what}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn calls(&self, endpoint: Endpoint) -> usize {
        self.lock().calls.get(&endpoint).copied().unwrap_or(0)
    }

    /// Why each 401 was given. A correct agent never earns one.
    pub fn unauthorized(&self) -> Vec<String> {
        self.lock().unauthorized.clone()
    }

    /// Every request body received (for leak checks).
    pub fn bodies(&self) -> Vec<String> {
        self.lock().bodies.clone()
    }
}

impl Drop for FakeControlPlane {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let unauthorized = self.lock().unauthorized.clone();
        if !unauthorized.is_empty() && !thread::panicking() {
            panic!(
                "the agent earned {} HTTP 401 answer(s): {unauthorized:?}",
                unauthorized.len()
            );
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<impl Read>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let path = target.split('?').next().unwrap_or("").to_owned();
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn respond(stream: &mut impl Write, status: u16, body: &Value) {
    respond_text(stream, status, &body.to_string());
}

fn respond_text(stream: &mut impl Write, status: u16, text: &str) {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Status",
    };
    // One write: `write!` straight into the socket sends each piece as its own segment,
    // and Nagle's algorithm then holds the rest until the agent's delayed ACK (~40 ms).
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
}

fn serve_connection(stream: impl Read + Write, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        let writer = reader.get_mut();
        let mount = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .mount
            .clone();
        let routed = req
            .path
            .strip_prefix(mount.as_str())
            .and_then(|path| route(&req.method, path));
        let Some((secret_id, endpoint)) = routed else {
            respond(writer, 404, &json!({"error": "no such endpoint"}));
            continue;
        };
        let fault = {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            *st.calls.entry(endpoint).or_default() += 1;
            st.bodies
                .push(String::from_utf8_lossy(&req.body).into_owned());
            st.faults.get_mut(&endpoint).and_then(|q| q.pop_front())
        };
        match fault {
            Some(Fault::Status(code)) => {
                respond(
                    writer,
                    code,
                    &json!({"error": format!("injected fault {code}")}),
                );
                continue;
            }
            Some(Fault::Close) => return,
            Some(Fault::Body(text)) => {
                respond_text(writer, 200, text);
                continue;
            }
            Some(Fault::Delay(d)) => thread::sleep(d),
            Some(Fault::ProcessThenClose | Fault::ProcessThenDelay(_)) | None => {}
        }
        let (status, body) = {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            handle(&mut st, &req, &secret_id, endpoint)
        };
        if fault == Some(Fault::ProcessThenClose) {
            return;
        }
        if let Some(Fault::ProcessThenDelay(d)) = fault {
            thread::sleep(d);
        }
        respond(writer, status, &body);
    }
}

fn route(method: &str, path: &str) -> Option<(String, Endpoint)> {
    let rest = path.strip_prefix("/v1/secret/")?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let endpoint = match (method, tail) {
        ("GET", "") => Endpoint::Secret,
        ("GET", "sync-config") => Endpoint::SyncConfig,
        ("POST", "agent/heartbeat") => Endpoint::Heartbeat,
        ("POST", "agent/confirm-rotation") => Endpoint::Confirm,
        ("POST", "agent/reject-rotation") => Endpoint::Reject,
        _ => return None,
    };
    Some((id.to_owned(), endpoint))
}

/// Checks the four authentication headers; returns the machine id or why not.
fn authenticate(st: &mut State, req: &Request) -> Result<String, String> {
    let h = |name: &str| {
        req.headers
            .get(name)
            .cloned()
            .ok_or_else(|| format!("missing {name}"))
    };
    let machine = h("x-machine-id")?;
    let timestamp = h("x-timestamp")?;
    let nonce = h("x-nonce")?;
    let signature = h("x-signature")?;
    let key = *st
        .machines
        .get(&machine)
        .ok_or_else(|| format!("unknown machine {machine}"))?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| "timestamp is not a number".to_owned())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts).abs() > 300 {
        return Err(format!("stale timestamp {ts} (now {now})"));
    }
    let nonce_bytes = B64
        .decode(&nonce)
        .map_err(|_| "nonce is not standard base64".to_owned())?;
    if nonce_bytes.len() != 16 {
        return Err(format!("nonce has {} bytes, want 16", nonce_bytes.len()));
    }
    if !st.nonces.insert(nonce.clone()) {
        return Err("reused nonce".into());
    }
    let body_hash: String = Sha256::digest(&req.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let message = format!(
        "{}:{}:{}:{}:{}",
        req.method, req.path, timestamp, nonce, body_hash
    );
    let sig = B64
        .decode(&signature)
        .map_err(|_| "signature is not base64".to_owned())?;
    let sig =
        Signature::from_slice(&sig).map_err(|_| "signature has the wrong length".to_owned())?;
    key.verify(message.as_bytes(), &sig)
        .map_err(|_| "bad signature".to_owned())?;
    if !req.body.is_empty()
        && req
            .headers
            .get("content-type")
            .map(|c| c.starts_with("application/json"))
            != Some(true)
    {
        return Err("JSON body without Content-Type: application/json".into());
    }
    Ok(machine)
}

fn handle(st: &mut State, req: &Request, secret_id: &str, endpoint: Endpoint) -> (u16, Value) {
    let machine = match authenticate(st, req) {
        Ok(m) => m,
        Err(why) => {
            st.unauthorized
                .push(format!("{} {}: {why}", req.method, req.path));
            return (401, json!({"error": "unauthorized"}));
        }
    };
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let Some(secret) = st.secrets.get_mut(secret_id) else {
        return (404, json!({"error": "secret not found"}));
    };
    if secret.deleted {
        return (404, json!({"error": "secret not found"}));
    }
    if secret.revoked.contains(&machine) {
        return (403, json!({"error": "access denied"}));
    }
    if endpoint != Endpoint::Secret {
        match &secret.locked_to {
            None if endpoint == Endpoint::SyncConfig => secret.locked_to = Some(machine.clone()),
            Some(owner) if *owner != machine => {
                return (
                    409,
                    json!({"error": format!("secret is locked to agent machine {owner}")}),
                );
            }
            _ => {}
        }
    }
    match endpoint {
        Endpoint::Secret => (200, json!({"value": secret.live_value})),
        Endpoint::SyncConfig => {
            let (pid, pval) = secret.pending.clone().unwrap_or_default();
            (
                200,
                json!({
                    "providerType": secret.provider_type,
                    "connection": secret.connection,
                    "managedUsername": secret.managed_username,
                    "pollIntervalSeconds": secret.poll_interval_seconds,
                    "pendingRotationId": pid,
                    "pendingValue": pval,
                    "rotationStatus": secret.rotation_status,
                }),
            )
        }
        Endpoint::Heartbeat => {
            let seen = HeartbeatSeen {
                at: Instant::now(),
                machine,
                status: body["status"].as_str().unwrap_or("").to_owned(),
                error: body["error"].as_str().unwrap_or("").to_owned(),
            };
            st.heartbeats.push((secret_id.to_owned(), seen));
            (200, json!({}))
        }
        Endpoint::Confirm => {
            let rid = body["rotationId"].as_str().unwrap_or("").to_owned();
            match secret.pending.clone() {
                Some((id, value)) if id == rid => {
                    secret.live_value = value;
                    secret.version += 1;
                    secret.pending = None;
                    secret.rotation_status = "idle".into();
                    st.confirms.push((secret_id.to_owned(), rid));
                    (200, json!({}))
                }
                _ => (400, json!({"error": "no pending rotation with that id"})),
            }
        }
        Endpoint::Reject => {
            let rid = body["rotationId"].as_str().unwrap_or("").to_owned();
            let error = body["error"].as_str().unwrap_or("").to_owned();
            match secret.pending.clone() {
                Some((id, _)) if id == rid => {
                    secret.pending = None;
                    secret.rotation_status = "failed".into();
                    secret.last_error = error.clone();
                    st.rejects.push((secret_id.to_owned(), rid, error));
                    (200, json!({}))
                }
                _ => (400, json!({"error": "no pending rotation with that id"})),
            }
        }
    }
}
