//! PostgreSQL 13, 14, 16, 17 and 18 (15 is the base cluster, tests/it/postgres.rs). Each
//! version's cluster demands scram-sha-256, has TLS on with the run's CA, and logs to a
//! file the statement-log check reads. Its TLS admin `ska_tls_admin` and the users the
//! TLS checks restrict belong to `ska_tls_only`, which pg_hba refuses without TLS
//! (`ska_mtls` also needs a client certificate); everyone else may use plaintext, so one
//! cluster serves both kinds of test. From 16 on, the CREATEROLE-without-ADMIN-OPTION
//! rules are checked against the server.

use std::path::PathBuf;

use sikkerkey_agent::providers::ProviderKind;

use crate::support::db::postgres::{Pg, ident};
use crate::tls::{Pki, Server, Servers, TlsServer};

/// One matrix cluster seen by the TLS checks: `tls` logs in as the TLS-only admin, `plain`
/// as the plaintext one, both to the same server.
pub struct PgTls {
    pg: Pg,
    pair: Servers,
}

pub fn open(prefix: &str) -> Option<Pg> {
    Pg::from_env(prefix, &format!("the matrix server {prefix}"))
}

pub fn tls_server(prefix: &str) -> Option<PgTls> {
    let pg = open(prefix)?;
    let server = |user: String, pass: String| Server {
        host: pg.host.clone(),
        port: pg.port,
        admin_user: user,
        admin_pass: pass,
        database: "postgres".into(),
    };
    let tls = server(
        super::var(prefix, "TLS_ADMIN_USER")?,
        super::var(prefix, "TLS_ADMIN_PASS")?,
    );
    let plain = server(pg.admin_user.clone(), pg.admin_pass.clone());
    Some(PgTls {
        pair: Servers {
            kind: ProviderKind::Postgresql,
            pki: Pki::from_env(&format!("the matrix server {prefix} over TLS"))?,
            tls,
            plain,
        },
        pg,
    })
}

impl TlsServer for PgTls {
    fn servers(&self) -> &Servers {
        &self.pair
    }
    fn restrict(&self, name: &str, client_cert: bool) -> bool {
        self.pg
            .exec(&format!("GRANT ska_tls_only TO {}", ident(name)));
        if client_cert {
            self.pg.exec(&format!("GRANT ska_mtls TO {}", ident(name)));
        }
        true
    }
}

pub fn log_path(prefix: &str) -> PathBuf {
    super::var(prefix, "LOG")
        .expect("the matrix server's log path")
        .into()
}

/// Every check for one PostgreSQL version; extra items (the 16+ checks) go in its module.
macro_rules! postgres_version {
    ($module:ident, $prefix:literal $(, $extra:item)*) => {
        pub mod $module {
            use crate::support::db::db_test;

            crate::scenarios::shared_scenarios!($crate::matrix::postgres::open($prefix), verify_fails_rolls_back);
            crate::scenarios::timeout_scenarios!($crate::matrix::postgres::open($prefix));
            crate::tls_tests!(versioned $crate::matrix::postgres::tls_server($prefix));

            db_test!(statement_log_never_sees_the_new_password, $crate::matrix::postgres::open($prefix), |pg| {
                crate::statement_logs::postgres_log_never_sees_the_new_password(
                    pg,
                    &$crate::matrix::postgres::log_path($prefix),
                )
            });
            db_test!(rollback_restores_the_exact_stored_verifier, $crate::matrix::postgres::open($prefix), |pg| {
                crate::postgres::rollback_puts_back_the_exact_verifier(pg)
            });
            db_test!(
                a_database_frozen_mid_statement_is_reported_and_settles,
                $crate::matrix::postgres::open($prefix),
                |pg| crate::hung_database::frozen_mid_statement_is_reported_and_settles(pg)
            );
            db_test!(admin_option_is_demanded_where_the_version_needs_it, $crate::matrix::postgres::open($prefix), |pg| {
                crate::pg_privileges::admin_option_is_demanded_where_the_version_needs_it(pg)
            });
            db_test!(a_superuser_role_is_refused, $crate::matrix::postgres::open($prefix), |pg| {
                crate::pg_privileges::a_superuser_role_is_refused(pg)
            });
            $($extra)*
        }
    };
}

/// PostgreSQL 16 and later: CREATEROLE no longer implies the right to alter a role.
macro_rules! createrole_without_admin_option {
    ($prefix:literal) => {
        db_test!(
            without_admin_option_a_rotation_is_rejected_with_the_grant,
            $crate::matrix::postgres::open($prefix),
            |pg| crate::pg_privileges::without_admin_option_a_rotation_is_rejected_with_the_grant(
                pg
            )
        );
        db_test!(
            a_role_the_admin_created_needs_no_grant,
            $crate::matrix::postgres::open($prefix),
            |pg| { crate::pg_privileges::a_role_the_admin_created_needs_no_grant(pg) }
        );
    };
}
