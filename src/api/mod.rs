//! The SikkerKey control-plane client: the five calls the agent makes, every one signed,
//! every one bounded by timeouts, and every failure classified so the runtime knows whether
//! to stop, wait for the lock, or retry. `client.rs` makes the calls, `wire.rs` holds the
//! wire format, `error.rs` the failures, `proxy.rs` the proxy settings.
//!
//! This is the only module that speaks HTTP.

mod client;
mod error;
mod proxy;
mod wire;

pub use client::{ApiClient, HttpTimeouts};
pub use error::{ApiError, ClientSetupError, ErrorClass};
pub use proxy::PROXY_VARIABLES;
pub use wire::{
    Connection, Health, HeartbeatBody, HeartbeatStatus, MAX_POLL_SECS, MIN_POLL_SECS,
    PendingRotation, SyncConfig,
};
