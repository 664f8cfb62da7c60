//! PostgreSQL over TLS: the cluster from tests/services/tls/postgres.sh (ssl = on, every
//! TCP login without TLS rejected, members of ska_mtls need a client certificate), and
//! the plaintext-only main cluster for `require`.

use postgres::Client;
use sikkerkey_agent::providers::{ProviderKind, TlsMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Pki, Server, TlsServer};
use crate::support::require_env;

struct PgTls {
    pki: Pki,
    tls: Server,
    plain: Server,
}

fn from_env() -> Option<PgTls> {
    let server = |prefix: &str| -> Option<Server> {
        Some(Server {
            host: require_env(&format!("SKA_{prefix}_HOST"), "PostgreSQL")?,
            port: require_env(&format!("SKA_{prefix}_PORT"), "PostgreSQL")?
                .parse()
                .unwrap(),
            admin_user: require_env(&format!("SKA_{prefix}_ADMIN_USER"), "PostgreSQL")?,
            admin_pass: require_env(&format!("SKA_{prefix}_ADMIN_PASS"), "PostgreSQL")?,
            database: "postgres".into(),
        })
    };
    Some(PgTls {
        pki: Pki::from_env("PostgreSQL over TLS")?,
        tls: server("PGTLS")?,
        plain: server("PG")?,
    })
}

impl PgTls {
    fn admin(&self) -> Client {
        let config = self
            .pki
            .settings(TlsMode::VerifyFull)
            .client_config()
            .unwrap();
        postgres::Config::new()
            .host(&self.tls.host)
            .port(self.tls.port)
            .user(&self.tls.admin_user)
            .password(&self.tls.admin_pass)
            .dbname("postgres")
            .ssl_mode(postgres::config::SslMode::Require)
            .connect(MakeRustlsConnect::new(config))
            .expect("admin login to the TLS cluster")
    }
}

impl TlsServer for PgTls {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Postgresql
    }
    fn pki(&self) -> &Pki {
        &self.pki
    }
    fn tls_server(&self) -> Server {
        self.tls.clone()
    }
    fn plain_server(&self) -> Server {
        self.plain.clone()
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
