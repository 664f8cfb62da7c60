//! The server matrix: the shared scenarios, the TLS checks, the statement logs
//! and each database's own checks, run against every server version users run, beside
//! the base set the other modules test (PostgreSQL 15, MariaDB 10.11, Redis 7,
//! SecantusDB). tests/services/matrix.sh starts the servers (once per run, shared by all
//! tests) and exports `SKA_<KEY>_*`; each version is a module here, so every test name
//! carries it: `matrix::pg16::rotation_confirmed`. `make test` prints the support table
//! from those names (tests/support-table.sh); `make test-quick` skips `matrix::`.
//!
//! Under CI a server that did not start is a failed test, never a skip.

// Each family's helpers and its version macro; the versions are declared below, as
// modules of this one.
#[cfg(feature = "mongodb")]
mod mongodb;
#[cfg(feature = "mysql")]
#[macro_use]
mod mysql;
#[cfg(feature = "postgres")]
#[macro_use]
mod postgres;
#[cfg(feature = "redis")]
#[macro_use]
mod redis;

/// `SKA_{prefix}_{name}` from tests/services/matrix.sh, or `None` (a skip outside CI, a
/// failure under it).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub fn var(prefix: &str, name: &str) -> Option<String> {
    crate::support::require_env(
        &format!("SKA_{prefix}_{name}"),
        &format!("the matrix server {prefix}"),
    )
}

// ---- PostgreSQL (15 is the base cluster) ----
#[cfg(feature = "postgres")]
postgres_version!(pg13, "PG13");
#[cfg(feature = "postgres")]
postgres_version!(pg14, "PG14");
#[cfg(feature = "postgres")]
postgres_version!(pg16, "PG16", createrole_without_admin_option!("PG16"););
#[cfg(feature = "postgres")]
postgres_version!(pg17, "PG17", createrole_without_admin_option!("PG17"););
#[cfg(feature = "postgres")]
postgres_version!(pg18, "PG18", createrole_without_admin_option!("PG18"););

// ---- Oracle MySQL 9 (5000 and 10000 rounds) and MariaDB 11 (10.11 is the base) ----
#[cfg(feature = "mysql")]
mysql_version!(mysql9, "MYSQL9", caching_sha2!("MYSQL9"););
#[cfg(feature = "mysql")]
mysql_version!(mysql9r5000, "MYSQL9R5000", caching_sha2!("MYSQL9R5000"););
#[cfg(feature = "mysql")]
mysql_version!(mariadb11, "MARIADB11");

// ---- Valkey and Redis (Redis 7 is the base) ----
#[cfg(feature = "redis")]
redis_version!(valkey8, "SKA_VALKEY8_SERVER_BIN");
#[cfg(feature = "redis")]
redis_version!(valkey9, "SKA_VALKEY9_SERVER_BIN");
#[cfg(feature = "redis")]
redis_version!(redis8, "SKA_REDIS8_SERVER_BIN");

// ---- mongod 6.0 (SecantusDB is the base) ----
#[cfg(feature = "mongodb")]
pub mod mongo6 {
    use crate::support::db::db_test;

    crate::scenarios::shared_scenarios!(crate::matrix::mongodb::open("MONGO6"));
    crate::scenarios::timeout_scenarios!(crate::matrix::mongodb::open("MONGO6"));

    db_test!(
        scram_mechanisms_are_kept,
        crate::matrix::mongodb::open("MONGO6"),
        |m| { crate::matrix::mongodb::scram_mechanisms_are_kept(m, None) }
    );
    db_test!(
        official_agent_rotates,
        crate::matrix::mongodb::open("MONGO6"),
        |m| { crate::matrix::mongodb::official_agent_rotates(m) }
    );
}

#[cfg(feature = "mongodb")]
pub mod mongo6rs {
    use crate::support::db::db_test;

    crate::tls_tests!(crate::matrix::mongodb::tls_pair("MONGO6RS", "MONGO6"));

    db_test!(
        scram_mechanisms_are_kept_over_tls,
        crate::matrix::mongodb::open_tls("MONGO6RS"),
        |m| {
            let pki = crate::tls::Pki::from_env("the run's test CA").unwrap();
            crate::matrix::mongodb::scram_mechanisms_are_kept(m, Some(&pki))
        }
    );
}
