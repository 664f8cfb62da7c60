//! A real `mongod` (6.0; the base MongoDB-compatible server is SecantusDB,
//! tests/it/mongodb.rs), twice: standalone without TLS, which runs the shared scenarios
//! (through the login gate and the proxies they need), and a replica set of one that
//! speaks TLS only, which runs the TLS checks (with the standalone as the plaintext-only
//! server `require` must refuse). Both show what only a real server can: users with only
//! SCRAM-SHA-1 or only SCRAM-SHA-256 credentials, in the managed database and in `admin`,
//! rotated by the agent with `updateUser` and logging in with the mechanism they have;
//! and the official agent becoming healthy and rotating against it.

use ::mongodb::bson::{Bson, doc};
use serde_json::json;
use sikkerkey_agent::providers::ProviderKind;

use crate::support::cli;
use crate::support::db::mongodb::Mongo;
use crate::support::world::{World, assert_password, secret_value};
use crate::support::{
    AgentProcess, FakeControlPlane, Machine, SOON, SecretState, random_text, require_env,
    unique_name, wait_until,
};
use crate::tls::mongodb::MongoTls;
use crate::tls::{Pki, Server, Servers};

pub fn open(prefix: &str) -> Option<Mongo> {
    Mongo::from_env(prefix, &format!("the matrix server {prefix}"))
}

/// The TLS-only replica set, with the run's CA for the test's own clients.
pub fn open_tls(prefix: &str) -> Option<Mongo> {
    let ca = require_env("SKA_TLS_CA", "the run's test CA")?;
    Mongo::from_env_with(prefix, &format!("the matrix server {prefix}"), Some(ca))
}

fn server(m: &Mongo) -> Server {
    Server {
        host: m.host.clone(),
        port: m.port,
        admin_user: m.admin_user.clone(),
        admin_pass: m.admin_pass.clone(),
        database: String::new(),
    }
}

/// The TLS-only server `tls` and the plaintext-only `plain`, both real mongods.
pub fn tls_pair(tls: &str, plain: &str) -> Option<MongoTls> {
    let t = open_tls(tls)?;
    let p = open(plain)?;
    Some(MongoTls {
        pair: Servers {
            kind: ProviderKind::Mongodb,
            pki: Pki::from_env(&format!("the matrix server {tls} over TLS"))?,
            tls: server(&t),
            plain: server(&p),
        },
    })
}

/// For each SCRAM mechanism alone, in the managed database `skatest` and in `admin`: a
/// user with only that mechanism's credential is rotated by the agent (configured with
/// `configure`, over TLS verify-full when `pki` is given). The rotation confirms, the new
/// password logs in and the old one is refused, and the user has the same mechanisms as
/// before: the agent's `updateUser` neither drops nor adds one.
pub fn scram_mechanisms_are_kept(m: &Mongo, pki: Option<&Pki>) {
    for (database, mechanism) in [
        ("skatest", "SCRAM-SHA-1"),
        ("skatest", "SCRAM-SHA-256"),
        ("admin", "SCRAM-SHA-1"),
        ("admin", "SCRAM-SHA-256"),
    ] {
        let user = unique_name("ska_mech");
        let old_pw = format!("old-{}", random_text(12));
        m.exec(
            database,
            doc! { "createUser": &user, "pwd": &old_pw, "mechanisms": [mechanism],
            "roles": [ { "role": "read", "db": database } ] },
        );
        let mechanisms = |m: &Mongo| -> Vec<String> {
            let info = m.user_info(database, &user).expect("the user");
            info.get_array("mechanisms")
                .unwrap()
                .iter()
                .filter_map(Bson::as_str)
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(mechanisms(m), vec![mechanism.to_owned()]);

        let cp = FakeControlPlane::start();
        let machine = Machine::new(&cp);
        let secret = unique_name("sk");
        let connection = json!({"host": m.host, "port": m.port, "database": database,
            "adminUser": m.admin_user, "adminPass": m.admin_pass, "projectReference": ""});
        cp.add_secret(
            &secret,
            SecretState::new("mongodb", connection, &user, &secret_value(&user, &old_pw)),
        );
        if let Some(pki) = pki {
            let port = m.port.to_string();
            let ca = pki.ca.display().to_string();
            let flags = [
                "--port",
                &port,
                "--database",
                database,
                "--tls",
                "verify-full",
                "--tls-ca-file",
                &ca,
            ];
            let args = cli::configure_args(&secret, "mongodb", &m.host, &m.admin_user, &flags);
            cli::configure_ok(machine.command(&args), &m.admin_pass);
        }
        let agent = machine.spawn_agent(&secret);
        agent.wait_until(SOON, "a healthy heartbeat", || {
            cp.heartbeats(&secret).iter().any(|h| h.status == "healthy")
        });
        let new_pw = format!("new-{}", random_text(16));
        cp.set_pending(&secret, "rot_mech", &secret_value(&user, &new_pw));
        agent.wait_until(SOON, "rotation rot_mech confirmed", || {
            cp.confirms(&secret).iter().any(|r| r == "rot_mech")
        });
        let login = |pw: &str| {
            m.login(&user, pw, database, m.port)
                .unwrap_or_else(|e| panic!("cannot reach the server: {e}"))
        };
        assert!(
            login(&new_pw),
            "{mechanism} user in {database}: the new password is refused"
        );
        assert!(
            !login(&old_pw),
            "{mechanism} user in {database}: the old password still works"
        );
        assert_eq!(
            mechanisms(m),
            vec![mechanism.to_owned()],
            "{mechanism} user in {database}: the rotation changed its mechanisms"
        );
        let mut agent = agent;
        assert!(agent.terminate().success(), "{}", agent.output());
        for s in [&old_pw, &new_pw, &m.admin_pass] {
            assert!(
                !agent.output().contains(s.as_str()),
                "a secret in the output"
            );
        }
        m.drop_user_in(database, &user);
    }
}

/// The official agent (SikkerKey CLI 4.2.0) against a real mongod: it becomes healthy and
/// its rotation confirms. (Against SecantusDB it never becomes healthy.) Its admin has a
/// plain name and password: the official agent puts them into a URI unescaped.
pub fn official_agent_rotates(m: &Mongo) {
    let Some(official) = require_env("SKA_OFFICIAL_AGENT", "the official SikkerKey CLI") else {
        return;
    };
    let admin = unique_name("ska_official_admin");
    let admin_pw = format!("officialAdmin{}", random_text(12));
    m.create_user_in(
        "admin",
        &admin,
        &admin_pw,
        Bson::Array(vec![Bson::Document(doc! { "role": "root", "db": "admin" })]),
    );
    let w = World::plain(m);
    w.use_admin(&admin, &admin_pw);
    w.cp.with_secret(&w.secret, |s| s.poll_interval_seconds = 5);
    let new_pw = format!("officialNew{}", random_text(12));
    w.cp.set_pending(&w.secret, "rot_official", &secret_value(&w.user, &new_pw));
    let agent = AgentProcess::spawn(w.machine.official_style_command(&official, &w.secret));
    w.wait_confirmed("rot_official", &agent);
    wait_until(SOON, "a healthy heartbeat from the official agent", || {
        w.cp.heartbeats(&w.secret)
            .iter()
            .any(|h| h.status == "healthy")
    });
    assert!(
        w.cp.unauthorized().is_empty(),
        "the official agent earned 401s: {:?}",
        w.cp.unauthorized()
    );
    assert_password(m, &w.user, &new_pw, &w.old_pw);
    drop(agent);
    m.drop_user_in("admin", &admin);
}
