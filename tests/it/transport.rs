//! Who gets a password: the agent against fake servers that play an active
//! man-in-the-middle (support/mitm.rs). Each fake downgrades the connection (no TLS, or
//! TLS with a certificate from a CA nobody trusts) and asks for the password in a form
//! that would reveal it. The agent must refuse with a clear error naming the setting that
//! would allow it, and the fake must not receive the admin password (nor the managed one,
//! for the verify and drift logins) in any form: PostgreSQL's PasswordMessage, MySQL's
//! clear password or request for the server's RSA key.

#![cfg(any(feature = "postgres", feature = "mysql"))]

use std::time::Duration;

use sikkerkey_agent::providers::{
    self, DbTimeouts, FailureKind, ProviderError, ProviderKind, Target, TlsMode, TlsSettings,
};
use sikkerkey_agent::secret::Secret;

use crate::support::assertions::Exit;
use crate::support::cli;
use crate::support::mitm::Mitm;
#[cfg(feature = "mysql")]
use crate::support::mitm::{MyTrick, my_payloads};
#[cfg(feature = "postgres")]
use crate::support::mitm::{PgTrick, pg_sent_password_message};
use crate::support::{FakeControlPlane, Machine, random_text, unique_name};

fn target(kind: ProviderKind, mitm: &Mitm, mode: TlsMode) -> Target {
    Target {
        kind,
        host: "127.0.0.1".into(),
        port: mitm.port,
        database: String::new(),
        admin_user: "sk_admin".into(),
        admin_pass: Secret::new(format!("admin-{}", random_text(20))),
        project_reference: String::new(),
        timeouts: DbTimeouts {
            connect: Duration::from_secs(5),
            statement: Duration::from_secs(5),
        },
        tls: TlsSettings {
            mode,
            ..Default::default()
        },
    }
}

/// The refusal: a TLS-kind error that says what the server asked for and which setting
/// would allow it, and never the password.
fn assert_refused(result: Result<impl Sized, ProviderError>, password: &Secret, what: &str) {
    let e = result
        .err()
        .unwrap_or_else(|| panic!("{what}: the login went through"));
    let text = e.to_string();
    eprintln!("{what}: {text}");
    assert_eq!(e.kind, FailureKind::Tls, "{what}: {text}");
    for word in [
        "asked for",
        "refused",
        "verify-full",
        "no password was sent",
    ] {
        assert!(text.contains(word), "{what}: {word:?} not in {text}");
    }
    assert!(!text.contains(password.expose()), "{what}: {text}");
}

/// The fake was reached (so the test is not vacuous) and got nothing that reveals `pw`.
fn assert_unrevealed(mitm: &Mitm, pw: &Secret, what: &str) {
    let received = mitm.received();
    assert!(mitm.connections() > 0, "{what}: the fake was never reached");
    assert!(
        !received
            .windows(pw.expose().len())
            .any(|w| w == pw.expose().as_bytes()),
        "{what}: the password reached the fake server"
    );
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_never_answers_cleartext_or_md5_requests_from_an_unverified_server() {
    let cases = [
        // The default for PostgreSQL: the fake says it has no TLS.
        (
            ProviderKind::Postgresql,
            PgTrick::NoTlsThenCleartext,
            TlsMode::Prefer,
        ),
        (
            ProviderKind::Postgresql,
            PgTrick::NoTlsThenMd5,
            TlsMode::Prefer,
        ),
        (
            ProviderKind::Postgresql,
            PgTrick::NoTlsThenCleartext,
            TlsMode::Disable,
        ),
        // prefer with TLS up, and require (Supabase's default): any certificate passes.
        (
            ProviderKind::Postgresql,
            PgTrick::OwnTlsThenCleartext,
            TlsMode::Prefer,
        ),
        (
            ProviderKind::Postgresql,
            PgTrick::OwnTlsThenCleartext,
            TlsMode::Require,
        ),
        (
            ProviderKind::Postgresql,
            PgTrick::OwnTlsThenMd5,
            TlsMode::Require,
        ),
        (
            ProviderKind::PostgresqlSupabase,
            PgTrick::OwnTlsThenCleartext,
            TlsMode::default_for(ProviderKind::PostgresqlSupabase),
        ),
    ];
    for (kind, trick, mode) in cases {
        let what = format!("{kind} {trick:?} in mode {mode}");
        // The admin session.
        let mitm = Mitm::postgres(trick);
        let t = target(kind, &mitm, mode);
        let result = providers::open(&t).map(drop);
        assert_unrevealed(&mitm, &t.admin_pass, &what);
        assert!(
            !pg_sent_password_message(&mitm.received()),
            "{what}: a PasswordMessage reached the fake"
        );
        assert_refused(result, &t.admin_pass, &what);
        // The verify login and the drift check (the managed user's one login).
        let mitm = Mitm::postgres(trick);
        let t = target(kind, &mitm, mode);
        let managed = Secret::new(format!("managed-{}", random_text(20)));
        let result = providers::verify_only(&t, "app_user", &managed);
        assert_unrevealed(&mitm, &managed, &what);
        assert!(!pg_sent_password_message(&mitm.received()), "{what}");
        assert_refused(result, &managed, &what);
    }
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_never_sends_the_password_or_asks_for_an_rsa_key_on_an_unverified_connection() {
    let cases = [
        // prefer (the default) against a server that offers no TLS.
        (MyTrick::NoTlsThenFullAuth, TlsMode::Prefer),
        (MyTrick::NoTlsThenFullAuth, TlsMode::Disable),
        // TLS up, certificate not checked.
        (MyTrick::OwnTlsThenFullAuth, TlsMode::Prefer),
        (MyTrick::OwnTlsThenFullAuth, TlsMode::Require),
        // The plugins that want the password itself.
        (MyTrick::NoTlsThenClearPassword, TlsMode::Prefer),
        (MyTrick::OwnTlsThenClearPassword, TlsMode::Require),
        (MyTrick::NoTlsThenSha256, TlsMode::Prefer),
    ];
    for (trick, mode) in cases {
        let what = format!("MySQL {trick:?} in mode {mode}");
        for login in ["admin", "managed user"] {
            let mitm = Mitm::mysql(trick);
            let mut t = target(ProviderKind::Mysql, &mitm, mode);
            if login == "managed user" {
                // The verify login is the same connection code as the admin's, as that user.
                t.admin_user = "app_user".into();
                t.admin_pass = Secret::new(format!("managed-{}", random_text(20)));
            }
            let what = format!("{what}, {login}");
            let result = providers::open(&t).map(drop);
            assert_unrevealed(&mitm, &t.admin_pass, &what);
            let received = mitm.received();
            let payloads = my_payloads(&received);
            assert!(
                !payloads.iter().any(|p| p == &[0x02]),
                "{what}: the client asked the fake for its RSA key"
            );
            // What the client sent after the login packet: nothing at all.
            let logins = payloads
                .iter()
                .filter(|p| {
                    p.len() > 32 && p.windows(8).any(|w| w == b"sk_admin" || w == b"app_user")
                })
                .count();
            assert_eq!(logins, 1, "{what}: {payloads:?}");
            let last = payloads.last().unwrap();
            assert!(
                last.windows(8)
                    .any(|w| w == b"sk_admin" || w == b"app_user"),
                "{what}: the client went on after the login packet: {last:?}"
            );
            assert_refused(result, &t.admin_pass, &what);
        }
    }
}

/// The agent binary: `test` with the default settings against a downgrading fake fails
/// the login check with the refusal, and prints nothing secret.
#[test]
fn the_test_command_shows_the_refusal_and_what_would_allow_the_login() {
    let fakes = [
        #[cfg(feature = "postgres")]
        ("postgresql", Mitm::postgres(PgTrick::NoTlsThenCleartext)),
        #[cfg(feature = "mysql")]
        ("mysql", Mitm::mysql(MyTrick::NoTlsThenFullAuth)),
    ];
    for (provider, mitm) in fakes {
        let cp = FakeControlPlane::start();
        let machine = Machine::new(&cp);
        let secret = unique_name("sk");
        let pass = format!("admin-{}", random_text(20));
        let port = mitm.port.to_string();
        let args = cli::configure_args(
            &secret,
            provider,
            "127.0.0.1",
            "sk_admin",
            &["--port", &port],
        );
        cli::configure_ok(machine.command(&args), &pass);
        let out = cli::run(machine.command(&["test", "--secret", &secret]));
        assert_unrevealed(&mitm, &Secret::new(&pass), provider);
        let out = out.expect(Exit::CheckFailed).all();
        for word in [
            "FAIL  login",
            "mode prefer",
            "the server said it has no TLS",
            "--tls verify-full --tls-ca-file",
            "no password was sent",
        ] {
            assert!(out.contains(word), "{provider}: {word:?} not in {out}");
        }
        assert!(!out.contains(&pass), "{provider}: {out}");
    }
}
