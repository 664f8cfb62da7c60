//! MySQL/MariaDB over TLS: the MariaDB from tests/services/tls/mariadb.sh (ssl_cert and
//! ssl_key from the run's CA, admin REQUIRE SSL; the tests make their users REQUIRE SSL,
//! or REQUIRE X509 for mutual TLS), and the plaintext-only main MariaDB for `require`.

use ::mysql::prelude::Queryable;
use ::mysql::{Conn, OptsBuilder, SslOpts};
use sikkerkey_agent::providers::ProviderKind;

use super::{Pki, Server, Servers, TlsServer};

struct MyTls {
    pair: Servers,
}

fn from_env() -> Option<MyTls> {
    let server = |prefix: &str| Server::from_env(prefix, "MariaDB", "");
    Some(MyTls {
        pair: Servers {
            kind: ProviderKind::Mysql,
            pki: Pki::from_env("MariaDB over TLS")?,
            tls: server("MYSQLTLS")?,
            plain: server("MYSQL")?,
        },
    })
}

impl MyTls {
    fn admin(&self) -> Conn {
        Conn::new(
            OptsBuilder::new()
                .ip_or_hostname(Some(self.pair.tls.host.clone()))
                .tcp_port(self.pair.tls.port)
                .user(Some(&self.pair.tls.admin_user))
                .pass(Some(&self.pair.tls.admin_pass))
                .prefer_socket(false)
                .ssl_opts(SslOpts::default().with_root_cert_path(Some(self.pair.pki.ca.clone()))),
        )
        .expect("admin login to the TLS MariaDB")
    }
}

impl TlsServer for MyTls {
    fn servers(&self) -> &Servers {
        &self.pair
    }
    fn restrict(&self, name: &str, client_cert: bool) -> bool {
        let mut admin = self.admin();
        let hosts: Vec<String> = admin
            .exec("SELECT Host FROM mysql.user WHERE User = ?", (name,))
            .unwrap();
        assert!(!hosts.is_empty(), "no account {name}");
        let require = if client_cert { "X509" } else { "SSL" };
        for host in hosts {
            admin
                .query_drop(format!(
                    "ALTER USER '{}'@'{}' REQUIRE {require}",
                    name.replace('\'', "''"),
                    host.replace('\'', "''")
                ))
                .unwrap();
        }
        true
    }
}

crate::tls_tests!(from_env());
