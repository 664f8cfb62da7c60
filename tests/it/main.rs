//! The integration test binary: the real agent binary against a fake control plane and real
//! databases started by `make test` (tests/services/run.sh). `support/` is what tests
//! share (and all the bench and the demo include); each other module is a part of the
//! specification: the management commands, the agent's lifecycle, the scenarios every
//! provider must survive, what is particular to each database, who may be given a
//! password (`transport.rs`), and the layering rules of src/.

mod support;

mod cli_docs;
mod commands;
mod completions;
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "redis",
    feature = "mongodb"
))]
mod drift;
mod healing;
mod layering;
#[cfg(feature = "postgres")]
mod lifecycle;
mod matrix;
mod monitoring;
mod ops;
mod scenarios;
mod tls;
mod transport;

#[cfg(feature = "mysql")]
mod mysql;

#[cfg(feature = "mysql")]
mod mysql_localhost;

#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "postgres")]
mod postgres_provider;

#[cfg(feature = "postgres")]
mod official;

#[cfg(feature = "postgres")]
mod hung_database;

#[cfg(feature = "postgres")]
mod watched;

#[cfg(feature = "postgres")]
mod damaged_journal;

#[cfg(feature = "postgres")]
mod nologin;

#[cfg(feature = "postgres")]
mod control_plane_tls;

#[cfg(feature = "mongodb")]
mod mongodb;

#[cfg(feature = "postgres")]
mod pg_privileges;

#[cfg(feature = "postgres")]
mod systemd;

#[cfg(any(feature = "mysql", feature = "postgres"))]
mod statement_logs;
