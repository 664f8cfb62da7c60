//! Database TLS: one vocabulary for every provider (libpq's `sslmode` names), where the
//! settings come from (local config, libpq's environment, the provider's default), the
//! rustls client configuration each mode stands for, and the words for a failed handshake.
//!
//! One trust decision for every provider: with a CA file, exactly the certificates in that
//! file are trusted (no bundled or system roots beside them); without one, `verify-full`
//! trusts the system's store and checks the name, and `verify-ca` is refused, since a chain
//! to any public root for any name authenticates nothing. The drivers differ in how they
//! take TLS settings; each provider hands its driver the trust anchors decided here
//! ([`TlsSettings::client_config`], [`TlsSettings::trust_anchors_pem`]).
//!
//! Whatever the driver, a handshake completes (and, in the verify modes, the certificate is
//! checked) before any credential is sent, and no mode but `prefer` ever falls back to
//! plaintext. What a login may reveal on a connection that is *not* verified is decided by
//! [`TlsSettings::authenticates_server`] and explained by [`password_refusal`].
//!
//! `mode.rs` names the modes, `settings.rs` resolves and checks them, `anchors.rs` and
//! `files.rs` read what they trust and present, `verifiers.rs` builds the rustls
//! configuration, `failure.rs` has the words for what was refused or failed, `probe.rs`
//! shows what a connection negotiated.

mod anchors;
mod failure;
mod files;
mod mode;
mod probe;
mod settings;
mod verifiers;

pub use anchors::{AnchorSource, TrustAnchors};
pub use failure::{Unverified, explain_failure, explain_text, password_refusal};
pub use files::TlsError;
pub use mode::TlsMode;
pub use probe::{ProbeFailure, TlsStatus, probe};
pub use settings::{LocalTls, TlsOrigin, TlsSettings};
