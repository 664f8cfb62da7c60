//! MongoDB over TLS: the TLS-only server from tests/services/tls/mongo.sh (SecantusDB, or
//! mongod with requireTLS, with the run's certificates; auth on), and the plaintext-only
//! main server for `require`. All users of that server are TLS-only. Neither test server
//! can demand a client certificate per user, so the mutual-TLS check is skipped (it says
//! so), and the driver has no verify-ca (the settings refuse it for MongoDB).

use sikkerkey_agent::providers::ProviderKind;

use super::{Pki, Server, Servers, TlsServer};

/// A TLS-only MongoDB server and a plaintext-only one (also the matrix's mongod).
pub struct MongoTls {
    pub pair: Servers,
}

fn from_env() -> Option<MongoTls> {
    let server = |prefix: &str| Server::from_env(prefix, "MongoDB", "");
    Some(MongoTls {
        pair: Servers {
            kind: ProviderKind::Mongodb,
            pki: Pki::from_env("MongoDB over TLS")?,
            tls: server("MONGOTLS")?,
            plain: server("MONGO")?,
        },
    })
}

impl TlsServer for MongoTls {
    fn servers(&self) -> &Servers {
        &self.pair
    }
    /// Every user of a TLS-only server is TLS-only; neither SecantusDB nor mongod can
    /// demand a client certificate of one user.
    fn restrict(&self, _name: &str, client_cert: bool) -> bool {
        !client_cert
    }
    fn has_verify_ca(&self) -> bool {
        false
    }
}

crate::tls_tests!(from_env());
