//! Drift: the database stops accepting the live value behind the agent's
//! back (a user dropped, a password changed by hand). An idle agent notices within its drift
//! interval, says so in a heartbeat, and makes the live value log in again through the
//! journaled apply path; in detect-only mode it only reports, until fixed.
//!
//! Only a wrong password is repaired: a login refused for another reason
//! (NOLOGIN, a locked or disabled account) is reported once and costs one failed login, as
//! the server counts them, however many polls follow; where the admin cannot tell, logins
//! back off; and repairs are capped per hour.

use std::time::{Duration, Instant};

use crate::support::AgentProcess;
use crate::support::SOON;
use crate::support::world::{Database, World};

/// Drift interval of the agents in this file.
const DRIFT_MS: u64 = 500;

fn start_agent(w: &World, repair: bool) -> AgentProcess {
    let mut cmd = w.machine.command(&["start", "--secret", &w.secret]);
    cmd.env("SIKKERKEY_AGENT_DRIFT_MS", DRIFT_MS.to_string());
    if !repair {
        cmd.env("SIKKERKEY_DRIFT_REPAIR", "off");
    }
    let mut agent = AgentProcess::spawn(cmd);
    w.wait_healthy(&mut agent);
    agent
}

/// Breaks the live value with `break_it`, then watches the agent report and repair it.
/// Returns (break → error heartbeat, break → live value logs in).
fn drift_is_reported_and_repaired(
    db: &dyn Database,
    break_it: &dyn Fn(&World),
) -> (Duration, Duration) {
    let w = World::plain(db);
    let agent = start_agent(&w, true);
    break_it(&w);
    let broken = Instant::now();
    // That the break took is shown by the drift heartbeat checked below: a login here
    // could already meet the repair.
    agent.wait_until(SOON, "the live value to log in again", || {
        db.can_login(&w.user, &w.old_pw)
    });
    let repaired = broken.elapsed();
    let beats = w.cp.heartbeats(&w.secret);
    let error = beats
        .iter()
        .find(|h| h.at > broken && h.status == "error" && h.error.contains("drift"))
        .unwrap_or_else(|| panic!("no drift heartbeat: {beats:?}"));
    assert!(error.error.contains(&w.user), "{}", error.error);
    let reported = error.at - broken;
    agent.wait_until(SOON, "the repair's warning", || {
        agent.output().contains("drift repaired")
    });
    assert!(!w.journal_exists());
    let n = w.cp.heartbeats(&w.secret).len();
    agent.wait_until(SOON, "healthy again", || {
        w.cp.heartbeats(&w.secret)
            .get(n..)
            .is_some_and(|hs| hs.iter().any(|h| h.status == "healthy"))
    });
    if std::env::var_os("SKA_SHOW_AGENT").is_some() {
        eprintln!("{}", agent.output());
    }
    // Nothing about rotations changed.
    assert!(w.cp.confirms(&w.secret).is_empty() && w.cp.rejects(&w.secret).is_empty());
    w.finish(agent, &[&w.old_pw]);
    (reported, repaired)
}

/// The idle check is one login as the managed user and nothing else: with the admin's
/// password in the sync config made wrong (no rotation needs it meanwhile), the agent
/// stays healthy through many drift intervals, and still notices a drift (which it then
/// cannot repair until the admin works again).
#[cfg(any(feature = "postgres", feature = "redis", feature = "mongodb"))]
fn the_check_is_one_login_as_the_managed_user(db: &dyn Database) {
    let w = World::plain(db);
    let agent = start_agent(&w, true);
    w.cp.with_secret(&w.secret, |s| {
        s.connection["adminPass"] = serde_json::json!("not-the-admin-password");
    });
    agent.wait_until(SOON, "the new connection details", || {
        agent.output().contains("connection details changed")
    });
    // 12 heartbeats of 250 ms: at least six drift intervals.
    let n = w.cp.heartbeats(&w.secret).len();
    agent.wait_until(SOON, "a dozen heartbeats", || {
        w.cp.heartbeats(&w.secret).len() >= n + 12
    });
    let beats = w.cp.heartbeats(&w.secret);
    assert!(
        beats[n..].iter().all(|h| h.status == "healthy"),
        "the idle check needed the admin: {:?}",
        beats[n..].to_vec()
    );
    w.db.drop_user(&w.user);
    let broken = Instant::now();
    agent.wait_until(SOON, "the drift to be reported", || {
        w.cp.heartbeats(&w.secret)
            .iter()
            .any(|h| h.at > broken && h.error.contains("the repair failed"))
    });
    let admin_pw = w.db.admin_password();
    w.cp.with_secret(&w.secret, |s| {
        s.connection["adminPass"] = serde_json::json!(admin_pw);
    });
    agent.wait_until(SOON, "the live value to log in again", || {
        w.db.can_login(&w.user, &w.old_pw)
    });
    w.finish(agent, &[&w.old_pw, "not-the-admin-password"]);
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
/// Checks at every poll (150 ms), so ten polls are ten chances to fail a login.
fn start_checking_every_poll(w: &World, repair: bool, extra: &[(&str, &str)]) -> AgentProcess {
    let mut env = vec![("SIKKERKEY_AGENT_DRIFT_MS", "150")];
    if !repair {
        env.push(("SIKKERKEY_DRIFT_REPAIR", "off"));
    }
    env.extend_from_slice(extra);
    let mut agent = w.spawn_agent_with(&env);
    w.wait_healthy(&mut agent);
    agent
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
/// Waits until the agent has polled `n` more times.
fn wait_polls(w: &World, agent: &AgentProcess, n: usize) -> usize {
    let start = w.cp.calls(crate::support::Endpoint::SyncConfig);
    agent.wait_until(SOON, &format!("{n} more polls"), || {
        w.cp.calls(crate::support::Endpoint::SyncConfig) >= start + n
    });
    w.cp.calls(crate::support::Endpoint::SyncConfig) - start
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
/// The user's logins are blocked (NOLOGIN, ACCOUNT LOCK, ACL off) while the password is
/// right: the agent reports it once, naming `names`, never repairs it, and over ten polls
/// the server counts one failed login (`failed_logins`, when the server can count them).
/// Once unblocked, the next check sees the live value log in again.
fn a_refusal_that_is_not_the_password_costs_one_failed_login(
    db: &dyn Database,
    names: &str,
    failed_logins: Option<&dyn Fn(&str) -> usize>,
) {
    let w = World::plain(db);
    let agent = start_checking_every_poll(&w, true, &[]);
    let before = failed_logins.map(|count| count(&w.user));
    db.block_login(&w.user);
    let blocked = Instant::now();
    agent.wait_until(SOON, "the refusal reported", || {
        w.cp.heartbeats(&w.secret)
            .iter()
            .any(|h| h.at > blocked && h.status == "error" && h.error.contains(names))
    });
    let polls = wait_polls(&w, &agent, 10);
    let out = agent.output();
    if let (Some(count), Some(before)) = (failed_logins, before) {
        let failed = count(&w.user) - before;
        eprintln!(
            "MEASURED: {} blocked login ({names}): {failed} failed login(s) over {polls} polls",
            db.provider_type()
        );
        assert_eq!(
            failed, 1,
            "failed logins over {polls} polls; agent output:\n{out}"
        );
    }
    let reported = out
        .lines()
        .filter(|l| l.contains("not a wrong password"))
        .count();
    assert_eq!(reported, 1, "reported once per change:\n{out}");
    assert!(
        !out.contains("set again") && !out.contains("drift repaired"),
        "{out}"
    );
    assert!(!w.journal_exists());
    let beats = w.cp.heartbeats(&w.secret);
    let last = beats.last().unwrap();
    assert!(
        last.status == "error" && last.error.contains(names),
        "{last:?}"
    );
    db.unblock_login(&w.user);
    agent.wait_until(SOON, "the live value logs in again", || {
        agent.output().contains("logs in again")
    });
    let n = w.cp.heartbeats(&w.secret).len();
    agent.wait_until(SOON, "healthy again", || {
        w.cp.heartbeats(&w.secret)
            .get(n..)
            .is_some_and(|hs| hs.iter().any(|h| h.status == "healthy"))
    });
    assert!(db.can_login(&w.user, &w.old_pw));
    if std::env::var_os("SKA_SHOW_AGENT").is_some() {
        eprintln!("{}", agent.output());
    }
    w.finish(agent, &[&w.old_pw]);
}

fn dropped(w: &World) {
    w.db.drop_user(&w.user);
}

/// The user is dropped behind the agent's back: reported, then created again with the
/// live value (one of the shared scenarios, so it runs on every server version).
pub fn a_dropped_user_is_recreated(db: &dyn Database) {
    report(
        db.provider_type(),
        "user dropped",
        drift_is_reported_and_repaired(db, &dropped),
    );
}

fn report(provider: &str, how: &str, (reported, repaired): (Duration, Duration)) {
    eprintln!(
        "MEASURED: {provider} {how}: error heartbeat after {} ms, live value logs in after {} ms (drift interval {DRIFT_MS} ms, poll 150 ms)",
        reported.as_millis(),
        repaired.as_millis()
    );
    // Within one drift interval plus a poll and the repair job (a debug build spends ~0.5 s
    // in each SCRAM/PBKDF2 computation, and the repair does three or four).
    assert!(
        repaired < Duration::from_millis(DRIFT_MS + 10_000),
        "{repaired:?}"
    );
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::support::db::postgres::Pg;

    #[test]
    fn a_password_changed_by_hand_is_set_back() {
        let Some(pg) = Pg::open() else { return };
        let changed = |w: &World| {
            let verifier = postgres_protocol::password::scram_sha_256(b"set-by-a-dba");
            pg.admin()
                .batch_execute(&format!(
                    "ALTER ROLE \"{}\" PASSWORD '{verifier}'",
                    w.user.replace('"', "\"\"")
                ))
                .unwrap();
        };
        report(
            "PostgreSQL",
            "password changed",
            drift_is_reported_and_repaired(&pg, &changed),
        );
    }

    #[test]
    fn the_idle_check_needs_no_admin() {
        let Some(pg) = Pg::open() else { return };
        the_check_is_one_login_as_the_managed_user(&pg);
    }

    /// A NOLOGIN role with drift on: the failed logins counted in the server's own log
    /// over ten polls are one.
    #[test]
    fn a_nologin_role_costs_one_failed_login_and_is_never_repaired() {
        let Some(pg) = Pg::open() else { return };
        a_refusal_that_is_not_the_password_costs_one_failed_login(
            &pg,
            "NOLOGIN",
            Some(&|user| pg.failed_logins(user)),
        );
    }

    fn set_by_hand(pg: &Pg, user: &str, password: &str) {
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        pg.exec(&format!(
            "ALTER ROLE {} PASSWORD '{verifier}'",
            crate::support::db::postgres::ident(user)
        ));
    }

    /// Detect-only after a manual change, with an admin that cannot read stored
    /// verifiers (CREATEROLE): it cannot tell without a login, so it logs in again with
    /// backoff: far fewer failed logins than polls (one per poll before). With a
    /// superuser admin the stored verifier shows the password is still wrong, so after
    /// the first failed login it asks the admin, not the login.
    #[test]
    fn detect_only_after_a_manual_change_backs_off_or_asks_the_admin() {
        let Some(pg) = Pg::open() else { return };
        for readable in [false, true] {
            let w = World::plain(&pg);
            let admin = (!readable).then(|| pg.createrole_admin_for(&w.user));
            if let Some((name, pw)) = &admin {
                w.use_admin(name, pw);
            }
            let agent = start_checking_every_poll(&w, false, &[]);
            let before = pg.failed_logins(&w.user);
            set_by_hand(&pg, &w.user, "set-by-a-dba");
            let changed = Instant::now();
            agent.wait_until(SOON, "a detect-only drift heartbeat", || {
                w.cp.heartbeats(&w.secret)
                    .iter()
                    .any(|h| h.at > changed && h.error.contains("detect-only"))
            });
            let polls = wait_polls(&w, &agent, 40);
            let failed = pg.failed_logins(&w.user) - before;
            eprintln!(
                "MEASURED: PostgreSQL detect-only, admin {} stored verifiers: {failed} failed login(s) over {polls} polls",
                if readable { "reads" } else { "cannot read" }
            );
            if readable {
                assert_eq!(failed, 1, "{}", agent.output());
            } else {
                // Backoff from one poll, doubling: about log2(polls) + 1 logins.
                let bound = (polls as f64).log2().floor() as usize + 2;
                assert!(
                    (2..=bound).contains(&failed),
                    "{failed} over {polls} polls (bound {bound}):\n{}",
                    agent.output()
                );
            }
            assert!(!agent.output().contains("set again"));
            // The DBA puts the live value back: healthy again.
            set_by_hand(&pg, &w.user, &w.old_pw);
            let n = w.cp.heartbeats(&w.secret).len();
            agent.wait_until(SOON, "healthy once fixed", || {
                w.cp.heartbeats(&w.secret)
                    .get(n..)
                    .is_some_and(|hs| hs.iter().any(|h| h.status == "healthy"))
            });
            w.finish(agent, &[&w.old_pw]);
            if let Some((name, _)) = admin {
                pg.drop_user(&name);
            }
        }
    }

    /// At most three repairs in the cap's window (here shortened to 15 s): a fourth change
    /// within it is reported, not repaired, until the first repair leaves the window.
    #[test]
    fn repairs_are_capped_per_window() {
        let Some(pg) = Pg::open() else { return };
        let w = World::plain(&pg);
        let agent = start_checking_every_poll(
            &w,
            true,
            &[("SIKKERKEY_AGENT_DRIFT_REPAIR_WINDOW_MS", "15000")],
        );
        let repairs = || agent.output().matches("drift repaired").count();
        let mut first_repair = None;
        for n in 1..=3 {
            set_by_hand(&pg, &w.user, &format!("set-by-hand-{n}"));
            agent.wait_until(SOON, &format!("repair {n}"), || repairs() == n);
            first_repair.get_or_insert_with(Instant::now);
            assert!(pg.can_login(&w.user, &w.old_pw));
        }
        let first_repair = first_repair.unwrap();
        set_by_hand(&pg, &w.user, "set-by-hand-4");
        let changed = Instant::now();
        agent.wait_until(SOON, "the cap reported", || {
            w.cp.heartbeats(&w.secret)
                .iter()
                .any(|h| h.at > changed && h.error.contains("(the cap)"))
        });
        assert_eq!(repairs(), 3);
        assert!(!pg.can_login(&w.user, &w.old_pw), "repaired past the cap");
        agent.wait_until(SOON, "the fourth repair, once the window moved on", || {
            repairs() == 4
        });
        let waited = first_repair.elapsed();
        assert!(
            waited >= Duration::from_secs(13),
            "repaired {waited:?} after the first repair"
        );
        assert!(pg.can_login(&w.user, &w.old_pw));
        w.finish(agent, &[&w.old_pw]);
    }

    #[test]
    fn detect_only_reports_until_a_human_fixes_it() {
        let Some(pg) = Pg::open() else { return };
        let w = World::plain(&pg);
        let agent = start_agent(&w, false);
        w.db.drop_user(&w.user);
        let broken = Instant::now();
        agent.wait_until(SOON, "a detect-only drift heartbeat", || {
            w.cp.heartbeats(&w.secret)
                .iter()
                .any(|h| h.at > broken && h.error.contains("detect-only"))
        });
        // Several more intervals: still reported, still not repaired.
        let n = w.cp.heartbeats(&w.secret).len();
        agent.wait_until(SOON, "more heartbeats", || {
            w.cp.heartbeats(&w.secret).len() >= n + 8
        });
        assert!(
            w.cp.heartbeats(&w.secret)[n..]
                .iter()
                .all(|h| h.status == "error" && h.error.contains("drift")),
            "{:?}",
            w.cp.heartbeats(&w.secret)[n..].to_vec()
        );
        assert!(!pg.can_login(&w.user, &w.old_pw));
        // The DBA puts the user back: healthy again within a poll.
        pg.create_user(&w.user, &w.old_pw);
        let n = w.cp.heartbeats(&w.secret).len();
        agent.wait_until(SOON, "healthy once fixed", || {
            w.cp.heartbeats(&w.secret)
                .get(n..)
                .is_some_and(|hs| hs.iter().any(|h| h.status == "healthy"))
        });
        assert!(!agent.output().contains("drift repaired"));
        w.finish(agent, &[&w.old_pw]);
    }
}

/// MariaDB: a locked account (ACCOUNT LOCK) is not a wrong password. The test server's
/// failed logins are not counted per user, so this checks the verdict and the silence.
#[cfg(feature = "mysql")]
#[test]
fn mysql_a_locked_account_is_reported_not_repaired() {
    let Some(my) = crate::support::db::mysql::My::open() else {
        return;
    };
    a_refusal_that_is_not_the_password_costs_one_failed_login(
        &my,
        "is locked (ACCOUNT LOCK)",
        None,
    );
}

/// Redis answers WRONGPASS for a disabled user too; the admin's ACL GETUSER tells them
/// apart. Failed logins counted by the server's ACL LOG.
#[cfg(feature = "redis")]
#[test]
fn redis_a_disabled_user_costs_one_failed_login_and_is_never_repaired() {
    let Some(db) = crate::support::db::redis::RedisServer::open() else {
        return;
    };
    a_refusal_that_is_not_the_password_costs_one_failed_login(
        &db,
        "is disabled",
        Some(&|user| db.failed_logins(user)),
    );
}

#[cfg(feature = "redis")]
#[test]
fn redis_the_idle_check_needs_no_admin() {
    let Some(db) = crate::support::db::redis::RedisServer::open() else {
        return;
    };
    the_check_is_one_login_as_the_managed_user(&db);
}

#[cfg(feature = "mongodb")]
#[test]
fn mongodb_the_idle_check_needs_no_admin() {
    let Some(mongo) = crate::support::db::mongodb::Mongo::open() else {
        return;
    };
    the_check_is_one_login_as_the_managed_user(&mongo);
}
