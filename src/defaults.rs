//! The product's default intervals and timeouts, in one place: the runtime
//! (`agent::Timing`), the control-plane client (`api::HttpTimeouts`), the database
//! providers (`providers::DbTimeouts`) and the service unit's own timeouts
//! (`service/timeouts.rs`, derived from these) all read these numbers. Tests shorten
//! them through `settings::TestKnobs`.

use std::time::Duration;

/// How often the heartbeat thread reports to the control plane.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A job running longer than this turns the heartbeat to "error"; twice this, the agent
/// exits so the service manager restarts it.
pub const JOB_DEADLINE: Duration = Duration::from_secs(120);
/// Connecting to the control plane.
pub const HTTP_CONNECT: Duration = Duration::from_secs(10);
/// One whole control-plane call (connect, send, receive).
pub const HTTP_TOTAL: Duration = Duration::from_secs(30);
/// Connecting to a database, handshake and login included.
pub const DB_CONNECT: Duration = Duration::from_secs(10);
/// One database statement or command.
pub const DB_STATEMENT: Duration = Duration::from_secs(15);
