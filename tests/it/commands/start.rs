//! `start` with a local config: it overrides the server's connection details, and `list`,
//! `stop` and `remove` then see the agent through its files.

use serde_json::{Value, json};

use crate::support::assertions::Exit;
use crate::support::cli::{agent_file, run};
use crate::support::db::db_test;
use crate::support::db::postgres::Pg;
use crate::support::world::{Database, World, assert_no_leak, assert_password};
use crate::support::{SOON, random_text, wait_until};

use super::with_postgres::{admin, break_server_connection, configure};

// The server's connection details are unusable; the agent still rotates because the
// local config (including its field names) overrides them. Then `list`, `stop` and
// `remove` see the agent through its files.
db_test!(
    start_uses_the_local_config_over_the_servers_then_list_stop_remove,
    Pg::open(),
    |pg| {
        let w = World::plain(pg);
        break_server_connection(&w);
        let field_value = |user: &str, pw: &str| json!({"login": user, "secret": pw}).to_string();
        w.cp.with_secret(&w.secret, |s| {
            s.live_value = field_value(&w.user, &w.old_pw)
        });

        // Without a local config the server's details are all the agent has, and they fail.
        let mut agent = w.machine.spawn_agent(&w.secret);
        agent.expect_exit(Exit::Database);

        let (admin_user, admin_pass) = admin(pg);
        configure(
            &w,
            &admin_user,
            &admin_pass,
            &["--username-field", "login", "--password-field", "secret"],
        );
        let agent = w.start();
        let new_pw = format!("new-{}", random_text(16));
        w.cp.set_pending(&w.secret, "rot_local", &field_value(&w.user, &new_pw));
        w.wait_confirmed("rot_local", &agent);
        assert_password(pg, &w.user, &new_pw, &w.old_pw);

        let home = w.machine.home.path();
        let list = |w: &World| -> Value {
            let out = run(w.machine.command(&["list", "-o", "json"])).expect(Exit::Ok);
            serde_json::from_str(&out.stdout).unwrap()
        };
        wait_until(SOON, "list shows the confirmed rotation", || {
            list(&w)[0]["lastRotation"]["outcome"] == "confirmed"
        });
        let entry = list(&w)[0].clone();
        let (host, port) = pg.endpoint();
        assert_eq!(entry["secretId"], w.secret.as_str());
        assert_eq!(entry["provider"], "postgresql");
        assert_eq!(entry["endpoint"], format!("{host}:{port}"));
        assert_eq!(entry["running"], true);
        assert_eq!(entry["pid"], agent.pid());
        assert_eq!(entry["configured"], true);
        assert_eq!(entry["lastRotation"]["rotationId"], "rot_local");
        assert_eq!(entry["lastHeartbeat"]["status"], "healthy");
        assert_eq!(entry["lastHeartbeat"]["delivered"], true);

        let mut agent = agent;
        let out = run(w.machine.command(&["stop", "--secret", &w.secret])).expect(Exit::Ok);
        assert!(
            out.stdout.starts_with("stopped the agent"),
            "{}",
            out.stdout
        );
        agent.expect_exit(Exit::Ok);
        let entry = list(&w)[0].clone();
        assert_eq!(entry["running"], false);
        assert_eq!(entry["pid"], Value::Null);

        let out = run(w.machine.command(&["remove", "--secret", &w.secret])).expect(Exit::Ok);
        for ext in ["json", "state.json"] {
            let path = agent_file(home, &w.secret, ext);
            assert!(
                !path.exists() && out.stdout.contains(&path.display().to_string()),
                "{}",
                out.stdout
            );
        }
        assert_eq!(list(&w), json!([]));
        assert_no_leak(&agent.output(), &[&w.old_pw, &new_pw], &admin_pass);
    }
);
