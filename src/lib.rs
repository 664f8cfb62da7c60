//! sikkerkey-agent: applies SikkerKey managed-secret password rotations to a database next
//! to it, so the new credential is live in the database before anyone reads it.
//!
//! The binary (`main.rs`) only parses, dispatches and maps errors to exit codes; everything
//! else lives in these modules so tests can call it. See ARCHITECTURE.md for the map.

pub mod agent;
pub mod api;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod defaults;
pub mod exit;
pub mod files;
pub mod fsutil;
pub mod help;
pub mod hex;
pub mod identity;
pub mod json_problem;
pub mod localconfig;
pub mod logging;
pub mod memory;
pub mod pidfile;
pub mod providers;
pub mod secret;
pub mod secret_file;
pub mod service;
pub mod settings;
pub mod suggest;
pub mod tls_failure;
pub mod trust;
