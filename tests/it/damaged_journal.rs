//! Local state that is damaged or foreign never wedges a secret: a
//! journal truncated after a kill between apply and confirm is moved aside, the database is
//! brought back to the live value, then the pending rotation goes through; and a journaled
//! rotation is finished on the database it ran against, even when the sync config now
//! points elsewhere.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::scenarios::kill_after_apply;
use crate::support::SOON;
use crate::support::db::postgres::Pg;
use crate::support::proxy::TcpProxy;
use crate::support::world::{World, assert_password, secret_value};
use crate::support::{AgentProcess, Endpoint, Fault, random_text, unique_name};

fn damaged_copies(w: &World) -> Vec<PathBuf> {
    let prefix = format!("{}.journal.damaged-", w.secret);
    std::fs::read_dir(w.machine.agents_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect()
}

#[test]
fn a_truncated_journal_is_set_aside_and_the_secret_recovers_from_the_server() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let new_pw = format!("new-{}", random_text(16));
    kill_after_apply(&w, "rot_trunc", &w.user, &new_pw);
    // The database holds the unconfirmed password; the server still the old one.
    assert_password(&pg, &w.user, &new_pw, &w.old_pw);
    let journal = w.machine.journal(&w.secret);
    let text = std::fs::read(&journal).unwrap();
    std::fs::write(&journal, &text[..text.len() / 2]).unwrap();

    let agent = w.machine.spawn_agent(&w.secret);
    agent.wait_until(SOON, "the journal moved aside", || {
        !damaged_copies(&w).is_empty()
    });
    let copies = damaged_copies(&w);
    assert_eq!(copies.len(), 1, "{copies:?}");
    let mode = std::fs::metadata(&copies[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read(&copies[0]).unwrap(), &text[..text.len() / 2]);
    // Recovered first (the live value logs in again), then the pending rotation ran anew.
    w.wait_confirmed("rot_trunc", &agent);
    w.wait_journal_cleared(&agent);
    assert_password(&pg, &w.user, &new_pw, &w.old_pw);
    let out = agent.output();
    let recovered = out
        .find("recovered from the unusable journal")
        .expect("the recovery is logged");
    let applied = out.rfind("pending rotation rot_trunc").unwrap();
    assert!(recovered < applied, "{out}");
    assert!(out.contains("rotation journal is unusable"), "{out}");
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// The log never quotes a damaged journal: serde's messages quote the
/// value they stumble on, and a journal holds the stored verifier. Here the verifier sits
/// where the phase belongs; the agent says where the file fails (line and column), never
/// what is there. And set-aside copies do not pile up: of the older ones, only the newest
/// five within 30 days survive the next one being set aside.
#[test]
fn a_damaged_journal_is_never_quoted_and_old_copies_are_pruned() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let new_pw = format!("new-{}", random_text(16));
    let kind = kill_after_apply(&w, "rot_quote", &w.user, &new_pw);
    assert_eq!(kind, "stored", "the test admin reads pg_authid");
    let journal = w.machine.journal(&w.secret);
    let entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    let verifier = entry["snapshot"]["value"].as_str().unwrap().to_owned();
    assert!(verifier.starts_with("SCRAM-SHA-256$"), "{verifier}");
    let mut damaged = entry.clone();
    damaged["phase"] = serde_json::json!(verifier);
    std::fs::write(&journal, serde_json::to_string_pretty(&damaged).unwrap()).unwrap();
    // Copies set aside before: six recent ones and one from 31 days ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let agents = w.machine.agents_dir();
    let old_copy = |age: u64| agents.join(format!("{}.journal.damaged-{}", w.secret, now - age));
    for age in [10, 20, 30, 40, 50, 60, 31 * 24 * 3600] {
        std::fs::write(old_copy(age), "older damage").unwrap();
    }

    let agent = w.machine.spawn_agent(&w.secret);
    agent.wait_until(SOON, "the journal moved aside", || !w.journal_exists());
    w.wait_confirmed("rot_quote", &agent);
    let out = agent.output();
    assert!(out.contains("rotation journal is unusable"), "{out}");
    assert!(
        out.contains("line "),
        "the error says where the file fails:\n{out}"
    );
    // Neither the verifier nor any of its parts (salt, keys) reaches the log.
    for part in verifier.split(['$', ':']).filter(|p| p.len() >= 8) {
        assert!(
            !out.contains(part),
            "the log quotes the journal ({part}):\n{out}"
        );
    }
    let mut copies = damaged_copies(&w);
    copies.sort();
    assert_eq!(copies.len(), 5, "{copies:?}");
    for age in [50, 60, 31 * 24 * 3600] {
        assert!(!old_copy(age).exists(), "kept {}", old_copy(age).display());
    }
    for age in [10, 20, 30, 40] {
        assert!(old_copy(age).exists(), "pruned {}", old_copy(age).display());
    }
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

#[test]
fn a_journal_of_another_secret_is_set_aside_not_obeyed() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let new_pw = format!("new-{}", random_text(16));
    kill_after_apply(&w, "rot_foreign", &w.user, &new_pw);
    let journal = w.machine.journal(&w.secret);
    let text = std::fs::read_to_string(&journal).unwrap();
    let foreign = text.replace(&format!("\"{}\"", w.secret), "\"sk_someone_else\"");
    assert_ne!(text, foreign);
    std::fs::write(&journal, foreign).unwrap();
    // Meanwhile the server dropped the rotation: the live value (old) must log in again.
    w.cp.clear_pending(&w.secret);
    let agent = w.machine.spawn_agent(&w.secret);
    agent.wait_until(SOON, "the journal moved aside", || {
        !damaged_copies(&w).is_empty() && !w.journal_exists()
    });
    agent.wait_until(SOON, "the live value to log in again", || {
        pg_logs_in(&pg, &w.user, &w.old_pw)
    });
    assert_password(&pg, &w.user, &w.old_pw, &new_pw);
    assert!(agent.output().contains("another secret (sk_someone_else)"));
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

fn pg_logs_in(pg: &Pg, user: &str, password: &str) -> bool {
    use crate::support::world::Database;
    pg.can_login(user, password)
}

#[test]
fn a_journaled_rotation_is_finished_where_it_ran_when_the_config_moved() {
    let Some(pg) = Pg::open() else { return };
    let user = unique_name("ska_moved");
    let old_pw = format!("old-{}", random_text(12));
    let w = World::new(&pg, user, old_pw, true);
    let new_pw = format!("new-{}", random_text(16));
    kill_after_apply(&w, "rot_moved", &w.user, &new_pw);
    assert_password(&pg, &w.user, &new_pw, &w.old_pw);
    // The dashboard now points at another endpoint (here: another way into the same
    // cluster), the server gave the rotation up, and the endpoint the rotation ran against
    // is down. Settling through the new endpoint would be settling the wrong database.
    let (host, port) = crate::support::world::Database::endpoint(&pg);
    let elsewhere = TcpProxy::start(&format!("{host}:{port}"));
    w.cp.with_secret(&w.secret, |s| {
        s.connection["port"] = elsewhere.port().into()
    });
    w.cp.clear_pending(&w.secret);
    w.proxy.as_ref().unwrap().cut();
    let agent = AgentProcess::spawn(w.machine.command(&["start", "--secret", &w.secret]));
    agent.wait_until(SOON, "the warning that the rotation ran elsewhere", || {
        agent.output().contains("finishing it where it ran")
    });
    assert!(w.journal_exists(), "settled on the wrong database");
    w.proxy.as_ref().unwrap().restore();
    w.wait_journal_cleared(&agent);
    assert!(
        pg_logs_in(&pg, &w.user, &w.old_pw),
        "the live value does not log in; agent output:\n{}",
        agent.output()
    );
    assert_password(&pg, &w.user, &w.old_pw, &new_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// 403 while the journal holds an applied, unconfirmed rotation: the server never promoted
/// it, so the database goes back to the old password before the agent exits.
#[test]
fn access_revoked_mid_rotation_puts_the_old_password_back_before_exiting() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let mut agent = w.start();
    w.cp.inject(Endpoint::Confirm, Fault::Status(503), 1000);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_revoked", &secret_value(&w.user, &new_pw));
    agent.wait_until(SOON, "the journal in phase confirming", || {
        std::fs::read_to_string(w.machine.journal(&w.secret))
            .is_ok_and(|t| t.contains("\"confirming\""))
    });
    assert_password(&pg, &w.user, &new_pw, &w.old_pw);
    w.cp.revoke(&w.secret, &w.machine.id);
    let status = agent.wait_exit(SOON);
    assert_eq!(status.code(), Some(0), "{}", agent.output());
    assert!(
        agent.output().contains("is back on its previous password"),
        "{}",
        agent.output()
    );
    assert!(!w.journal_exists());
    assert_password(&pg, &w.user, &w.old_pw, &new_pw);
}
