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
