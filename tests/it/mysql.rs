//! MySQL/MariaDB against the throwaway MariaDB that `make test` starts: the provider
//! driven directly (round trips, hostile names, several hosts, escaping modes, privilege
//! checks, hung servers), then the shared failure scenarios through the agent binary.
//! The server and its helpers: support/db/mysql.rs.

use ::mysql::prelude::Queryable;
use serde_json::Value;

use sikkerkey_agent::providers::mysql::Mysql;
use sikkerkey_agent::providers::{FailureKind, Provider, StoredCredential};
use sikkerkey_agent::secret::Secret;

use crate::support::assertions::{assert_contains, assert_lacks};
use crate::support::db::mysql::{BrokenLogin, Cleanup, GlobalSqlMode, My};
use crate::support::db::{assert_refused, db_test, stored};
use crate::support::unique_name;
use crate::support::world::{Database, World, assert_password, secret_value};

// ---- the provider, driven directly ----

db_test!(check_admin_accepts_a_full_admin, My::open(), |my| {
    my.provider().check_admin().unwrap();
});

db_test!(check_admin_names_each_missing_privilege, My::open(), |my| {
    let (no_create, pw1) = my.limited_admin(&["GRANT SELECT ON mysql.user TO {a}"]);
    let (no_read, pw2) = my.limited_admin(&["GRANT CREATE USER ON *.* TO {a}"]);
    let (nothing, pw3) = my.limited_admin(&[]);
    let (enough, pw4) = my.limited_admin(&[
        "GRANT CREATE USER ON *.* TO {a}",
        "GRANT SELECT ON mysql.user TO {a}",
    ]);
    let _cleanup = Cleanup(
        my,
        vec![
            no_create.clone(),
            no_read.clone(),
            nothing.clone(),
            enough.clone(),
        ],
    );
    let check = |user: &str, pw: &str| {
        Mysql::connect(&my.target_as(user, pw, my.port))
            .unwrap()
            .check_admin()
    };

    let e = check(&no_create, &pw1).unwrap_err();
    assert_eq!(e.kind, FailureKind::Privilege);
    assert_contains(&e.detail, "GRANT CREATE USER ON *.*");
    assert_lacks(&e.detail, "mysql.user");
    let e = check(&no_read, &pw2).unwrap_err();
    assert_contains(&e.detail, "GRANT SELECT ON mysql.user");
    assert_lacks(&e.detail, "CREATE USER privilege");
    let e = check(&nothing, &pw3).unwrap_err();
    assert_contains(&e.detail, "CREATE USER privilege");
    assert_contains(&e.detail, "mysql.user");
    assert_lacks(&e.to_string(), &pw3);
    check(&enough, &pw4).expect("CREATE USER and SELECT on mysql.user are enough");
});

db_test!(round_trip_restores_the_exact_hashes, My::open(), |my| {
    let user = unique_name("ska_rt");
    let _cleanup = Cleanup(my, vec![user.clone()]);
    my.create_user(&user, "old-pw");
    let before = my.auth_state(&user);
    let mut p = my.provider();
    assert!(p.user_exists(&user).unwrap());
    let snapshot = stored(&mut p, &user);
    assert!(
        !snapshot.contains("old-pw"),
        "the snapshot holds hashes, not plaintext"
    );

    p.set_password(&user, &Secret::new("new-pw")).unwrap();
    p.verify_login(&user, &Secret::new("new-pw")).unwrap();
    assert_refused(&p, &user, "old-pw");
    assert_ne!(stored(&mut p, &user), snapshot);

    p.restore_stored(&user, &snapshot).unwrap();
    assert_eq!(
        stored(&mut p, &user),
        snapshot,
        "read_stored after restore must give the same text"
    );
    assert_eq!(my.auth_state(&user), before);
    p.verify_login(&user, &Secret::new("old-pw")).unwrap();
    assert_refused(&p, &user, "new-pw");
    assert_password(my, &user, "old-pw", "new-pw");
});

db_test!(
    absent_user_is_created_on_percent_and_dropped,
    My::open(),
    |my| {
        let user = unique_name("ska_new");
        let _cleanup = Cleanup(my, vec![user.clone()]);
        let mut p = my.provider();
        assert_eq!(p.read_stored(&user).unwrap(), StoredCredential::Absent);
        assert!(!p.user_exists(&user).unwrap());
        p.set_password(&user, &Secret::new("created-pw")).unwrap();
        assert_eq!(my.hosts(&user), vec!["%".to_owned()]);
        p.verify_login(&user, &Secret::new("created-pw")).unwrap();
        assert_refused(&p, &user, "created-pw ");
        p.drop_user(&user).unwrap();
        assert!(!p.user_exists(&user).unwrap());
        assert!(my.hosts(&user).is_empty());
    }
);

fn hostile_round_trip(my: &My, p: &mut Mysql) {
    let names = [
        format!("app'; DROP USER root; --{}", unique_name("")),
        format!("a\\'b\\\\{}", unique_name("")),
        format!("\"q\"`b`{}", unique_name("")),
        format!("ø€ñ中{}", unique_name("")),
        format!("%_{}", unique_name("")),
    ];
    let passwords = [
        "p'\"\\$`",
        "\\",
        "'",
        "\\'; DROP USER root; --",
        "$(id)${HOME}",
        "æøå€中😀",
        "x\\0y\\nz",
        " lead and trail ",
    ];
    let _cleanup = Cleanup(my, names.to_vec());
    let bystander = unique_name("ska_by");
    let _cleanup_by = Cleanup(my, vec![bystander.clone()]);
    my.create_user(&bystander, "bystander-pw");
    for (i, name) in names.iter().enumerate() {
        let first = passwords[i % passwords.len()];
        p.set_password(name, &Secret::new(first))
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(
            my.hosts(name),
            vec!["%".to_owned()],
            "{name:?} was not created exactly"
        );
        for pw in passwords {
            p.set_password(name, &Secret::new(pw))
                .unwrap_or_else(|e| panic!("{name:?}: {e}"));
            assert!(my.can_login(name, pw), "{name:?} cannot log in with {pw:?}");
            p.verify_login(name, &Secret::new(pw)).unwrap();
            // Near misses: what a quoting bug would have stored instead.
            for wrong in [
                pw.replace('\\', ""),
                pw.replace('\\', "\\\\"),
                pw.replace('\'', "''"),
                format!("{pw}x"),
            ] {
                if wrong != pw {
                    assert!(
                        !my.can_login(name, &wrong),
                        "{name:?} logs in with {wrong:?} instead of {pw:?}"
                    );
                }
            }
        }
    }
    assert!(
        my.can_login(&bystander, "bystander-pw"),
        "a bystander was changed"
    );
    assert!(
        my.hosts("root").contains(&"localhost".to_owned()),
        "root is gone"
    );
}

db_test!(
    hostile_names_and_passwords_reach_the_server_exactly,
    My::open(),
    |my| {
        let mut p = my.provider();
        assert!(
            p.dialect().backslash_escapes,
            "the server's default mode has backslash escapes"
        );
        hostile_round_trip(my, &mut p);
    }
);

db_test!(
    no_backslash_escapes_sessions_get_exact_names_and_passwords,
    My::open(),
    |my| {
        let mut p = {
            let _mode = GlobalSqlMode::add(my, "NO_BACKSLASH_ESCAPES");
            my.provider()
        };
        assert!(
            !p.dialect().backslash_escapes,
            "the provider must see the session's NO_BACKSLASH_ESCAPES"
        );
        hostile_round_trip(my, &mut p);
    }
);

db_test!(
    every_host_of_the_name_is_rotated_and_restored,
    My::open(),
    |my| {
        let user = unique_name("ska_hosts");
        let _cleanup = Cleanup(my, vec![user.clone()]);
        my.create_user(&user, "pct-pw");
        // The server does not resolve names: logins from here match the 127.0.0.1 account.
        my.exec(&format!(
            "CREATE USER {} IDENTIFIED BY 'local-pw'",
            My::account(&user, "127.0.0.1")
        ));
        my.exec(&format!(
            "CREATE USER {} IDENTIFIED BY 'lan-pw'",
            My::account(&user, "10.9.8.%")
        ));
        assert!(my.can_login(&user, "local-pw") && !my.can_login(&user, "pct-pw"));
        let before = my.auth_state(&user);
        let mut p = my.provider();
        let snapshot = stored(&mut p, &user);
        let accounts: Value = serde_json::from_str(&snapshot).unwrap();
        assert_eq!(
            accounts["accounts"].as_array().unwrap().len(),
            3,
            "{snapshot}"
        );

        p.set_password(&user, &Secret::new("rotated-pw")).unwrap();
        assert_eq!(
            my.hosts(&user),
            vec!["%", "10.9.8.%", "127.0.0.1"],
            "no account may be added or lost"
        );
        let after = my.auth_state(&user);
        assert!(
            after.iter().all(|(_, a)| a == &after[0].1),
            "every host must have the new hash: {after:?}"
        );
        p.verify_login(&user, &Secret::new("rotated-pw")).unwrap();
        assert_refused(&p, &user, "local-pw");

        p.restore_stored(&user, &snapshot).unwrap();
        assert_eq!(
            my.auth_state(&user),
            before,
            "each host gets its own old hash back"
        );
        assert_eq!(stored(&mut p, &user), snapshot);
        assert_password(my, &user, "local-pw", "rotated-pw");
    }
);

db_test!(
    mariadb_authentication_chains_are_restored_exactly,
    My::open(),
    |my| {
        let plugins: Vec<String> = my
            .admin()
            .query(
                "SELECT PLUGIN_NAME FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'",
            )
            .unwrap();
        if plugins.is_empty() {
            my.exec("INSTALL SONAME 'auth_ed25519'");
        }
        let user = unique_name("ska_chain");
        let _cleanup = Cleanup(my, vec![user.clone()]);
        my.exec(&format!(
            "CREATE USER {} IDENTIFIED VIA ed25519 USING PASSWORD('chain-pw') OR unix_socket",
            My::account(&user, "%")
        ));
        my.exec(&format!(
            "CREATE USER {} IDENTIFIED VIA ed25519 USING PASSWORD('ed-pw')",
            My::account(&user, "127.0.0.2")
        ));
        let before = my.auth_state(&user);
        assert!(before[0].1["auth_or"].is_array(), "{before:?}");
        let mut p = my.provider();
        let snapshot = stored(&mut p, &user);
        p.set_password(&user, &Secret::new("flat-pw")).unwrap();
        assert_ne!(my.auth_state(&user), before);
        p.restore_stored(&user, &snapshot).unwrap();
        assert_eq!(
            my.auth_state(&user),
            before,
            "plugins, hashes and the OR chain come back"
        );
        assert_eq!(stored(&mut p, &user), snapshot);
    }
);

db_test!(
    admin_without_global_priv_falls_back_to_the_live_value,
    My::open(),
    |my| {
        let (admin, admin_pw) = my.limited_admin(&[
            "GRANT CREATE USER ON *.* TO {a}",
            "GRANT SELECT ON mysql.user TO {a}",
        ]);
        let user = unique_name("ska_lv");
        let _cleanup = Cleanup(my, vec![admin.clone(), user.clone()]);
        my.create_user(&user, "lv-old");
        let mut p = Mysql::connect(&my.target_as(&admin, &admin_pw, my.port)).unwrap();
        p.check_admin().unwrap();
        match p.read_stored(&user).unwrap() {
            StoredCredential::Unreadable { reason } => assert!(reason.contains(&admin), "{reason}"),
            other => panic!("expected Unreadable, got {other:?}"),
        }
        p.set_password(&user, &Secret::new("lv-new")).unwrap();
        p.verify_login(&user, &Secret::new("lv-new")).unwrap();
        // The engine's fallback: set the live (old) value again.
        p.set_password(&user, &Secret::new("lv-old")).unwrap();
        assert_password(my, &user, "lv-old", "lv-new");
    }
);

db_test!(
    names_the_user_column_would_change_are_refused,
    My::open(),
    |my| {
        let mut p = my.provider();
        for name in [
            format!("e\u{1F600}{}", unique_name("x")),
            format!("{} ", unique_name("trail")),
        ] {
            let err = p.set_password(&name, &Secret::new("pw")).unwrap_err();
            assert_eq!(err.kind, FailureKind::InvalidInput, "{err}");
            let mangled = name.replace('\u{1F600}', "?").trim_end().to_owned();
            assert!(my.hosts(&mangled).is_empty(), "{mangled:?} was created");
        }
        assert_eq!(
            p.validate("", &Secret::new("pw")).unwrap_err().kind,
            FailureKind::InvalidInput
        );
        assert_eq!(
            p.validate("a", &Secret::new("p\0w")).unwrap_err().kind,
            FailureKind::InvalidInput
        );
    }
);

db_test!(
    a_missing_or_forbidden_database_after_login_counts_as_authenticated,
    My::open(),
    |my| {
        let user = unique_name("ska_db");
        let _cleanup = Cleanup(my, vec![user.clone()]);
        my.create_user(&user, "db-pw");
        for database in ["ska_no_such_database", "mysql"] {
            let mut target = my.target();
            target.database = database.into();
            let p = Mysql::connect(&target).unwrap();
            p.verify_login(&user, &Secret::new("db-pw"))
                .unwrap_or_else(|e| panic!("{database}: {e}"));
            assert_refused(&p, &user, "db-pw2");
        }
    }
);

db_test!(refused_login_names_anonymous_accounts, My::open(), |my| {
    // An anonymous account on a host no test logs in from: harmless here, but the
    // provider must point at it when a login is refused.
    let host = "10.255.255.254";
    my.exec(&format!(
        "CREATE USER IF NOT EXISTS {}",
        My::account("", host)
    ));
    let p = my.provider();
    my.exec(&format!("DROP USER IF EXISTS {}", My::account("", host)));
    let err = p
        .verify_login("ska_nobody_here", &Secret::new("x"))
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::AuthRejected);
    assert_contains(&err.detail, "anonymous accounts");
    assert_contains(&err.detail, host);
});

crate::scenarios::timeout_scenarios!(My::open());

// ---- the shared failure scenarios, through the agent binary ----

crate::scenarios::shared_scenarios!(My::open(), verify_fails_rolls_back);

db_test!(rollback_restores_every_host_exactly, My::open(), |my| {
    let w = World::plain(my);
    my.exec(&format!(
        "CREATE USER {} IDENTIFIED BY 'lan-old'",
        My::account(&w.user, "10.9.8.%")
    ));
    let before = my.auth_state(&w.user);
    let agent = w.start();
    let error = w.rotate_with_logins_blocked(&agent, "rot_hosts", "hosts-new-pw");
    assert_contains(&error, "verification failed");
    assert_eq!(
        my.auth_state(&w.user),
        before,
        "rollback must put every host's own hash back"
    );
    assert_password(my, &w.user, &w.old_pw, "hosts-new-pw");
    w.finish(agent, &[&w.old_pw, "hosts-new-pw"]);
});

db_test!(
    user_created_by_a_failed_rotation_is_dropped,
    My::open(),
    |my| {
        let w = World::plain(my);
        let fresh = unique_name("ska_fresh");
        let _cleanup = Cleanup(my, vec![fresh.clone()]);
        let broken = BrokenLogin::for_user(my, &fresh);
        let agent = w.start();
        w.cp.set_pending(&w.secret, "rot_fresh", &secret_value(&fresh, "fresh-pw"));
        let error = w.wait_rejected("rot_fresh", &agent);
        assert_contains(&error, "verification failed");
        w.wait_journal_cleared(&agent);
        drop(broken);
        assert!(
            my.hosts(&fresh).is_empty(),
            "the user the failed rotation created is still there"
        );
        assert!(
            my.can_login(&w.user, &w.old_pw),
            "the scenario's own user was touched"
        );
        w.finish(agent, &[&w.old_pw, "fresh-pw"]);
    }
);
