//! Database TLS against real TLS servers, written once for every provider: each provider
//! file implements [`TlsServer`] for the TLS-enabled server `make test` starts (with a CA
//! made for the run, see tests/services/tls/) and runs the checks below through
//! `tls_tests!`. What they show, per provider:
//! - `verify-full` connects, reports the protocol, and a rotation by the agent confirms
//!   (with the verify login as the managed user, a user that may only log in over TLS);
//! - a wrong CA and a wrong host name are refused with the reason named, before any
//!   password is sent (the right password gets a TLS error, not a login, and never
//!   appears in the bytes the agent sent);
//! - `require` against the plaintext-only server of the same kind fails and never falls
//!   back; `disable` against the TLS server is refused by the server;
//! - a CA file is the only trust anchor: the server's real CA, trusted as the whole system
//!   store (SSL_CERT_FILE), does not make a connection with another CA file succeed, and
//!   no password is sent; without a CA file, verify-full trusts the system store.

#![allow(dead_code)]

#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
pub mod redis;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::json;
use sikkerkey_agent::providers::{
    self, DbTimeouts, FailureKind, ProviderError, ProviderKind, Target, TlsMode, TlsSettings,
    TlsStatus,
};
use sikkerkey_agent::secret::Secret;

use crate::support::SOON;
use crate::support::assertions::Exit;
use crate::support::cli;
use crate::support::world::secret_value;
use crate::support::{
    FakeControlPlane, Machine, SecretState, random_text, require_env, unique_name,
};

/// The run's TLS material (tests/services/tls/ca.sh).
pub struct Pki {
    pub ca: PathBuf,
    pub wrong_ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A host name the server certificate lists (its IP SAN).
    pub good_host: String,
    /// A name that reaches the same servers but is not in the certificate.
    pub wrong_host: String,
}

impl Pki {
    pub fn from_env(service: &str) -> Option<Pki> {
        Some(Pki {
            ca: require_env("SKA_TLS_CA", service)?.into(),
            wrong_ca: require_env("SKA_TLS_WRONG_CA", service)?.into(),
            client_cert: require_env("SKA_TLS_CLIENT_CERT", service)?.into(),
            client_key: require_env("SKA_TLS_CLIENT_KEY", service)?.into(),
            good_host: require_env("SKA_TLS_GOOD_HOST", service)?,
            wrong_host: require_env("SKA_TLS_WRONG_HOST", service)?,
        })
    }

    pub fn settings(&self, mode: TlsMode) -> TlsSettings {
        TlsSettings {
            mode,
            ca_file: mode.verifies().then(|| self.ca.clone()),
            ..Default::default()
        }
    }

    pub fn with_client_cert(&self, mut s: TlsSettings) -> TlsSettings {
        s.cert_file = Some(self.client_cert.clone());
        s.key_file = Some(self.client_key.clone());
        s
    }
}

/// Where a server listens and its admin.
#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_pass: String,
    pub database: String,
}

impl Server {
    /// The server that tests/services/run.sh exported as `SKA_{prefix}_HOST`, `_PORT`,
    /// `_ADMIN_USER` and `_ADMIN_PASS`; `None` (or a loud failure under CI) when missing.
    pub fn from_env(prefix: &str, service: &str, database: &str) -> Option<Server> {
        let var = |name: &str| require_env(&format!("SKA_{prefix}_{name}"), service);
        Some(Server {
            host: var("HOST")?,
            port: var("PORT")?.parse().unwrap(),
            admin_user: var("ADMIN_USER")?,
            admin_pass: var("ADMIN_PASS")?,
            database: database.to_owned(),
        })
    }
}

/// The run's certificates, a TLS-enabled server and a plaintext-only one of one kind.
pub struct Servers {
    pub kind: ProviderKind,
    pub pki: Pki,
    pub tls: Server,
    pub plain: Server,
}

/// A TLS-enabled test server of one provider, and a plaintext-only one of the same kind.
pub trait TlsServer {
    fn servers(&self) -> &Servers;
    fn kind(&self) -> ProviderKind {
        self.servers().kind
    }
    fn pki(&self) -> &Pki {
        &self.servers().pki
    }
    fn tls_server(&self) -> Server {
        self.servers().tls.clone()
    }
    fn plain_server(&self) -> Server {
        self.servers().plain.clone()
    }
    /// Makes `name` (created by the provider) a user that may log in only over TLS, or
    /// only with a client certificate; `false` when the server cannot tell users apart so.
    fn restrict(&self, name: &str, client_cert: bool) -> bool;
    /// Whether the driver can check the chain without the name.
    fn has_verify_ca(&self) -> bool {
        true
    }
    /// Whether a login that the server cannot settle from its cache (MySQL 8+'s
    /// caching_sha2_password with a password it has not seen, e.g. a wrong one) must send
    /// the password itself, which the agent does only to a verified server.
    fn wrong_password_needs_verified_server(&self) -> bool {
        false
    }
}

pub fn target(kind: ProviderKind, server: &Server, tls: TlsSettings) -> Target {
    Target {
        kind,
        host: server.host.clone(),
        port: server.port,
        database: server.database.clone(),
        admin_user: server.admin_user.clone(),
        admin_pass: Secret::new(&server.admin_pass),
        project_reference: String::new(),
        timeouts: DbTimeouts {
            connect: Duration::from_secs(5),
            statement: Duration::from_secs(10),
        },
        tls,
    }
}

fn open(t: &Target) -> Result<Box<dyn providers::Provider>, ProviderError> {
    providers::open(t)
}

fn expect_tls_error(r: Result<impl Sized, ProviderError>, words: &[&str]) -> ProviderError {
    let e = r.err().expect("the connection should have been refused");
    let text = e.to_string();
    assert_eq!(e.kind, FailureKind::Tls, "{text}");
    for w in words {
        assert!(text.contains(w), "{w:?} not in: {text}");
    }
    assert!(text.contains("no password was sent"), "{text}");
    eprintln!("refused as expected: {text}");
    e
}

/// A user created through the provider over verify-full, then restricted to TLS.
pub fn tls_user(db: &dyn TlsServer, client_cert: bool) -> Option<(String, String)> {
    let name = unique_name("ska_tls");
    let pw = format!("pw-{}", random_text(16));
    let admin = target(
        db.kind(),
        &db.tls_server(),
        db.pki().settings(TlsMode::VerifyFull),
    );
    open(&admin)
        .unwrap()
        .set_password(&name, &Secret::new(&pw))
        .unwrap();
    if !db.restrict(&name, client_cert) {
        drop_user(db, &name);
        return None;
    }
    Some((name, pw))
}

pub fn drop_user(db: &dyn TlsServer, name: &str) {
    let admin = target(
        db.kind(),
        &db.tls_server(),
        db.pki().settings(TlsMode::VerifyFull),
    );
    let _ = open(&admin).and_then(|mut p| p.drop_user(name));
}

// ---- the checks ----

/// verify-full, verify-ca and require connect, report TLS and what was verified; the
/// managed user's login goes over the same TLS, and a wrong password is still refused.
pub fn modes_that_should_connect_do(db: &dyn TlsServer) {
    let (user, pw) = tls_user(db, false).expect("a TLS-only user");
    let modes: &[TlsMode] = if db.has_verify_ca() {
        &[TlsMode::VerifyFull, TlsMode::VerifyCa, TlsMode::Require]
    } else {
        &[TlsMode::VerifyFull, TlsMode::Require]
    };
    for &mode in modes {
        let t = target(db.kind(), &db.tls_server(), db.pki().settings(mode));
        let mut p = open(&t).unwrap_or_else(|e| panic!("{mode}: {e}"));
        match p.tls_status() {
            TlsStatus::Encrypted { protocol, .. } => {
                assert!(protocol.starts_with("TLSv1."), "{mode}: {protocol}")
            }
            other => panic!("{mode}: the admin connection is not encrypted: {other:?}"),
        }
        let line = p.tls_status().describe(&t.tls);
        eprintln!("{mode}: {line}");
        let expect = match mode {
            TlsMode::VerifyFull => "chain",
            TlsMode::VerifyCa => "host name not checked",
            _ => "not verified",
        };
        assert!(line.contains(expect), "{mode}: {line}");
        p.verify_login(&user, &Secret::new(&pw))
            .unwrap_or_else(|e| panic!("{mode}: login as the TLS-only user: {e}"));
        let e = p
            .verify_login(&user, &Secret::new("wrong-password"))
            .unwrap_err();
        if !mode.verifies() && db.wrong_password_needs_verified_server() {
            // The server asks for the password itself; an unverified peer never gets it.
            assert_eq!(e.kind, FailureKind::Tls, "{mode}: {e}");
            assert!(
                e.to_string().contains("no password was sent"),
                "{mode}: {e}"
            );
        } else {
            assert_eq!(e.kind, FailureKind::AuthRejected, "{mode}: {e}");
        }
    }
    if !db.has_verify_ca() {
        drop_user(db, &user);
        return;
    }
    // verify-ca checks the chain, not the name: the wrong name is fine, the wrong CA not.
    let mut t = target(
        db.kind(),
        &db.tls_server(),
        db.pki().settings(TlsMode::VerifyCa),
    );
    t.host = db.pki().wrong_host.clone();
    open(&t).unwrap_or_else(|e| panic!("verify-ca by another name: {e}"));
    t.tls.ca_file = Some(db.pki().wrong_ca.clone());
    expect_tls_error(open(&t), &["unknown CA", "verify-ca"]);
    drop_user(db, &user);
}

/// A server certificate from an unknown CA, or for another name, ends the connection in
/// the handshake: the right password gets a TLS error and never crosses the wire.
pub fn wrong_ca_and_wrong_name_are_refused_before_the_password(db: &dyn TlsServer) {
    let (user, pw) = tls_user(db, false).expect("a TLS-only user");
    let server = db.tls_server();
    let recorder = Recorder::start(&server.host, server.port);
    let via = Server {
        port: recorder.port,
        ..server.clone()
    };

    let mut wrong_ca = db.pki().settings(TlsMode::VerifyFull);
    wrong_ca.ca_file = Some(db.pki().wrong_ca.clone());
    let t = target(db.kind(), &via, wrong_ca);
    let e = expect_tls_error(open(&t), &["unknown CA", "verify-full", &t.host]);
    assert!(!e.to_string().contains(&server.admin_pass));
    let verify = providers_verify(&t, &user, &pw);
    expect_tls_error(verify, &["unknown CA"]);

    let mut t = target(db.kind(), &via, db.pki().settings(TlsMode::VerifyFull));
    t.host = db.pki().wrong_host.clone();
    let e = expect_tls_error(open(&t), &["name mismatch", "verify-full", "localhost"]);
    assert!(!e.to_string().contains(&server.admin_pass));
    expect_tls_error(providers_verify(&t, &user, &pw), &["name mismatch"]);

    let sent = recorder.sent();
    assert!(!sent.is_empty(), "nothing went through the recorder");
    for secret in [&server.admin_pass, &pw] {
        assert!(
            !contains(&sent, secret.as_bytes()),
            "a password crossed the wire although the handshake failed"
        );
    }
    drop_user(db, &user);
}

/// A login as `user` with `t`'s server and TLS settings, through the same connection
/// code the provider's verify login uses.
fn providers_verify(t: &Target, user: &str, pw: &str) -> Result<(), ProviderError> {
    let mut as_user = t.clone();
    as_user.admin_user = user.to_owned();
    as_user.admin_pass = Secret::new(pw);
    open(&as_user).map(|_| ())
}

/// `require` (and verify-full) against the plaintext-only server: refused, no fallback.
pub fn require_against_plaintext_fails(db: &dyn TlsServer) {
    let plain = db.plain_server();
    for mode in [TlsMode::Require, TlsMode::VerifyFull] {
        let t = target(db.kind(), &plain, db.pki().settings(mode));
        let e = expect_tls_error(open(&t), &[mode.as_str(), &plain.host]);
        let text = e.to_string();
        assert!(
            text.contains("does not offer TLS") || text.contains("did not answer in TLS"),
            "{text}"
        );
        assert!(!text.contains(&plain.admin_pass));
    }
}

/// The TLS server refuses a plaintext session: proof the tests above really used TLS.
pub fn disable_against_the_tls_server_is_refused(db: &dyn TlsServer) {
    let t = target(
        db.kind(),
        &db.tls_server(),
        db.pki().settings(TlsMode::Disable),
    );
    let e = open(&t)
        .err()
        .expect("a plaintext session to the TLS-only server");
    eprintln!("disable refused by the server: {e}");
    assert_ne!(e.kind, FailureKind::Tls, "{e}");
}

/// Mutual TLS: a user that must present a client certificate logs in only with one.
pub fn client_certificate_is_presented(db: &dyn TlsServer) {
    let Some((user, pw)) = tls_user(db, true) else {
        eprintln!(
            "{:?}: the test server cannot demand a client certificate per user",
            db.kind()
        );
        return;
    };
    let base = db.pki().settings(TlsMode::VerifyFull);
    let with_cert = target(
        db.kind(),
        &db.tls_server(),
        db.pki().with_client_cert(base.clone()),
    );
    let without = target(db.kind(), &db.tls_server(), base);
    let p = open(&with_cert).expect("admin with a client certificate");
    p.verify_login(&user, &Secret::new(&pw))
        .expect("login with the client certificate");
    let p = open(&without).unwrap();
    assert!(
        p.verify_login(&user, &Secret::new(&pw)).is_err(),
        "the user logs in without a client certificate"
    );
    drop_user(db, &user);
}

/// The agent itself: `configure --tls verify-full --tls-ca-file`, `test` shows the
/// protocol and the verification, and a rotation confirms with the managed user (TLS
/// only) logging in over the same settings.
pub fn rotation_confirms_with_verify_full(db: &dyn TlsServer) {
    let server = db.tls_server();
    // The server's copy of the connection has no TLS: the local config must supply it.
    let Configured {
        cp,
        machine,
        secret,
        user,
        password: old_pw,
        ..
    } = Configured::new(db, server.port);
    let ca = db.pki().ca.display().to_string();
    let tls = ["--tls", "verify-full", "--tls-ca-file", &ca];
    cli::configure_ok(
        configure_command(&machine, &secret, db, &server.host, server.port, &tls),
        &server.admin_pass,
    );
    let config =
        std::fs::read_to_string(machine.agents_dir().join(format!("{secret}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(v["tls"]["mode"], "verify-full", "{config}");
    assert_eq!(v["connection"]["host"], server.host.as_str(), "{config}");

    let out = cli::run(machine.command(&["test", "--secret", &secret]))
        .expect(Exit::Ok)
        .all();
    assert!(
        out.contains("TLSv1.")
            && out.contains("certificate verified: chain")
            && out.contains("and host name"),
        "{out}"
    );

    let mut agent = machine.spawn_agent(&secret);
    agent.wait_until(SOON, "a healthy heartbeat", || {
        cp.heartbeats(&secret).iter().any(|h| h.status == "healthy")
    });
    let new_pw = format!("new-{}", random_text(16));
    cp.set_pending(&secret, "rot_tls", &secret_value(&user, &new_pw));
    agent.wait_until(SOON, "rotation rot_tls confirmed", || {
        cp.confirms(&secret).iter().any(|r| r == "rot_tls")
    });
    let check = open(&target(
        db.kind(),
        &server,
        db.pki().settings(TlsMode::VerifyFull),
    ))
    .unwrap();
    check
        .verify_login(&user, &Secret::new(&new_pw))
        .expect("the new password works");
    assert_eq!(
        check
            .verify_login(&user, &Secret::new(&old_pw))
            .unwrap_err()
            .kind,
        FailureKind::AuthRejected
    );
    let status = agent.terminate();
    assert!(status.success(), "{}", agent.output());
    let log = agent.output();
    for s in [&old_pw, &new_pw, &server.admin_pass] {
        assert!(
            !log.contains(s.as_str()),
            "a secret in the agent's output:\n{log}"
        );
    }
    drop_user(db, &user);
}

/// `configure` on `machine` for `secret` on `db`'s TLS server, reached as `host`:`port`,
/// with `flags`; the admin password is the caller's to add.
fn configure_command(
    machine: &Machine,
    secret: &str,
    db: &dyn TlsServer,
    host: &str,
    port: u16,
    flags: &[&str],
) -> std::process::Command {
    let server = db.tls_server();
    let port = port.to_string();
    let mut more = vec!["--port", &port];
    if !server.database.is_empty() {
        more.extend(["--database", &server.database]);
    }
    more.extend_from_slice(flags);
    let provider = db.kind().as_str();
    machine.command(&cli::configure_args(
        secret,
        provider,
        host,
        &server.admin_user,
        &more,
    ))
}

/// A secret configured on a fresh machine for `db`'s TLS server, reached through `port`
/// (a recorder in front of it), with the given TLS flags; the managed user is a TLS-only
/// user of its own. Returns what `test` needs and the user to drop.
struct Configured {
    cp: FakeControlPlane,
    machine: Machine,
    secret: String,
    user: String,
    password: String,
    port: u16,
}

impl Configured {
    fn new(db: &dyn TlsServer, port: u16) -> Configured {
        let (user, password) = tls_user(db, false).expect("a TLS-only user");
        let server = db.tls_server();
        let cp = FakeControlPlane::start();
        let machine = Machine::new(&cp);
        let secret = unique_name("sk");
        let connection = json!({"host": server.host, "port": port, "database": server.database,
            "adminUser": server.admin_user, "adminPass": server.admin_pass, "projectReference": ""});
        cp.add_secret(
            &secret,
            SecretState::new(
                db.kind().as_str(),
                connection,
                &user,
                &secret_value(&user, &password),
            ),
        );
        Configured {
            cp,
            machine,
            secret,
            user,
            password,
            port,
        }
    }

    /// `configure` with these TLS flags, with `system_ca` as the system's trust store.
    fn configure(&self, db: &dyn TlsServer, tls: &[&str], system_ca: &std::path::Path) {
        let server = db.tls_server();
        let mut configure = configure_command(
            &self.machine,
            &self.secret,
            db,
            &server.host,
            self.port,
            tls,
        );
        configure.env("SSL_CERT_FILE", system_ca);
        cli::configure_ok(configure, &server.admin_pass);
    }

    /// `test`, with `system_ca` as the system's trust store.
    fn test(&self, system_ca: &std::path::Path) -> cli::Out {
        let mut test = self.machine.command(&["test", "--secret", &self.secret]);
        test.env("SSL_CERT_FILE", system_ca);
        cli::run(test)
    }
}

/// One trust decision: a CA file is the only trust anchor, however trusted the server's
/// real CA is elsewhere (here: it is the whole system store, through SSL_CERT_FILE), and
/// the refusal comes before any password; without a CA file, verify-full trusts the system
/// store and checks the name. `test` says exactly which anchors it checked against.
pub fn the_ca_file_is_the_only_trust_anchor_else_the_system_store(db: &dyn TlsServer) {
    let server = db.tls_server();
    let recorder = Recorder::start(&server.host, server.port);
    let c = Configured::new(db, recorder.port);
    let pki = db.pki();
    let ca = pki.ca.display().to_string();
    let wrong_ca = pki.wrong_ca.display().to_string();
    let modes: &[&str] = if db.has_verify_ca() {
        &["verify-full", "verify-ca"]
    } else {
        &["verify-full"]
    };
    for mode in modes {
        c.configure(db, &["--tls", mode, "--tls-ca-file", &wrong_ca], &pki.ca);
        let out = c.test(&pki.ca);
        let text = out.all();
        assert_eq!(out.code, Exit::CheckFailed as i32, "{mode}: {text}");
        assert!(
            text.contains("FAIL  login") && text.contains("unknown CA") && text.contains(mode),
            "{mode}: {text}"
        );
    }
    let sent = recorder.sent();
    assert!(!sent.is_empty(), "nothing went through the recorder");
    for secret in [&server.admin_pass, &c.password] {
        assert!(
            !contains(&sent, secret.as_bytes()),
            "a password crossed the wire to a server the CA file does not vouch for"
        );
    }

    c.configure(db, &["--tls", "verify-full"], &pki.ca);
    let text = c.test(&pki.ca).expect(Exit::Ok).all();
    assert!(
        text.contains("mode verify-full from the local config")
            && text.contains("chain (the system's trust store, 1 CAs) and host name"),
        "{text}"
    );
    // The same without the server's CA in the system store: refused.
    let text = c.test(&pki.wrong_ca).all();
    assert!(
        text.contains("FAIL  login") && text.contains("unknown CA"),
        "{text}"
    );

    c.configure(
        db,
        &["--tls", "verify-full", "--tls-ca-file", &ca],
        &pki.wrong_ca,
    );
    let text = c.test(&pki.wrong_ca).expect(Exit::Ok).all();
    assert!(
        text.contains(&format!(
            "chain (only CA {ca} (1 certificate; no other roots)) and host name"
        )),
        "{text}"
    );
    drop_user(db, &c.user);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Runs every check for one provider; `$server` is an expression giving
/// `Option<impl TlsServer>` (`None`: skipped, loudly, outside CI). `tls_tests!(versioned
/// $server)`, for the matrix's servers, leaves out `require` against a plaintext-only
/// server: that is the client's behaviour, shown once per provider, and the matrix's
/// servers all offer TLS.
#[macro_export]
macro_rules! tls_tests {
    (versioned $server:expr) => {
        $crate::tls_tests!(@one $server, modes_that_should_connect_do);
        $crate::tls_tests!(@one $server, wrong_ca_and_wrong_name_are_refused_before_the_password);
        $crate::tls_tests!(@one $server, disable_against_the_tls_server_is_refused);
        $crate::tls_tests!(@one $server, client_certificate_is_presented);
        $crate::tls_tests!(@one $server, rotation_confirms_with_verify_full);
    };
    ($server:expr) => {
        $crate::tls_tests!(@one $server, modes_that_should_connect_do);
        $crate::tls_tests!(@one $server, wrong_ca_and_wrong_name_are_refused_before_the_password);
        $crate::tls_tests!(@one $server, require_against_plaintext_fails);
        $crate::tls_tests!(@one $server, disable_against_the_tls_server_is_refused);
        $crate::tls_tests!(@one $server, client_certificate_is_presented);
        $crate::tls_tests!(@one $server, rotation_confirms_with_verify_full);
        $crate::tls_tests!(@one $server, the_ca_file_is_the_only_trust_anchor_else_the_system_store);
    };
    (@one $server:expr, $check:ident) => {
        #[test]
        fn $check() {
            let Some(server) = $server else { return };
            $crate::tls::$check(&server);
        }
    };
}

/// `configure` refuses TLS settings that would not do what they say, and writes nothing.
#[test]
fn configure_refuses_contradictory_or_unreadable_tls_settings() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let dir = crate::support::TempDir::new("tls-conf");
    let not_pem = dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing = dir.path().join("missing.pem");
    let (missing, not_pem) = (missing.display().to_string(), not_pem.display().to_string());
    let cases: &[(&str, &[&str], &str)] = &[
        ("postgresql", &["--tls", "verify_full"], "unknown TLS mode"),
        ("postgresql", &["--tls-ca-file", &missing], "missing.pem"),
        (
            "postgresql",
            &["--tls-ca-file", &not_pem],
            "no PEM certificate",
        ),
        (
            "postgresql",
            &["--tls", "require", "--tls-ca-file", &not_pem],
            "verify-ca and verify-full",
        ),
        (
            "postgresql",
            &["--tls", "disable", "--tls-cert-file", &not_pem],
            "disable",
        ),
        (
            "postgresql",
            &["--tls-key-file", &not_pem],
            "without a client certificate",
        ),
        ("redis", &["--tls", "prefer"], "cannot negotiate TLS"),
        ("mongodb", &["--tls", "verify-ca"], "verify-ca"),
        // A chain to any public root for any name authenticates nothing.
        (
            "postgresql",
            &["--tls", "verify-ca"],
            "verify-ca (from the local config) needs a CA file",
        ),
        ("mysql", &["--tls", "verify-ca"], "needs a CA file"),
        ("redis", &["--tls", "verify-ca"], "needs a CA file"),
    ];
    for (provider, flags, expect) in cases {
        let args = cli::configure_args("sk_tls_conf", provider, "127.0.0.1", "admin", flags);
        let o = machine
            .command(&args)
            .env("SIKKERKEY_ADMIN_PASS", "admin-pass-value")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{provider} {flags:?}: {text}");
        assert!(
            text.contains(expect),
            "{provider} {flags:?}: {expect:?} not in {text}"
        );
        assert!(!machine.agents_dir().join("sk_tls_conf.json").exists());
    }
}

/// libpq's variables, read as libpq reads them, refuse what authenticates nothing:
/// `PGSSLROOTCERT=system` with a weaker `PGSSLMODE` (libpq 16), and `verify-ca` without a
/// root certificate. `test` fails its config check and `start` exits with the config code,
/// both saying why, before any connection.
#[test]
fn libpq_variables_that_authenticate_nothing_are_refused() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let secret = unique_name("sk");
    let connection = json!({"host": "127.0.0.1", "port": cli::closed_port(), "database": "postgres",
        "adminUser": "sk_admin", "adminPass": "admin-pass-value", "projectReference": ""});
    cp.add_secret(
        &secret,
        SecretState::new("postgresql", connection, "app", &secret_value("app", "pw")),
    );
    let port = cli::closed_port().to_string();
    let args = cli::configure_args(
        &secret,
        "postgresql",
        "127.0.0.1",
        "sk_admin",
        &["--port", &port],
    );
    cli::configure_ok(machine.command(&args), "admin-pass-value");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("PGSSLMODE", "require"), ("PGSSLROOTCERT", "system")],
            "PGSSLMODE=require may not be used with PGSSLROOTCERT=system",
        ),
        (
            &[("PGSSLMODE", "verify-ca"), ("PGSSLROOTCERT", "system")],
            "PGSSLMODE=verify-ca may not be used with PGSSLROOTCERT=system",
        ),
        (
            &[("PGSSLMODE", "verify-ca")],
            "verify-ca (from PGSSL* environment variables) needs a CA file",
        ),
    ];
    for (env, expect) in cases {
        let mut test = machine.command(&["test", "--secret", &secret]);
        let mut start = machine.command(&["start", "--secret", &secret]);
        for (k, v) in *env {
            test.env(k, v);
            start.env(k, v);
        }
        let out = cli::run(test).expect(Exit::CheckFailed).all();
        assert!(
            out.contains("FAIL  config") && out.contains(expect),
            "{env:?}: {out}"
        );
        let out = cli::run(start).expect(Exit::Config).all();
        assert!(out.contains(expect), "{env:?}: {out}");
        assert!(!out.contains("admin-pass-value"), "{out}");
    }
    // A local config written by hand (configure refuses it) is refused by start too.
    let path = machine.agents_dir().join(format!("{secret}.json"));
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["tls"] = json!({"mode": "verify-ca"});
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let out = cli::run(machine.command(&["start", "--secret", &secret]))
        .expect(Exit::Config)
        .all();
    assert!(
        out.contains("verify-ca (from the local config) needs a CA file"),
        "{out}"
    );
}

/// A TCP proxy that records what the client sent, to show what did not cross the wire.
pub struct Recorder {
    pub port: u16,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    pub fn start(host: &str, port: u16) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap().port();
        let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
        let target = format!("{host}:{port}");
        let record = sent.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let record = record.clone();
                thread::spawn(move || copy(client, server, Some(record)));
                thread::spawn(move || copy(s2, c2, None));
            }
        });
        Recorder { port: local, sent }
    }

    pub fn sent(&self) -> Vec<u8> {
        self.sent.lock().unwrap().clone()
    }
}

fn copy(mut from: TcpStream, mut to: TcpStream, record: Option<Arc<Mutex<Vec<u8>>>>) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        if let Some(r) = &record {
            r.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
