//! MongoDB: the provider driven directly through the `Provider` trait, then the shared
//! failure scenarios end to end, against the server `make test` starts (a real `mongod`
//! when one is installed, SecantusDB otherwise; env SKA_MONGO_SERVER says which).
//! The server, its login gate and helpers: support/db/mongodb.rs.

use std::time::{Duration, Instant};

use ::mongodb::bson::{Bson, doc};
use serde_json::json;
use sikkerkey_agent::providers::{self, DbTimeouts, FailureKind, StoredCredential};
use sikkerkey_agent::secret::Secret;

use crate::scenarios;
use crate::support::assertions::{assert_contains, assert_lacks, assert_took_less_than};
use crate::support::cli::closed_port;
use crate::support::db::db_test;
use crate::support::db::mongodb::{DB, Mongo, open};
use crate::support::proxy::TcpProxy;
use crate::support::world::{Database, World, assert_password, secret_value};
use crate::support::{SOON, random_text, unique_name};

// ---- the provider, driven directly ----

db_test!(
    provider_creates_updates_verifies_and_drops,
    Mongo::open(),
    |m| {
        let target = m.target(DB);
        let mut p = open(&target);
        p.check_admin().unwrap();
        let user = unique_name("ska_p");
        let first = Secret::new(format!("first-{}", random_text(12)));
        let second = Secret::new(format!("second-{}", random_text(12)));

        assert!(!p.user_exists(&user).unwrap());
        assert_eq!(p.read_stored(&user).unwrap(), StoredCredential::Absent);
        p.set_password(&user, &first).unwrap();
        assert!(p.user_exists(&user).unwrap());
        let info = m
            .user_info(DB, &user)
            .expect("created user is in the configured database");
        assert_eq!(
            info.get_array("roles").unwrap(),
            &vec![Bson::Document(doc! { "role": "readWrite", "db": DB })]
        );
        assert!(
            m.user_info("admin", &user).is_none(),
            "user created in the wrong database"
        );
        assert!(matches!(
            p.read_stored(&user).unwrap(),
            StoredCredential::Unreadable { .. }
        ));
        p.verify_login(&user, &first).unwrap();
        assert_password(m, &user, first.expose(), second.expose());

        p.set_password(&user, &second).unwrap();
        p.verify_login(&user, &second).unwrap();
        let refused = p.verify_login(&user, &first).unwrap_err();
        assert_eq!(refused.kind, FailureKind::AuthRejected, "{refused}");
        assert_lacks(&refused.to_string(), first.expose());
        assert_password(m, &user, second.expose(), first.expose());
        assert_eq!(
            m.user_info(DB, &user)
                .unwrap()
                .get_array("roles")
                .unwrap()
                .len(),
            1,
            "updateUser changed the roles"
        );

        p.drop_user(&user).unwrap();
        assert!(!p.user_exists(&user).unwrap());
        p.drop_user(&user)
            .expect("dropping a user that is gone is not an error");
        assert_eq!(
            p.verify_login(&user, &second).unwrap_err().kind,
            FailureKind::AuthRejected
        );
    }
);

db_test!(
    provider_takes_hostile_names_and_passwords_verbatim,
    Mongo::open(),
    |m| {
        let mut p = open(&m.target(DB));
        let bystander = unique_name("ska_by");
        let bystander_pw = format!("by-{}", random_text(12));
        m.create_user(&bystander, &bystander_pw);
        let cases = [
            (unique_name("us@er:/%?"), "p@ss:/%?word#&".to_owned()),
            (
                format!("app\"; DROP ROLE x; --'\\{}", unique_name("q")),
                "'\"\\$`;{}[]()".to_owned(),
            ),
            (
                format!("ünïcødé 用户 {}", unique_name("u")),
                "пароль 密码 ✓ ø".to_owned(),
            ),
            (
                unique_name("pct%40%3A"),
                "%40%3A%2F%25 and %s %n".to_owned(),
            ),
            (
                format!("$dollar.{}", unique_name("d")),
                "  spaced out  ".to_owned(),
            ),
        ];
        for (user, pw) in &cases {
            let pw = Secret::new(pw.clone());
            p.validate(user, &pw).unwrap();
            p.set_password(user, &pw)
                .unwrap_or_else(|e| panic!("{user:?}: {e}"));
            assert!(
                m.user_info(DB, user).is_some(),
                "{user:?} not created under its exact name"
            );
            p.verify_login(user, &pw)
                .unwrap_or_else(|e| panic!("{user:?}: {e}"));
            assert_eq!(
                p.verify_login(user, &Secret::new(format!("{}x", pw.expose())))
                    .unwrap_err()
                    .kind,
                FailureKind::AuthRejected
            );
            assert_password(m, user, pw.expose(), "not-the-password");
        }
        assert!(
            m.can_login(&bystander, &bystander_pw),
            "a bystander was changed"
        );
        for (user, _) in &cases {
            p.drop_user(user).unwrap();
            assert!(m.user_info(DB, user).is_none());
        }
        m.drop_user(&bystander);
    }
);

db_test!(
    provider_defaults_to_the_admin_database,
    Mongo::open(),
    |m| {
        let mut p = open(&m.target(""));
        let user = unique_name("ska_def");
        let pw = Secret::new(format!("pw-{}", random_text(12)));
        p.set_password(&user, &pw).unwrap();
        let info = m.user_info("admin", &user).expect("user created in admin");
        assert_eq!(
            info.get_array("roles").unwrap(),
            &vec![Bson::Document(doc! { "role": "readWrite", "db": "admin" })]
        );
        assert!(m.login(&user, pw.expose(), "admin", m.port).unwrap());
        assert!(!m.login(&user, "wrong", "admin", m.port).unwrap());
        p.verify_login(&user, &pw).unwrap();
        p.drop_user(&user).unwrap();
        assert!(m.user_info("admin", &user).is_none());
    }
);

db_test!(
    provider_rejects_what_scram_cannot_take_and_changes_nothing,
    Mongo::open(),
    |m| {
        let mut p = open(&m.target(DB));
        let user = unique_name("ska_bad");
        for pw in ["bell\u{7}", "nul\0byte", "", "unassigned\u{0378}"] {
            let e = p.set_password(&user, &Secret::new(pw)).unwrap_err();
            assert_eq!(e.kind, FailureKind::InvalidInput, "{e}");
        }
        assert!(
            m.user_info(DB, &user).is_none(),
            "a refused password created the user"
        );
    }
);

db_test!(check_admin_names_the_missing_role, Mongo::open(), |m| {
    let cases = [
        (
            Bson::Array(vec![Bson::Document(doc! { "role": "read", "db": "admin" })]),
            "view users",
        ),
        (
            Bson::Array(vec![Bson::Document(
                doc! { "role": "userAdmin", "db": "skaother" },
            )]),
            "view users",
        ),
    ];
    for (roles, what) in cases {
        let (name, pass, target) = m.admin_with_roles(roles);
        let mut p = open(&target);
        let e = p.check_admin().unwrap_err();
        assert_eq!(e.kind, FailureKind::Privilege, "{e}");
        let msg = e.to_string();
        for needle in [
            what,
            "userAdmin on \"skatest\"",
            "userAdminAnyDatabase",
            "grantRolesToUser",
            name.as_str(),
        ] {
            assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
        }
        assert_lacks(&msg, &pass);
        drop(p);
        m.drop_user_in("admin", &name);
    }

    // May look but not touch: the check must go past usersInfo.
    let role = unique_name("ska_viewonly");
    m.exec(
        DB,
        doc! { "createRole": &role, "privileges": [ { "resource": { "db": DB, "collection": "" }, "actions": ["viewUser"] } ], "roles": [] },
    );
    let (name, _, target) = m.admin_with_roles(Bson::Array(vec![Bson::Document(
        doc! { "role": &role, "db": DB },
    )]));
    let e = open(&target).check_admin().unwrap_err();
    assert_contains(&e.to_string(), "may not create users");
    m.drop_user_in("admin", &name);
    m.exec(DB, doc! { "dropRole": &role });

    // userAdmin on the managed database is enough, for the check and for a whole rotation.
    let (name, _, target) = m.admin_with_roles(Bson::Array(vec![Bson::Document(
        doc! { "role": "userAdmin", "db": DB },
    )]));
    let mut p = open(&target);
    p.check_admin().unwrap();
    let user = unique_name("ska_ua");
    let pw = Secret::new(format!("ua-{}", random_text(10)));
    p.set_password(&user, &pw).unwrap();
    p.verify_login(&user, &pw).unwrap();
    p.drop_user(&user).unwrap();
    assert!(
        m.user_info(DB, &user).is_none(),
        "the check or the rotation left a user behind"
    );
    drop(p);
    m.drop_user_in("admin", &name);
    let probes = m.command(DB, doc! { "usersInfo": 1 }).unwrap();
    assert!(
        !format!("{probes}").contains("sikkerkey-agent-probe"),
        "a privilege probe left a user: {probes}"
    );
});

db_test!(
    wrong_admin_password_is_refused_at_connect,
    Mongo::open(),
    |m| {
        let mut target = m.target(DB);
        let wrong = format!("{}-wrong", m.admin_pass);
        target.admin_pass = Secret::new(wrong.clone());
        let e = providers::open(&target)
            .err()
            .expect("a wrong admin password must not connect");
        assert_eq!(e.kind, FailureKind::AuthRejected, "{e}");
        let msg = e.to_string();
        assert_contains(&msg, "connecting as admin");
        assert_contains(&msg, &m.admin_user);
        assert_lacks(&msg, &wrong);
    }
);

db_test!(
    dead_or_vanished_server_fails_within_the_timeouts,
    Mongo::open(),
    |m| {
        let timeouts = DbTimeouts {
            connect: Duration::from_secs(2),
            statement: Duration::from_secs(2),
        };
        let budget = timeouts.connect + timeouts.statement + Duration::from_secs(3);

        // Nothing listens.
        let closed = closed_port();
        let mut target = m.target(DB);
        target.port = closed;
        target.timeouts = timeouts;
        let started = Instant::now();
        let e = providers::open(&target)
            .err()
            .expect("connecting to a closed port");
        assert_took_less_than(started, budget);
        assert_eq!(e.kind, FailureKind::Unreachable, "{e}");
        assert_contains(&e.to_string(), &format!("127.0.0.1:{closed}"));

        // (A server that accepts connections and never answers: timeout_scenarios! below.)

        // The server goes away between connect and the next command.
        let proxy = TcpProxy::start(&format!("{}:{}", m.host, m.port));
        target.port = proxy.port();
        let mut p = open(&target);
        proxy.cut();
        let started = Instant::now();
        let e = p
            .set_password(&unique_name("ska_gone"), &Secret::new("gone-password"))
            .unwrap_err();
        assert_took_less_than(started, budget);
        assert!(
            matches!(e.kind, FailureKind::Unreachable | FailureKind::Timeout),
            "{e}"
        );
    }
);

crate::scenarios::timeout_scenarios!(Mongo::open());

/// Runs `provider_job_keeps_no_threads` in a process of its own, where no other test's
/// threads come and go, and shows the figures.
#[test]
fn provider_leaves_no_threads_behind() {
    if Mongo::open().is_none() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "mongodb::provider_job_keeps_no_threads",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run by provider_leaves_no_threads_behind in a process of its own"]
fn provider_job_keeps_no_threads() {
    let m =
        Mongo::open().expect("started by provider_leaves_no_threads_behind, which checked the env");
    let count = || std::fs::read_dir("/proc/self/task").unwrap().count();
    // The test's own admin client runs on a runtime of its own; start from a settled count.
    let mut target = m.target(DB);
    target.host = "localhost".into(); // a name, so the driver's resolver threads show up too
    let before = count();
    for round in 0..3 {
        let mut p = open(&target);
        p.check_admin().unwrap();
        let user = unique_name("ska_thr");
        let pw = Secret::new(format!("t-{}", random_text(10)));
        p.set_password(&user, &pw).unwrap();
        p.verify_login(&user, &pw).unwrap();
        let during = count();
        p.drop_user(&user).unwrap();
        drop(p);
        let after = count();
        println!("threads: before a job {before}, during {during}, after {after} (round {round})");
        assert_eq!(after, before, "the provider left threads behind");
    }
}

// ---- end to end, through the agent binary ----

crate::scenarios::shared_scenarios!(Mongo::open());

db_test!(
    verify_fails_rolls_back_to_the_live_value,
    Mongo::open(),
    |m| {
        // MongoDB cannot restore a stored credential: the rollback sets the live value again.
        let w = World::plain(m);
        let agent = w.start();
        let new_pw = scenarios::rollback_to_the_live_value_waits_for_a_login(&w, &agent, || {
            assert!(
                m.login(&w.user, &w.old_pw, DB, m.port).unwrap(),
                "the old password is not back while logins are blocked"
            );
        });
        w.finish(agent, &[&w.old_pw, &new_pw]);
    }
);

db_test!(
    user_created_by_a_failed_rotation_is_dropped,
    Mongo::open(),
    |m| {
        let w = World::plain(m);
        let fresh = unique_name("ska_new");
        let agent = w.start();
        m.block_login(&fresh);
        w.cp.set_pending(&w.secret, "rot_create", &secret_value(&fresh, "created-pw"));
        let error = w.wait_rejected("rot_create", &agent);
        assert_contains(&error, "verification failed");
        w.wait_journal_cleared(&agent);
        m.unblock_login(&fresh);
        assert!(
            m.user_info(DB, &fresh).is_none(),
            "the user the failed rotation created is still there"
        );
        w.finish(agent, &[&w.old_pw, "created-pw"]);
    }
);

db_test!(idle_agent_keeps_no_driver_threads, Mongo::open(), |m| {
    // After a rotation the agent is back to its own named threads: no driver runtime
    // workers (tokio's threads are "tokio-runtime-w") stay behind. The host is a name, so
    // the job also uses the runtime's blocking threads for the lookup.
    let w = World::plain(m);
    w.cp.with_secret(&w.secret, |s| s.connection["host"] = json!("localhost"));
    let agent = w.start();
    let names = || -> Vec<String> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", agent.pid())) else {
            return Vec::new();
        };
        let mut names: Vec<String> = tasks
            .flatten()
            .map(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    };
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_threads", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_threads", &agent);
    agent.wait_until(SOON, "no driver threads left after the rotation", || {
        !names().iter().any(|n| n.starts_with("tokio"))
    });
    println!("agent threads after a MongoDB rotation: {:?}", names());
    assert_password(m, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
});
