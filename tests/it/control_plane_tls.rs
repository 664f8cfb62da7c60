//! The control plane over HTTPS, as in production: the fake control plane serves a
//! certificate from a CA made for this run, and the agent must trust it only when told to
//! (SSL_CERT_FILE or SIKKERKEY_CA_FILE), reach it through an HTTPS_PROXY, and bypass that
//! proxy for NO_PROXY hosts. Rotations run against the PostgreSQL test cluster.

use std::process::Command;

use crate::support::SOON;
use crate::support::connect_proxy::ConnectProxy;
use crate::support::db::postgres::Pg;
use crate::support::private_ca::PrivateCa;
use crate::support::world::{Database, World, assert_password, secret_value};
use crate::support::{AgentProcess, Endpoint, FakeControlPlane, random_text};

/// A PostgreSQL world whose control plane serves HTTPS with a certificate `ca` signed
/// for 127.0.0.1 (the address in the URL) and localhost.
fn https_world<'a>(db: &'a Pg, ca: &PrivateCa) -> World<'a> {
    let issued = ca.issue("control-plane", "IP:127.0.0.1,DNS:localhost");
    let cp = FakeControlPlane::start_tls(&issued.cert, &issued.key);
    assert!(cp.url().starts_with("https://127.0.0.1:"), "{}", cp.url());
    World::with_control_plane(
        db,
        cp,
        db.plain_name(),
        format!("old-{}", random_text(16)),
        false,
    )
}

fn start_command(w: &World) -> Command {
    w.machine.command(&["start", "--secret", &w.secret])
}

/// Rotates once and checks the database and the control plane agree.
fn rotate(w: &World, agent: &AgentProcess) -> String {
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_tls", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_tls", agent);
    assert_password(w.db, &w.user, &new_pw, &w.old_pw);
    new_pw
}

#[test]
fn a_private_ca_trusted_through_ssl_cert_file_carries_a_rotation() {
    let Some(db) = Pg::open() else { return };
    let ca = PrivateCa::new("ska-test-cp-ca");
    let w = https_world(&db, &ca);
    let mut cmd = start_command(&w);
    cmd.env("SSL_CERT_FILE", &ca.cert);
    let mut agent = AgentProcess::spawn(cmd);
    w.wait_healthy(&mut agent);
    // The start-up log says what is trusted.
    agent.wait_for_output(
        &format!("trusting SSL_CERT_FILE={} (1 CA)", ca.cert.display()),
        SOON,
    );
    let new_pw = rotate(&w, &agent);
    w.finish(agent, &[&new_pw, &w.old_pw]);
}

#[test]
fn sikkerkey_ca_file_adds_a_private_ca_to_the_system_store() {
    let Some(db) = Pg::open() else { return };
    let ca = PrivateCa::new("ska-test-cp-ca");
    let w = https_world(&db, &ca);
    let mut cmd = start_command(&w);
    cmd.env("SIKKERKEY_CA_FILE", &ca.cert);
    let mut agent = AgentProcess::spawn(cmd);
    w.wait_healthy(&mut agent);
    assert!(
        agent
            .output()
            .contains(&format!("and SIKKERKEY_CA_FILE={}", ca.cert.display()))
            || agent
                .output()
                .contains(&format!("SIKKERKEY_CA_FILE={} only", ca.cert.display())),
        "{}",
        agent.output()
    );
    let new_pw = rotate(&w, &agent);
    w.finish(agent, &[&new_pw, &w.old_pw]);
}

/// Without the CA (the system store, and then a different private CA), the handshake
/// fails: no request reaches the server, and the log names the URL and the reason.
#[test]
fn an_untrusted_control_plane_certificate_is_refused_with_the_url_and_reason() {
    let Some(db) = Pg::open() else { return };
    let ca = PrivateCa::new("ska-test-cp-ca");
    let other = PrivateCa::new("ska-test-other-ca");
    let w = https_world(&db, &ca);
    let url = w.cp.url();
    for extra in [None, Some(&other.cert)] {
        let mut cmd = start_command(&w);
        if let Some(path) = extra {
            cmd.env("SSL_CERT_FILE", path);
        }
        let mut agent = AgentProcess::spawn(cmd);
        agent.wait_for_output("unknown CA", SOON);
        let out = agent.output();
        assert!(
            out.contains(&format!(
                "could not reach {url}: TLS failed: the server's certificate is not signed by a trusted CA (unknown CA)"
            )),
            "the error does not name the URL and TLS:\n{out}"
        );
        assert!(
            out.contains("SIKKERKEY_CA_FILE or SSL_CERT_FILE"),
            "the error does not say how to fix it:\n{out}"
        );
        assert_eq!(w.cp.calls(Endpoint::SyncConfig), 0, "a request got through");
        assert!(w.cp.heartbeats(&w.secret).is_empty());
        agent.terminate();
    }
    assert_password(&db, &w.user, &w.old_pw, &random_text(12));
}

#[test]
fn an_unusable_ca_file_stops_the_agent_with_a_configuration_error() {
    let Some(db) = Pg::open() else { return };
    let ca = PrivateCa::new("ska-test-cp-ca");
    let w = https_world(&db, &ca);
    let not_pem = w.machine.home.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    for (var, path) in [
        (
            "SIKKERKEY_CA_FILE",
            w.machine.home.path().join("missing.pem"),
        ),
        ("SIKKERKEY_CA_FILE", not_pem.clone()),
        ("SSL_CERT_FILE", not_pem),
    ] {
        let mut cmd = start_command(&w);
        cmd.env(var, &path);
        let mut agent = AgentProcess::spawn(cmd);
        let status = agent.wait_exit(SOON);
        assert_eq!(status.code(), Some(3), "{}", agent.output());
        assert!(
            agent.output().contains(&format!(
                "cannot use the CA certificates in {var}={}",
                path.display()
            )),
            "{}",
            agent.output()
        );
    }
    assert_eq!(w.cp.calls(Endpoint::SyncConfig), 0);
}

/// Trust and proxy variables fail closed: set but empty, unreadable, or not a proxy URL the
/// client can use stops the agent with exit 3 naming the variable, before any request (an
/// empty SSL_CERT_FILE does not fall back to the bundled roots, and a malformed
/// HTTPS_PROXY does not send the agent around the proxy). A proxy's password is never
/// repeated.
#[test]
fn empty_or_garbage_trust_and_proxy_variables_stop_the_agent() {
    let cp = FakeControlPlane::start();
    let machine = crate::support::Machine::new(&cp);
    let missing_dir = machine.home.path().join("no-such-dir");
    let missing_dir = missing_dir.to_str().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "SSL_CERT_FILE",
            "",
            "cannot use the CA certificates in SSL_CERT_FILE=: it is set but empty",
        ),
        (
            "SSL_CERT_DIR",
            "",
            "cannot use the CA certificates in SSL_CERT_DIR=: it is set but empty",
        ),
        (
            "SSL_CERT_DIR",
            missing_dir,
            "cannot use the CA certificates in SSL_CERT_DIR=",
        ),
        (
            "HTTPS_PROXY",
            "",
            "cannot use the proxy in HTTPS_PROXY: it is set but empty",
        ),
        (
            "https_proxy",
            "http://user:s3cret-pw@[::1",
            "cannot use the proxy in https_proxy: it is not a proxy URL",
        ),
        (
            "ALL_PROXY",
            "not a url",
            "cannot use the proxy in ALL_PROXY: it is not a proxy URL",
        ),
        (
            "all_proxy",
            "socks5://127.0.0.1:1080",
            "cannot use the proxy in all_proxy: only http:// and https:// proxies",
        ),
        (
            "HTTP_PROXY",
            " http://127.0.0.1:3128",
            "cannot use the proxy in HTTP_PROXY: it is not a proxy URL",
        ),
    ];
    for (var, value, expect) in cases {
        let mut cmd = machine.command(&["start", "--secret", "sk_env"]);
        cmd.env(var, value);
        let mut agent = AgentProcess::spawn(cmd);
        let status = agent.wait_exit(SOON);
        let out = agent.output();
        assert_eq!(status.code(), Some(3), "{var}={value:?}: {out}");
        assert!(
            out.contains(expect),
            "{var}={value:?}: expected {expect:?} in:\n{out}"
        );
        assert!(
            !out.contains("s3cret-pw"),
            "the proxy password was printed:\n{out}"
        );
    }
    assert_eq!(cp.calls(Endpoint::SyncConfig), 0, "a request went out");
}

/// HTTPS_PROXY sends every call through the proxy's CONNECT tunnel (TLS stays end to end,
/// so the CA is still checked); NO_PROXY naming the host goes direct.
#[test]
fn https_proxy_is_used_and_no_proxy_bypasses_it() {
    let Some(db) = Pg::open() else { return };
    let ca = PrivateCa::new("ska-test-cp-ca");
    let w = https_world(&db, &ca);
    let proxy = ConnectProxy::start();
    let cp_authority = w.cp.url().trim_start_matches("https://").to_owned();

    let mut cmd = start_command(&w);
    cmd.env("SSL_CERT_FILE", &ca.cert)
        .env("HTTPS_PROXY", proxy.url());
    let mut agent = AgentProcess::spawn(cmd);
    w.wait_healthy(&mut agent);
    let new_pw = rotate(&w, &agent);
    let targets = proxy.targets();
    assert!(
        !targets.is_empty() && targets.iter().all(|t| *t == cp_authority),
        "the proxy saw {targets:?}, expected CONNECTs to {cp_authority}"
    );
    let port = proxy.url().rsplit(':').next().unwrap().to_owned();
    assert!(
        agent
            .output()
            .contains(&format!("through proxy 127.0.0.1:{port}")),
        "{}",
        agent.output()
    );
    w.finish(agent, &[&new_pw, &w.old_pw]);

    let seen = proxy.targets().len();
    let mut cmd = start_command(&w);
    cmd.env("SSL_CERT_FILE", &ca.cert)
        .env("HTTPS_PROXY", proxy.url())
        .env("NO_PROXY", "localhost,127.0.0.1");
    let mut agent = AgentProcess::spawn(cmd);
    w.wait_healthy(&mut agent);
    agent.wait_for_output("(NO_PROXY matches)", SOON);
    assert_eq!(
        proxy.targets().len(),
        seen,
        "the agent used the proxy for a NO_PROXY host"
    );
    w.finish(agent, &[&new_pw]);
}

/// A certificate from the trusted CA but for another name is refused as well.
#[test]
fn a_trusted_certificate_for_another_host_name_is_refused() {
    let Some(db) = Pg::open() else { return };
    let ca = PrivateCa::new("ska-test-cp-ca");
    let issued = ca.issue("elsewhere", "DNS:elsewhere.example,IP:10.9.9.9");
    let cp = FakeControlPlane::start_tls(&issued.cert, &issued.key);
    let w = World::with_control_plane(
        &db,
        cp,
        db.plain_name(),
        format!("old-{}", random_text(16)),
        false,
    );
    let mut cmd = start_command(&w);
    cmd.env("SSL_CERT_FILE", &ca.cert);
    let mut agent = AgentProcess::spawn(cmd);
    agent.wait_for_output("name mismatch", SOON);
    assert!(
        agent.output().contains(&format!(
            "could not reach {}: TLS failed: the server's certificate is not valid for \"127.0.0.1\" (name mismatch)",
            w.cp.url()
        )),
        "{}",
        agent.output()
    );
    assert_eq!(w.cp.calls(Endpoint::SyncConfig), 0, "a request got through");
    agent.terminate();
}

/// The official agent against the HTTPS control plane with the CA in SSL_CERT_FILE (Go
/// reads it too): `make bench` measures both agents this way.
#[test]
fn the_official_agent_trusts_the_private_ca_through_ssl_cert_file() {
    let Some(db) = Pg::open() else { return };
    let Some(official) =
        crate::support::require_env("SKA_OFFICIAL_AGENT", "the official SikkerKey CLI")
    else {
        return;
    };
    let ca = PrivateCa::new("ska-test-cp-ca");
    let w = https_world(&db, &ca);
    w.cp.with_secret(&w.secret, |s| s.poll_interval_seconds = 5);
    // The official agent puts passwords into a libpq DSN unquoted: keep this one plain.
    let new_pw = format!("officialTls{}", random_text(8));
    w.cp.set_pending(
        &w.secret,
        "rot_official_tls",
        &secret_value(&w.user, &new_pw),
    );
    let mut cmd = w.machine.official_style_command(&official, &w.secret);
    cmd.env("SSL_CERT_FILE", &ca.cert);
    let agent = AgentProcess::spawn(cmd);
    w.wait_confirmed("rot_official_tls", &agent);
    assert_password(&db, &w.user, &new_pw, &w.old_pw);
    drop(agent);
}
