//! The integration test binary: the real agent binary against a fake control plane and real
//! databases started by `make test` (tests/services/run.sh).

mod support;

mod commands;
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "redis",
    feature = "mongodb"
))]
mod drift;
mod healing;
mod layering;
mod scenarios;

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

#[cfg(feature = "mongodb")]
mod mongodb;
