//! Redis against servers each test starts for itself (`SKA_REDIS_SERVER` names the binary):
//! the provider driven directly (ACL users, the default user, requirepass without ACLs,
//! persistence across a restart with an ACL file or a config file, hung servers), then
//! the shared failure scenarios through the agent binary.
//! The servers and their helpers: support/db/redis.rs.

use ::redis::Value;
use serde_json::json;

use sikkerkey_agent::providers::redis::{Persistence, Redis, sha256_hex};
use sikkerkey_agent::providers::{FailureKind, Provider, StoredCredential};
use sikkerkey_agent::secret::Secret;

use crate::support::assertions::{assert_contains, assert_lacks};
use crate::support::db::redis::{Mode, RedisServer, field};
use crate::support::db::{assert_refused, db_test, stored};
use crate::support::world::{Database, World, assert_password, secret_value};

// ---- the provider, driven directly ----

db_test!(
    acl_user_round_trip_restores_the_hashes,
    RedisServer::start(Mode::MemoryOnly),
    |r| {
        r.cmd(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">old-pw",
            ">second-old",
            "~app:*",
            "+get",
        ]);
        let mut p = r.provider();
        assert_eq!(p.persistence(), &Persistence::MemoryOnly);
        p.check_admin().unwrap();
        let snapshot = stored(&mut p, "app");
        assert_lacks(&snapshot, "old-pw");
        assert_contains(&snapshot, &sha256_hex(&Secret::new("old-pw")));

        p.set_password("app", &Secret::new("new-pw")).unwrap();
        p.verify_login("app", &Secret::new("new-pw")).unwrap();
        assert_refused(&p, "app", "old-pw");
        assert_refused(&p, "app", "second-old");
        assert_eq!(
            field(&r.get_user("app"), "passwords"),
            [sha256_hex(&Secret::new("new-pw"))]
        );
        assert_eq!(
            field(&r.get_user("app"), "commands"),
            ["-@all +get"],
            "only the password may change"
        );

        p.restore_stored("app", &snapshot).unwrap();
        assert_eq!(
            stored(&mut p, "app"),
            snapshot,
            "read_stored after restore must give the same text"
        );
        p.verify_login("app", &Secret::new("old-pw")).unwrap();
        p.verify_login("app", &Secret::new("second-old")).unwrap();
        assert_refused(&p, "app", "new-pw");
    }
);

db_test!(
    absent_user_is_created_with_full_access_and_dropped,
    RedisServer::start(Mode::MemoryOnly),
    |r| {
        let mut p = r.provider();
        assert_eq!(p.read_stored("fresh").unwrap(), StoredCredential::Absent);
        assert!(!p.user_exists("fresh").unwrap());
        p.set_password("fresh", &Secret::new("fresh-pw")).unwrap();
        let user = r.get_user("fresh");
        assert_eq!(field(&user, "flags"), ["on"]);
        assert_eq!(field(&user, "keys"), ["~*"]);
        assert_eq!(field(&user, "commands"), ["+@all"]);
        p.verify_login("fresh", &Secret::new("fresh-pw")).unwrap();
        assert_refused(&p, "fresh", "fresh-pw2");
        p.drop_user("fresh").unwrap();
        assert!(!p.user_exists("fresh").unwrap());
        assert_eq!(r.get_user("fresh"), Value::Nil);
    }
);

db_test!(
    hostile_names_and_passwords_reach_the_server_exactly,
    RedisServer::start(Mode::AclFile),
    |r| {
        let names = [
            "app\";FLUSHALL;--'\\ø",
            ">notapassword",
            "#0000",
            "~*",
            "+@all",
            "nopass",
            "ø€中😀",
        ];
        let passwords = [
            "p'\"\\$`",
            " lead and trail ",
            "a\r\nb",
            ">x",
            "#y",
            "nopass",
            "æøå€中😀",
            "resetpass",
        ];
        r.cmd(&["ACL", "SETUSER", "bystander", "on", ">by-pw"]);
        let mut p = r.provider();
        for name in names {
            for pw in passwords {
                p.set_password(name, &Secret::new(pw))
                    .unwrap_or_else(|e| panic!("{name:?}: {e}"));
                assert!(r.try_login(name, pw), "{name:?} cannot log in with {pw:?}");
                for wrong in [
                    pw.trim().to_owned(),
                    pw.replace('\\', "\\\\"),
                    format!("{pw}x"),
                ] {
                    if wrong != pw {
                        assert!(
                            !r.try_login(name, &wrong),
                            "{name:?} logs in with {wrong:?} instead of {pw:?}"
                        );
                    }
                }
            }
            assert_eq!(field(&r.get_user(name), "passwords").len(), 1);
        }
        assert!(r.try_login("bystander", "by-pw"), "a bystander was changed");
        assert!(
            r.try_login("default", &r.default_pass),
            "the default user was changed"
        );
        for bad in ["a b", "tab\there", "new\nline"] {
            let err = p.set_password(bad, &Secret::new("pw")).unwrap_err();
            assert_eq!(err.kind, FailureKind::InvalidInput, "{err}");
            assert_eq!(r.get_user(bad), Value::Nil);
        }
        // Everything written survives a restart from the ACL file.
        drop(p);
        r.cmd(&["ACL", "LOAD"]);
        assert!(r.try_login(names[0], passwords[passwords.len() - 1]));
    }
);

db_test!(
    the_default_user_is_rotated_and_restored,
    RedisServer::start(Mode::MemoryOnly),
    |r| {
        // A default user that lets anyone in: after the rotation it must not.
        r.cmd(&["ACL", "SETUSER", "default", "resetpass", "nopass", "on"]);
        let mut p = r.provider();
        assert!(p.user_exists("").unwrap());
        let snapshot = stored(&mut p, "");
        assert_eq!(stored(&mut p, "default"), snapshot);
        p.set_password("", &Secret::new("def-new")).unwrap();
        p.verify_login("", &Secret::new("def-new")).unwrap();
        p.verify_login("default", &Secret::new("def-new")).unwrap();
        assert_refused(&p, "", "anything");
        let pong: Result<String, _> = ::redis::cmd("PING").query(&mut r.raw().unwrap());
        assert_eq!(
            pong.unwrap_err().code(),
            Some("NOAUTH"),
            "unauthenticated clients still get in"
        );

        p.restore_stored("default", &snapshot).unwrap();
        assert_eq!(stored(&mut p, ""), snapshot);
        let pong: String = ::redis::cmd("PING").query(&mut r.raw().unwrap()).unwrap();
        assert_eq!(pong, "PONG", "nopass is back after the rollback");
        assert!(
            p.drop_user("").is_err(),
            "the default user cannot be dropped"
        );
    }
);

db_test!(
    a_server_without_acls_rotates_requirepass,
    RedisServer::start(Mode::NoAcl),
    |r| rotates_requirepass_without_acls(r)
);

/// The "legacy" path (no ACLs: `CONFIG SET requirepass`), on a server started in
/// [`Mode::NoAcl`].
pub fn rotates_requirepass_without_acls(r: &RedisServer) {
    {
        let mut p = r.provider();
        assert!(!p.has_acl());
        p.check_admin().unwrap();
        match p.read_stored("").unwrap() {
            StoredCredential::Unreadable { reason } => {
                assert!(reason.contains("requirepass"), "{reason}")
            }
            other => panic!("expected Unreadable, got {other:?}"),
        }
        assert_eq!(
            p.validate("app", &Secret::new("pw")).unwrap_err().kind,
            FailureKind::InvalidInput
        );
        p.set_password("", &Secret::new("req-new")).unwrap();
        p.verify_login("", &Secret::new("req-new")).unwrap();
        assert_refused(&p, "", &r.admin_pass);
        assert!(r.try_login("", "req-new") && !r.try_login("", &r.admin_pass));
        assert_eq!(p.persistence(), &Persistence::MemoryOnly);
        // The engine's fallback without a snapshot: set the live (old) value again.
        p.set_password("default", &Secret::new(&r.admin_pass))
            .unwrap();
        assert!(r.try_login("", &r.admin_pass) && !r.try_login("", "req-new"));
    }
}

db_test!(
    changes_survive_a_restart_with_an_acl_file,
    RedisServer::start(Mode::AclFile),
    |r| {
        r.cmd(&["ACL", "SETUSER", "app", "on", ">old-pw", "~*", "+@all"]);
        r.cmd(&["ACL", "SAVE"]);
        let mut p = r.provider();
        assert_eq!(p.persistence(), &Persistence::AclFile);
        p.check_admin().unwrap();
        let snapshot = stored(&mut p, "app");
        p.set_password("app", &Secret::new("new-pw")).unwrap();
        p.set_password("created", &Secret::new("created-pw"))
            .unwrap();
        p.set_password("", &Secret::new("default-new")).unwrap();
        drop(p);
        r.restart();
        assert!(r.try_login("app", "new-pw") && !r.try_login("app", "old-pw"));
        assert!(r.try_login("created", "created-pw"));
        assert!(r.try_login("", "default-new") && !r.try_login("", &r.default_pass));
        let acl = std::fs::read_to_string(r.acl_file()).unwrap();
        assert!(
            !acl.contains("new-pw") && !acl.contains("default-new"),
            "the ACL file holds plaintext"
        );

        let mut p = r.provider();
        p.restore_stored("app", &snapshot).unwrap();
        p.drop_user("created").unwrap();
        drop(p);
        r.restart();
        assert!(r.try_login("app", "old-pw") && !r.try_login("app", "new-pw"));
        assert_eq!(r.get_user("created"), Value::Nil);
    }
);

db_test!(
    a_failed_save_fails_the_change,
    RedisServer::start(Mode::AclFile),
    |r| {
        r.cmd(&["ACL", "SETUSER", "app", "on", ">save-old", "~*", "+@all"]);
        let mut p = r.provider();
        let snapshot = stored(&mut p, "app");
        // ACL SAVE writes a temporary file beside the ACL file: without the directory it fails
        // (file modes would not do: the tests may run as root).
        let acl_dir = r.acl_file().parent().unwrap().to_owned();
        std::fs::remove_dir_all(&acl_dir).unwrap();
        let err = p.set_password("app", &Secret::new("save-new")).unwrap_err();
        assert_eq!(err.kind, FailureKind::Database, "{err}");
        assert_contains(&err.action, "ACL SAVE");
        assert!(!err.to_string().contains("save-new"));
        // The rollback cannot be saved either: an error, so the engine keeps retrying.
        assert!(p.restore_stored("app", &snapshot).is_err());
        std::fs::create_dir_all(&acl_dir).unwrap();
        p.restore_stored("app", &snapshot).unwrap();
        assert!(r.try_login("app", "save-old") && !r.try_login("app", "save-new"));
        let saved = std::fs::read_to_string(r.acl_file()).unwrap();
        assert_contains(&saved, &sha256_hex(&Secret::new("save-old")));
    }
);

db_test!(
    changes_survive_a_restart_with_a_config_file,
    RedisServer::start(Mode::ConfigFile),
    |r| {
        let mut p = r.provider();
        assert_eq!(p.persistence(), &Persistence::ConfigFile);
        p.check_admin().unwrap();
        p.set_password("app", &Secret::new("conf-pw")).unwrap();
        p.set_password("", &Secret::new("conf-default")).unwrap();
        // A quote would make redis.conf unreadable: refused, and nothing written.
        let err = p.set_password("it's", &Secret::new("pw")).unwrap_err();
        assert_eq!(err.kind, FailureKind::InvalidInput, "{err}");
        assert_contains(&err.detail, "config file");
        drop(p);
        r.restart();
        assert!(r.try_login("app", "conf-pw") && !r.try_login("app", "conf-pw2"));
        assert!(r.try_login("", "conf-default") && !r.try_login("", &r.default_pass));
        assert_eq!(r.get_user("it's"), Value::Nil);
    }
);

db_test!(
    requirepass_survives_a_restart_with_a_config_file,
    RedisServer::start(Mode::NoAclConfigFile),
    requirepass_is_kept_in_the_config_file
);

/// requirepass changed by the provider is written to the config file (`CONFIG REWRITE`),
/// on a server started in [`Mode::NoAclConfigFile`].
pub fn requirepass_is_kept_in_the_config_file(r: &mut RedisServer) {
    let mut p = r.provider();
    assert!(!p.has_acl());
    assert_eq!(p.persistence(), &Persistence::ConfigFile);
    p.set_password("", &Secret::new("req-conf-new")).unwrap();
    drop(p);
    r.restart();
    assert!(r.try_login("", "req-conf-new") && !r.try_login("", &r.admin_pass));
}

db_test!(
    check_admin_names_the_missing_acl_rights,
    RedisServer::start(Mode::AclFile),
    |r| {
        // May read and look at itself and the config, not change or save users.
        let reader = r.weak_admin();
        r.cmd(&[
            "ACL",
            "SETUSER",
            "nosave",
            "on",
            ">nosave-pw",
            "~*",
            "+@all",
            "-acl|save",
        ]);
        r.cmd(&[
            "ACL",
            "SETUSER",
            "noacl",
            "on",
            ">noacl-pw",
            "~*",
            "+@read",
            "+config|get",
            "+info",
        ]);
        let check = |user: &str, pw: &str| {
            Redis::connect(&r.target_as(user, pw, r.port))
                .unwrap()
                .check_admin()
        };
        let e = check(&reader.user, &reader.password).unwrap_err();
        assert_eq!(e.kind, FailureKind::Privilege);
        assert_contains(&e.detail, "ACL SETUSER");
        assert_contains(&e.detail, "ACL SAVE");
        assert_contains(&e.detail, "+acl|setuser");
        let e = check("nosave", "nosave-pw").unwrap_err();
        assert_contains(&e.detail, "run ACL SAVE;");
        assert_lacks(&e.detail, "run ACL SETUSER");
        let e = check("noacl", "noacl-pw").unwrap_err();
        assert_eq!(e.kind, FailureKind::Privilege, "{e}");
        assert!(!e.to_string().contains("noacl-pw"));
        let e = Redis::connect(&r.target_as("ska_admin", "wrong-admin-pw", r.port))
            .err()
            .expect("a wrong admin password is refused");
        assert_eq!(e.kind, FailureKind::AuthRejected, "{e}");
        assert!(!e.to_string().contains("wrong-admin-pw"));
    }
);

crate::scenarios::timeout_scenarios!(RedisServer::start(Mode::MemoryOnly));

// ---- the shared failure scenarios, through the agent binary ----

crate::scenarios::shared_scenarios!(RedisServer::open(), verify_fails_rolls_back);

db_test!(
    the_default_user_is_rotated_end_to_end,
    RedisServer::open(),
    |db| {
        let r: &RedisServer = db;
        let w = World::plain(db);
        w.cp.with_secret(&w.secret, |s| {
            s.managed_username = "default".into();
            s.live_value = json!({"password": r.default_pass}).to_string();
        });
        let agent = w.start();
        // No username in the value: the sync config's managed user, "default", is rotated.
        w.cp.set_pending(
            &w.secret,
            "rot_default",
            &json!({"password": "default-new-pw"}).to_string(),
        );
        w.wait_confirmed("rot_default", &agent);
        w.wait_journal_cleared(&agent);
        assert!(
            r.try_login("", "default-new-pw"),
            "the default user did not get the new password"
        );
        assert!(
            !r.try_login("", &r.default_pass),
            "the default user still takes the old password"
        );
        assert!(
            r.try_login(&w.user, &w.old_pw),
            "the scenario's named user was touched"
        );
        let output = agent.output();
        w.finish(agent, &[&r.default_pass, "default-new-pw"]);
        assert_lacks(&output, "only in memory");
    }
);

db_test!(
    an_empty_user_name_means_the_default_user,
    RedisServer::open(),
    |db| {
        let r: &RedisServer = db;
        let w = World::plain(db);
        // Neither the value nor the sync config names a user: Redis's own rule applies.
        w.cp.with_secret(&w.secret, |s| {
            s.managed_username = String::new();
            s.live_value = json!({"username": "", "password": r.default_pass}).to_string();
        });
        let agent = w.start();
        w.cp.set_pending(
            &w.secret,
            "rot_unnamed",
            &json!({"username": "", "password": "unnamed-new-pw"}).to_string(),
        );
        w.wait_confirmed("rot_unnamed", &agent);
        w.wait_journal_cleared(&agent);
        assert!(r.try_login("default", "unnamed-new-pw"));
        assert!(!r.try_login("default", &r.default_pass));
        assert!(r.try_login(&w.user, &w.old_pw), "another user was touched");
        w.finish(agent, &[&r.default_pass, "unnamed-new-pw"]);
    }
);

db_test!(
    a_memory_only_server_warns_once_per_rotation,
    RedisServer::start(Mode::MemoryOnly),
    |db| {
        let w = World::plain(db);
        let agent = w.start();
        w.cp.set_pending(&w.secret, "rot_mem", &secret_value(&w.user, "mem-new-pw"));
        w.wait_confirmed("rot_mem", &agent);
        w.wait_journal_cleared(&agent);
        assert_password(db, &w.user, "mem-new-pw", &w.old_pw);
        w.rotate_with_logins_blocked(&agent, "rot_mem2", "mem-newer-pw");
        let output = agent.output();
        assert_eq!(
            output.matches("only in memory").count(),
            2,
            "one warning per rotation (apply + rollback share one):\n{output}"
        );
        w.finish(agent, &[&w.old_pw, "mem-new-pw", "mem-newer-pw"]);
    }
);
