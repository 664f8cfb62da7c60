//! The official agent (SikkerKey CLI 4.2.0) against our fake control plane: if it signs,
//! polls, applies and confirms without a single 401, the fake speaks the real protocol and
//! the rest of the suite tests against something true.

use crate::support::db::db_test;
use crate::support::db::postgres::Pg;
use crate::support::world::{World, assert_password, secret_value};
use crate::support::{AgentProcess, Endpoint, SOON, require_env, wait_until};

db_test!(
    official_agent_rotates_through_the_fake_control_plane,
    Pg::open(),
    |pg| {
        let Some(official) = require_env("SKA_OFFICIAL_AGENT", "the official SikkerKey CLI") else {
            return;
        };
        let w = World::plain(pg);
        w.cp.with_secret(&w.secret, |s| s.poll_interval_seconds = 5);
        // The official agent puts passwords into a libpq DSN unquoted: keep this one plain.
        let new_pw = "officialNewPw123";
        w.cp.set_pending(&w.secret, "rot_official", &secret_value(&w.user, new_pw));
        let agent = AgentProcess::spawn(w.machine.official_style_command(&official, &w.secret));
        w.wait_confirmed("rot_official", &agent);
        wait_until(SOON, "a heartbeat from the official agent", || {
            !w.cp.heartbeats(&w.secret).is_empty()
        });
        assert!(w.cp.calls(Endpoint::SyncConfig) >= 1);
        assert!(
            w.cp.unauthorized().is_empty(),
            "the official agent earned 401s: {:?}",
            w.cp.unauthorized()
        );
        assert_password(pg, &w.user, new_pw, &w.old_pw);
        drop(agent);
    }
);
