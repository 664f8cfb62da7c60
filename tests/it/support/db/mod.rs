//! The test databases, one file each: how a test reaches (or starts) the server, logs in
//! as anyone, makes users and admins, and what the agent's connection object for it is.
//! Each implements [`Database`](crate::support::world::Database); tests declare
//! themselves with [`db_test!`].

#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;

use sikkerkey_agent::providers::{FailureKind, Provider, StoredCredential};
use sikkerkey_agent::secret::Secret;

/// The provider's snapshot of `user`; panics unless it is a stored credential.
pub fn stored(p: &mut dyn Provider, user: &str) -> String {
    match p.read_stored(user).unwrap() {
        StoredCredential::Stored(s) => s,
        other => panic!("expected a stored snapshot of {user:?}, got {other:?}"),
    }
}

/// The provider's login check refuses `password` for `user` as a wrong password.
#[track_caller]
pub fn assert_refused(p: &dyn Provider, user: &str, password: &str) {
    let err = p
        .verify_login(user, &Secret::new(password))
        .expect_err("a wrong password was accepted");
    assert_eq!(err.kind, FailureKind::AuthRejected, "{err}");
}

/// Runs `body` with the database `db` when there is one; `None` is the skip that
/// [`require_env`](crate::support::require_env) already printed (or, in CI, a failure).
pub fn run<T>(db: Option<T>, body: impl FnOnce(&mut T)) {
    if let Some(mut db) = db {
        body(&mut db);
    }
}

/// `db_test!(name, Opener::open(), |db| body)`: a test that needs the database the opener
/// gives (an `Option`, `None` outside CI when the service is not running).
#[allow(unused_macros)]
macro_rules! db_test {
    ($name:ident, $open:expr, $body:expr) => {
        #[test]
        fn $name() {
            $crate::support::db::run($open, $body)
        }
    };
}
#[allow(unused_imports)]
pub(crate) use db_test;
