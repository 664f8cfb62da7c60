//! Process exit codes, in one place so README.md, the systemd unit's
//! `RestartPreventExitStatus=` and the code agree.

/// Clean stop: a signal, or the secret was deleted / access revoked while running.
pub const OK: i32 = 0;
/// Any other runtime failure.
pub const FAILURE: i32 = 1;
/// The command line is wrong.
pub const USAGE: i32 = 2;
/// Identity, local config or provider configuration is unusable (fix files, then restart).
pub const CONFIG: i32 = 3;
/// Another machine holds the agent lock for this secret (HTTP 409).
pub const LOCKED: i32 = 4;
/// At start-up the secret does not exist or this machine has no access (HTTP 404/403).
pub const SECRET_GONE: i32 = 5;
/// At start-up the database could not be reached or the admin lacks privileges.
pub const DATABASE: i32 = 6;
/// `test` found a failing check.
pub const CHECK_FAILED: i32 = 7;
/// The rotation worker crashed; a restart finishes any journaled rotation.
pub const WORKER_CRASHED: i32 = 70;

/// Exit codes after which restarting the service cannot help.
pub const DO_NOT_RESTART: [i32; 4] = [USAGE, CONFIG, LOCKED, SECRET_GONE];
