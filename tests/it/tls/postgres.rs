//! PostgreSQL over TLS: the cluster from tests/services/tls/postgres.sh (ssl = on, every
//! TCP login without TLS rejected, members of ska_mtls need a client certificate), and
//! the plaintext-only main cluster for `require`.

use postgres::Client;
use sikkerkey_agent::providers::{FailureKind, ProviderKind, TlsMode};
use sikkerkey_agent::secret::Secret;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Pki, Server, Servers, TlsServer};
use crate::support::assertions::Exit;
use crate::support::cli;

struct PgTls {
    pair: Servers,
}

fn from_env() -> Option<PgTls> {
    let server = |prefix: &str| Server::from_env(prefix, "PostgreSQL", "postgres");
    Some(PgTls {
        pair: Servers {
            kind: ProviderKind::Postgresql,
            pki: Pki::from_env("PostgreSQL over TLS")?,
            tls: server("PGTLS")?,
            plain: server("PG")?,
        },
    })
}

impl PgTls {
    fn admin(&self) -> Client {
        let config = self
            .pair
            .pki
            .settings(TlsMode::VerifyFull)
            .client_config()
            .unwrap();
        postgres::Config::new()
            .host(&self.pair.tls.host)
            .port(self.pair.tls.port)
            .user(&self.pair.tls.admin_user)
            .password(&self.pair.tls.admin_pass)
            .dbname("postgres")
            .ssl_mode(postgres::config::SslMode::Require)
            .connect(MakeRustlsConnect::new(config))
            .expect("admin login to the TLS cluster")
    }
}

impl TlsServer for PgTls {
    fn servers(&self) -> &Servers {
        &self.pair
    }
    /// Every role of this cluster is TLS-only already (pg_hba); ska_mtls adds the
    /// client certificate.
    fn restrict(&self, name: &str, client_cert: bool) -> bool {
        if client_cert {
            let sql = format!("GRANT ska_mtls TO \"{}\"", name.replace('"', "\"\""));
            self.admin().batch_execute(&sql).unwrap();
        }
        true
    }
}

crate::tls_tests!(from_env());

/// libpq's PGSSL* variables apply when the local config has no `tls` object, and a `tls`
/// object wins over them.
#[test]
fn pgssl_environment_applies_and_yields_to_the_local_config() {
    let Some(pg) = from_env() else { return };
    let s = &pg.pair.tls;
    let c = super::Configured::new(&pg, s.port);
    let configure = |extra: &[&str]| {
        let command = super::configure_command(&c.machine, &c.secret, &pg, &s.host, s.port, extra);
        cli::configure_ok(command, &s.admin_pass);
    };
    let test = |ca: &std::path::Path| {
        let mut test = c.machine.command(&["test", "--secret", &c.secret]);
        test.env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", ca);
        cli::run(test)
    };
    configure(&[]);
    let out = test(&pg.pair.pki.ca).expect(Exit::Ok).all();
    assert!(
        out.contains("mode verify-full from PGSSL* environment") && out.contains("and host name"),
        "{out}"
    );
    let refused = test(&pg.pair.pki.wrong_ca);
    let out = refused.all();
    assert_ne!(refused.code, 0, "{out}");
    assert!(
        out.contains("FAIL  login") && out.contains("unknown CA") && out.contains("verify-full"),
        "{out}"
    );
    // The local config's tls object wins over the environment.
    configure(&["--tls", "require"]);
    let out = test(&pg.pair.pki.wrong_ca).expect(Exit::Ok).all();
    assert!(out.contains("mode require from the local config"), "{out}");
    super::drop_user(&pg, &c.user);
}

/// `PGSSLROOTCERT=system` is the system's trust store, and makes verify-full the mode, as
/// in libpq 16: the name is checked, so a certificate for another name is refused.
#[test]
fn pgsslrootcert_system_means_verify_full_against_the_system_store() {
    let Some(pg) = from_env() else { return };
    let s = &pg.pair.tls;
    let c = super::Configured::new(&pg, s.port);
    let configure = |host: &str| {
        let command = super::configure_command(&c.machine, &c.secret, &pg, host, s.port, &[]);
        cli::configure_ok(command, &s.admin_pass);
    };
    let test = || {
        let mut test = c.machine.command(&["test", "--secret", &c.secret]);
        test.env("PGSSLROOTCERT", "system")
            .env("SSL_CERT_FILE", &pg.pair.pki.ca);
        cli::run(test)
    };
    configure(&s.host);
    let out = test().expect(Exit::Ok).all();
    assert!(
        out.contains("mode verify-full from PGSSL* environment")
            && out.contains("chain (the system's trust store, 1 CAs) and host name"),
        "{out}"
    );
    configure(&pg.pair.pki.wrong_host);
    let out = test().all();
    assert!(
        out.contains("FAIL  login") && out.contains("name mismatch"),
        "{out}"
    );
    super::drop_user(&pg, &c.user);
}

/// A role whose pg_hba method is "password" (the server asks for it in clear): the agent
/// gives it to the real server over verified TLS and over its Unix socket, and refuses
/// over TLS it did not verify.
#[test]
fn cleartext_password_requests_are_answered_only_over_verified_tls() {
    let Some(pg) = from_env() else { return };
    let (user, pw) = super::tls_user(&pg, false).unwrap();
    let sql = format!("GRANT ska_pwauth TO \"{}\"", user.replace('"', "\"\""));
    pg.admin().batch_execute(&sql).unwrap();
    let login = |mode: TlsMode, password: &str| {
        let mut t = super::target(
            ProviderKind::Postgresql,
            &pg.pair.tls,
            pg.pair.pki.settings(mode),
        );
        t.admin_user = user.clone();
        t.admin_pass = Secret::new(password);
        sikkerkey_agent::providers::verify_only(&t, &user, &Secret::new(password))
    };
    for mode in [TlsMode::VerifyFull, TlsMode::VerifyCa] {
        login(mode, &pw).unwrap_or_else(|e| panic!("{mode}: {e}"));
        let e = login(mode, "wrong-password").unwrap_err();
        assert_eq!(e.kind, FailureKind::AuthRejected, "{mode}: {e}");
    }
    // The server's Unix socket never leaves the machine: whoever listens there is the
    // server, so the password may go there in any mode (sslmode does not apply).
    let socket_dir = crate::support::require_env("SKA_PGTLS_SOCKET_DIR", "PostgreSQL over TLS")
        .expect("the TLS cluster's socket directory");
    let mut t = super::target(
        ProviderKind::Postgresql,
        &pg.pair.tls,
        pg.pair.pki.settings(TlsMode::Prefer),
    );
    t.host = socket_dir;
    sikkerkey_agent::providers::verify_only(&t, &user, &Secret::new(&pw))
        .expect("a cleartext login over the Unix socket");
    let e = sikkerkey_agent::providers::verify_only(&t, &user, &Secret::new("wrong-password"))
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::AuthRejected, "{e}");
    for mode in [TlsMode::Require, TlsMode::Prefer] {
        let e = login(mode, &pw).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.kind, FailureKind::Tls, "{mode}: {text}");
        assert!(
            text.contains("in clear") && text.contains("certificate was not checked"),
            "{mode}: {text}"
        );
        assert!(!text.contains(&pw));
    }
    super::drop_user(&pg, &user);
}
