//! The PostgreSQL provider driven directly (no agent process): what verification tells
//! apart, what input it refuses, and that a refused input changes nothing.

use std::time::Duration;

use sikkerkey_agent::providers::{self, FailureKind, StoredCredential, Target};
use sikkerkey_agent::secret::Secret;

use crate::support::assertions::assert_contains;
use crate::support::cli::closed_port;
use crate::support::db::db_test;
use crate::support::db::postgres::Pg;
use crate::support::world::{Database, provider_target};
use crate::support::{random_text, unique_name};

/// The provider's view of the test cluster, in `database`.
fn target(pg: &Pg, database: &str) -> Target {
    let mut target = provider_target(pg, &pg.host, pg.port, Duration::from_secs(5));
    target.database = database.to_owned();
    target
}

db_test!(
    verify_tells_wrong_password_from_missing_database_from_unreachable,
    Pg::open(),
    |pg| {
        let user = unique_name("ska_v");
        let pw = format!("pw-{}", random_text(12));
        pg.create_user(&user, &pw);

        let db = providers::open(&target(pg, "postgres")).unwrap();
        assert!(db.verify_login(&user, &Secret::new(&pw)).is_ok());
        let e = db.verify_login(&user, &Secret::new("wrong")).unwrap_err();
        assert_eq!(e.kind, FailureKind::AuthRejected, "{e}");
        assert_contains(&e.to_string(), &user);
        assert_contains(&e.to_string(), "PostgreSQL");

        // Authentication succeeds, then the database is missing: the password works.
        let missing = target(pg, "no_such_database_here");
        assert!(providers::verify_only(&missing, &user, &Secret::new(&pw)).is_ok());
        let e = providers::verify_only(&missing, &user, &Secret::new("wrong")).unwrap_err();
        assert_eq!(e.kind, FailureKind::AuthRejected, "{e}");

        let mut dead = target(pg, "postgres");
        dead.port = closed_port();
        let e = providers::verify_only(&dead, &user, &Secret::new(&pw)).unwrap_err();
        assert_eq!(e.kind, FailureKind::Unreachable, "{e}");
        let e = providers::open(&dead).err().expect("nothing listens there");
        assert_eq!(e.kind, FailureKind::Unreachable, "{e}");
        assert_contains(&e.to_string(), &format!("127.0.0.1:{}", dead.port));
        pg.drop_user(&user);
    }
);

db_test!(bad_input_is_refused_and_changes_nothing, Pg::open(), |pg| {
    let user = unique_name("ska_in");
    let pw = format!("pw-{}", random_text(12));
    pg.create_user(&user, &pw);
    let mut db = providers::open(&target(pg, "postgres")).unwrap();
    let before = db.read_stored(&user).unwrap();
    for (name, password, why) in [
        ("", "x-password", "empty"),
        ("bad\0name", "x-password", "NUL"),
        (user.as_str(), "with\0nul", "NUL"),
        (user.as_str(), "", "empty"),
    ] {
        let e = db.set_password(name, &Secret::new(password)).unwrap_err();
        assert_eq!(e.kind, FailureKind::InvalidInput, "{e}");
        assert_contains(&e.to_string(), why);
    }
    let long = "x".repeat(64);
    let e = db.set_password(&long, &Secret::new("pw")).unwrap_err();
    assert_contains(&e.to_string(), "63");
    assert_eq!(db.read_stored(&user).unwrap(), before);
    // No role with the truncated 63-byte name appeared either.
    assert!(!db.user_exists(&long[..63]).unwrap());
    assert!(pg.can_login(&user, &pw));
    pg.drop_user(&user);
});

db_test!(
    stored_verifier_round_trips_and_absent_users_are_absent,
    Pg::open(),
    |pg| {
        let user = unique_name("ska_rt");
        let mut db = providers::open(&target(pg, "postgres")).unwrap();
        assert_eq!(db.read_stored(&user).unwrap(), StoredCredential::Absent);
        db.set_password(&user, &Secret::new("first-pw")).unwrap();
        let StoredCredential::Stored(first) = db.read_stored(&user).unwrap() else {
            panic!()
        };
        assert!(
            first.starts_with("SCRAM-SHA-256$"),
            "the server must store a verifier, never the plaintext"
        );
        db.set_password(&user, &Secret::new("second-pw")).unwrap();
        db.restore_stored(&user, &first).unwrap();
        assert_eq!(
            db.read_stored(&user).unwrap(),
            StoredCredential::Stored(first)
        );
        assert!(pg.can_login(&user, "first-pw") && !pg.can_login(&user, "second-pw"));
        db.drop_user(&user).unwrap();
        assert!(!db.user_exists(&user).unwrap());
    }
);
