//! Redis over TLS: each check starts a redis-server whose only port is a `tls-port` with
//! the run's certificates (so every session is TLS), and one with only a plaintext port
//! for `require`. Redis cannot demand a client certificate per user, so the mutual-TLS
//! check is skipped here (it says so); the client certificate path is the driver's
//! `TlsCertificates`, the same one the CA takes.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ::redis::{
    Client, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates,
};
use sikkerkey_agent::providers::ProviderKind;

use super::{Pki, Server, Servers, TlsServer};
use crate::support::{TempDir, random_text, require_env};

/// A redis-server of the check's own, killed on drop.
struct Process {
    child: Child,
    _dir: TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct RedisTls {
    pair: Servers,
    _servers: Vec<Process>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn connect(
    port: u16,
    ca: Option<&PathBuf>,
    client: Option<(&PathBuf, &PathBuf)>,
) -> Result<::redis::Connection, ::redis::RedisError> {
    let settings = RedisConnectionInfo::default().set_skip_set_lib_name();
    let client = match ca {
        Some(ca) => Client::build_with_tls(
            ConnectionAddr::TcpTls {
                host: "127.0.0.1".into(),
                port,
                insecure: false,
                tls_params: None,
            }
            .into_connection_info()?
            .set_redis_settings(settings),
            TlsCertificates {
                client_tls: client.map(|(cert, key)| ClientTlsConfig {
                    client_cert: std::fs::read(cert).unwrap(),
                    client_key: std::fs::read(key).unwrap(),
                }),
                root_cert: Some(std::fs::read(ca).unwrap()),
            },
        )?,
        None => Client::open(
            ConnectionAddr::Tcp("127.0.0.1".into(), port)
                .into_connection_info()?
                .set_redis_settings(settings),
        )?,
    };
    client.get_connection_with_timeout(Duration::from_secs(5))
}

/// Starts redis-server (TLS-only when `tls`; `auth_clients` is its tls-auth-clients),
/// waits for it, creates the admin.
fn start(bin: &str, pki: &Pki, tls: bool, auth_clients: &str) -> (Process, Server) {
    let dir = TempDir::new("redis-tls");
    let port = free_port();
    let mut cmd = Command::new(bin);
    let d = dir.path().display().to_string();
    cmd.args([
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &d,
    ]);
    cmd.arg("--logfile").arg(dir.path().join("redis.log"));
    if tls {
        cmd.args(["--port", "0", "--tls-port", &port.to_string()]);
        cmd.arg("--tls-cert-file")
            .arg(std::env::var("SKA_TLS_SERVER_CERT").unwrap());
        cmd.arg("--tls-key-file")
            .arg(std::env::var("SKA_TLS_SERVER_KEY").unwrap());
        cmd.arg("--tls-ca-cert-file").arg(&pki.ca);
        cmd.args(["--tls-auth-clients", auth_clients]);
    } else {
        cmd.args(["--port", &port.to_string()]);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process { child, _dir: dir };
    let ca = tls.then_some(&pki.ca);
    let end = Instant::now() + Duration::from_secs(20);
    let mut conn = loop {
        match connect(port, ca, Some((&pki.client_cert, &pki.client_key))) {
            Ok(c) => break c,
            Err(e) if Instant::now() > end => panic!(
                "redis-server did not answer within 20 s: {e}; log:\n{}",
                std::fs::read_to_string(process._dir.path().join("redis.log")).unwrap_or_default()
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let admin_pass = format!("adm-{}", random_text(16));
    ::redis::cmd("ACL")
        .arg(&["SETUSER", "ska_admin", "on"][..])
        .arg(format!(">{admin_pass}"))
        .arg(&["~*", "&*", "+@all"][..])
        .query::<()>(&mut conn)
        .unwrap();
    ::redis::cmd("ACL")
        .arg(&["SETUSER", "default", "resetpass", "on"][..])
        .arg(format!(">{}", random_text(16)))
        .query::<()>(&mut conn)
        .unwrap();
    let server = Server {
        host: "127.0.0.1".into(),
        port,
        admin_user: "ska_admin".into(),
        admin_pass,
        database: String::new(),
    };
    (process, server)
}

fn from_env() -> Option<RedisTls> {
    from_bin_env("SKA_REDIS_SERVER", "Redis")
}

/// A TLS-only and a plaintext-only server of the binary that environment variable `var`
/// names (the base Redis, or one of the matrix's Valkey and Redis versions).
pub fn from_bin_env(var: &str, service: &str) -> Option<RedisTls> {
    let bin = require_env(var, service)?;
    let pki = Pki::from_env("Redis over TLS")?;
    let (p1, tls) = start(&bin, &pki, true, "optional");
    let (p2, plain) = start(&bin, &pki, false, "no");
    Some(RedisTls {
        pair: Servers {
            kind: ProviderKind::Redis,
            pki,
            tls,
            plain,
        },
        _servers: vec![p1, p2],
    })
}

impl TlsServer for RedisTls {
    fn servers(&self) -> &Servers {
        &self.pair
    }
    /// The server's only port is its tls-port: every user is TLS-only. Redis has no
    /// per-user client certificate requirement.
    fn restrict(&self, _name: &str, client_cert: bool) -> bool {
        !client_cert
    }
}

crate::tls_tests!(from_env());

/// Redis cannot demand a client certificate per user, but a server can demand one of
/// every client (`tls-auth-clients yes`): the admin and the verify login then work only
/// with `--tls-cert-file`/`--tls-key-file`.
#[test]
fn a_server_that_demands_client_certificates_gets_one() {
    use sikkerkey_agent::providers::{FailureKind, TlsMode};
    use sikkerkey_agent::secret::Secret;
    let Some(bin) = require_env("SKA_REDIS_SERVER", "Redis") else {
        return;
    };
    let Some(pki) = Pki::from_env("Redis over TLS") else {
        return;
    };
    let (_process, server) = start(&bin, &pki, true, "yes");
    let with_cert = pki.with_client_cert(pki.settings(TlsMode::VerifyFull));
    let t = super::target(ProviderKind::Redis, &server, with_cert);
    let mut admin = sikkerkey_agent::providers::open(&t).expect("admin with a client certificate");
    let user = crate::support::unique_name("ska_mtls");
    let pw = format!("pw-{}", random_text(16));
    admin.set_password(&user, &Secret::new(&pw)).unwrap();
    admin
        .verify_login(&user, &Secret::new(&pw))
        .expect("verify login with the client certificate");

    let without = super::target(
        ProviderKind::Redis,
        &server,
        pki.settings(TlsMode::VerifyFull),
    );
    let e = sikkerkey_agent::providers::open(&without)
        .err()
        .expect("a session without a client certificate");
    eprintln!("refused as expected: {e}");
    assert_eq!(e.kind, FailureKind::Tls, "{e}");
    assert!(e.to_string().contains("client certificate"), "{e}");
}
