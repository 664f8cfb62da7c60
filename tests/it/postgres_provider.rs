//! The PostgreSQL provider driven directly (no agent process): what verification tells
//! apart, what input it refuses, and that a refused input changes nothing.

use std::time::Duration;

use sikkerkey_agent::providers::{
    self, DbTimeouts, FailureKind, ProviderKind, StoredCredential, Target, postgres,
};
use sikkerkey_agent::secret::Secret;

use crate::postgres::Pg;
use crate::scenarios::Database;
use crate::support::{random_text, unique_name};

fn target(pg: &Pg, database: &str) -> Target {
    let conn = pg.connection(&pg.endpoint().0, pg.endpoint().1);
    Target {
        kind: ProviderKind::Postgresql,
        host: pg.endpoint().0,
        port: pg.endpoint().1,
        database: database.to_owned(),
        admin_user: conn["adminUser"].as_str().unwrap().to_owned(),
        admin_pass: Secret::new(conn["adminPass"].as_str().unwrap()),
        project_reference: String::new(),
        timeouts: DbTimeouts {
            connect: Duration::from_secs(5),
            statement: Duration::from_secs(5),
        },
        tls: Default::default(),
    }
}

#[test]
fn verify_tells_wrong_password_from_missing_database_from_unreachable() {
    let Some(pg) = Pg::from_env() else { return };
    let user = unique_name("ska_v");
    let pw = format!("pw-{}", random_text(12));
    pg.create_user(&user, &pw);

    let db = providers::open(&target(&pg, "postgres")).unwrap();
    assert!(db.verify_login(&user, &Secret::new(&pw)).is_ok());
    let e = db.verify_login(&user, &Secret::new("wrong")).unwrap_err();
    assert_eq!(e.kind, FailureKind::AuthRejected, "{e}");
    assert!(
        e.to_string().contains(&user) && e.to_string().contains("PostgreSQL"),
        "{e}"
    );

    // Authentication succeeds, then the database is missing: the password works.
    let missing = target(&pg, "no_such_database_here");
    assert!(postgres::verify_login(&missing, &user, &Secret::new(&pw)).is_ok());
    let e = postgres::verify_login(&missing, &user, &Secret::new("wrong")).unwrap_err();
    assert_eq!(e.kind, FailureKind::AuthRejected, "{e}");

    let mut dead = target(&pg, "postgres");
    dead.port = free_port();
    let e = postgres::verify_login(&dead, &user, &Secret::new(&pw)).unwrap_err();
    assert_eq!(e.kind, FailureKind::Unreachable, "{e}");
    let e = providers::open(&dead).err().expect("nothing listens there");
    assert_eq!(e.kind, FailureKind::Unreachable, "{e}");
    assert!(
        e.to_string().contains(&format!("127.0.0.1:{}", dead.port)),
        "{e}"
    );
    pg.drop_user(&user);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let Some(pg) = Pg::from_env() else { return };
    let user = unique_name("ska_in");
    let pw = format!("pw-{}", random_text(12));
    pg.create_user(&user, &pw);
    let mut db = providers::open(&target(&pg, "postgres")).unwrap();
    let before = db.read_stored(&user).unwrap();
    for (name, password, why) in [
        ("", "x-password", "empty"),
        ("bad\0name", "x-password", "NUL"),
        (user.as_str(), "with\0nul", "NUL"),
        (user.as_str(), "", "empty"),
    ] {
        let e = db.set_password(name, &Secret::new(password)).unwrap_err();
        assert_eq!(e.kind, FailureKind::InvalidInput, "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }
    let long = "x".repeat(64);
    let e = db.set_password(&long, &Secret::new("pw")).unwrap_err();
    assert!(e.to_string().contains("63"), "{e}");
    assert_eq!(db.read_stored(&user).unwrap(), before);
    // No role with the truncated 63-byte name appeared either.
    assert!(!db.user_exists(&long[..63]).unwrap());
    assert!(pg.can_login(&user, &pw));
    pg.drop_user(&user);
}

#[test]
fn stored_verifier_round_trips_and_absent_users_are_absent() {
    let Some(pg) = Pg::from_env() else { return };
    let user = unique_name("ska_rt");
    let mut db = providers::open(&target(&pg, "postgres")).unwrap();
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
