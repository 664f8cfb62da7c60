//! The parser's unit tests: every command, mistake and spelling it must handle.

use super::*;

fn p(args: &[&str]) -> Result<Command, UsageError> {
    parse(args.iter().map(|s| s.to_string())).map(|i| i.command)
}

fn e(args: &[&str]) -> String {
    p(args).unwrap_err().to_string()
}

/// `configure` for a MySQL secret `s` on host `h`, then `more`.
fn configure(more: &[&str]) -> Result<Command, UsageError> {
    let base = [
        "configure",
        "--secret",
        "s",
        "--provider",
        "mysql",
        "--host",
        "h",
    ];
    p(&[&base[..], more].concat())
}

#[test]
fn start_with_and_without_the_agent_word() {
    let want = Command::Start {
        secret: "sk_1".into(),
    };
    assert_eq!(p(&["start", "--secret", "sk_1"]).unwrap(), want);
    assert_eq!(p(&["agent", "start", "--secret", "sk_1"]).unwrap(), want);
    assert_eq!(p(&["agent", "start", "--secret=sk_1"]).unwrap(), want);
    assert_eq!(p(&["start", "-s", "sk_1"]).unwrap(), want);
}

#[test]
fn help_and_version_everywhere() {
    let help = |c: &str| Command::Help(help::command_help(help::find(c).unwrap()));
    assert_eq!(p(&["--version"]).unwrap(), Command::Version);
    assert_eq!(p(&[]).unwrap(), Command::Help(help::top_help()));
    assert_eq!(p(&["start", "--help"]).unwrap(), help("start"));
    assert_eq!(p(&["agent", "configure", "-h"]).unwrap(), help("configure"));
    assert_eq!(p(&["install", "--help"]).unwrap(), help("install"));
    assert_eq!(p(&["help", "status"]).unwrap(), help("status"));
    assert_eq!(
        p(&["completions", "fish"]).unwrap(),
        Command::Completions(Shell::Fish)
    );
    assert_eq!(p(&["man"]).unwrap(), Command::Man);
}

#[test]
fn the_log_format_is_an_option_like_any_other() {
    for args in [
        &["--log-format", "json", "start", "--secret", "s"][..],
        &["start", "--log-format=json", "--secret", "s"],
        &["start", "--secret", "s", "--log-format", "json"],
    ] {
        let i = parse(args.iter().copied()).unwrap();
        assert_eq!(i.log_format.as_deref(), Some("json"), "{args:?}");
    }
    assert!(
        e(&["list", "--log-format", "xml"]).contains("unknown log format \"xml\" for --log-format")
    );
    assert!(e(&["list", "--log-format"]).contains("--log-format needs a value"));
    assert!(
        e(&["--log-format", "json", "list", "--log-format", "text"])
            .contains("--log-format is given twice (\"json\" and \"text\")")
    );
    assert_eq!(
        log_format_in(["stop", "--bogus", "--log-format=json"]).as_deref(),
        Some("json")
    );
}

#[test]
fn mistakes_point_at_the_commands_own_help() {
    assert_eq!(
        e(&["stop"]),
        "missing required option --secret; run `sikkerkey-agent stop --help` for its options"
    );
    assert!(
        e(&["strat"]).contains("(did you mean \"start\"?)"),
        "{}",
        e(&["strat"])
    );
    assert_eq!(
        e(&["start", "--secert", "x"]),
        "unknown option --secert (did you mean \"--secret\"?); run `sikkerkey-agent start --help` for its options"
    );
    assert_eq!(
        e(&["status", "--secret"]),
        "--secret needs a value (<ID>); run `sikkerkey-agent status --help` for its options"
    );
    assert!(
        e(&["remove", "--secret", "s", "--force=yes"]).contains("--force takes no value"),
        "{}",
        e(&["remove", "--secret", "s", "--force=yes"])
    );
    assert!(e(&["list", "-o", "prometeus"]).contains("(did you mean \"prometheus\"?)"));
    let tls = configure(&["--admin-user", "u", "--tls", "verify_full"])
        .unwrap_err()
        .to_string();
    assert!(
        tls.contains("unknown TLS mode \"verify_full\" for --tls (did you mean \"verify-full\"?); use disable, prefer, require, verify-ca or verify-full"),
        "{tls}"
    );
    let provider = e(&["configure", "--provider", "postgres"]);
    assert!(
        provider.contains("(did you mean \"postgresql\"?)"),
        "{provider}"
    );
    assert_eq!(
        p(&["test", "--secret", "s", "--use-server-config"]).unwrap(),
        Command::Test {
            secret: "s".into(),
            use_server_config: true
        }
    );
    let status = parse(["status"]).unwrap_err();
    assert_eq!(status.command, Some("status"));
}

#[test]
fn a_repeated_option_names_both_values() {
    assert_eq!(
        e(&["remove", "--secret", "a", "--secret", "b"]),
        "--secret is given twice (\"a\" and \"b\"); give it once; run `sikkerkey-agent remove --help` for its options"
    );
    assert!(
        configure(&["--admin-user", "u", "--host", "h2"])
            .unwrap_err()
            .to_string()
            .contains("--host is given twice (\"h\" and \"h2\")")
    );
    // A password is never repeated back.
    let pw = configure(&[
        "--admin-user",
        "u",
        "--admin-pass",
        "pw-one",
        "--admin-pass",
        "pw-two",
    ])
    .unwrap_err()
    .to_string();
    assert!(pw.contains("--admin-pass is given twice"), "{pw}");
    assert!(!pw.contains("pw-one") && !pw.contains("pw-two"), "{pw}");
    assert!(
        configure(&[
            "--admin-user",
            "u",
            "--admin-pass",
            "x",
            "--admin-pass-file",
            "/f"
        ])
        .unwrap_err()
        .to_string()
        .contains("both given")
    );
    // A switch said twice is still one switch.
    assert_eq!(
        p(&["install", "--secret", "s", "--now", "--now"]).unwrap(),
        Command::Install {
            secret: "s".into(),
            now: true
        }
    );
}

#[test]
fn bad_input_is_an_error() {
    assert!(e(&["start"]).contains("--secret"));
    assert!(e(&["frobnicate"]).contains("unknown command"));
    assert!(p(&["start", "--secret", "x", "--bogus"]).is_err());
    assert!(p(&["agent", "agent", "start"]).is_err());
    assert!(p(&["completions"]).is_err());
    assert!(e(&["completions", "tcsh"]).contains("use bash, zsh or fish"));
    assert!(e(&["man", "extra"]).contains("unexpected argument \"extra\""));
}

#[test]
fn configure_parses_all_flags() {
    let c = p(&[
        "configure",
        "--secret",
        "sk_1",
        "--provider",
        "mysql",
        "--host",
        "db",
        "--port",
        "3307",
        "--admin-user",
        "root",
        "--admin-pass-file",
        "/run/pw",
        "--poll-interval",
        "15",
        "--tls",
        "verify-full",
    ])
    .unwrap();
    let Command::Configure(a) = c else { panic!() };
    assert_eq!((a.port, a.poll_interval), (Some(3307), Some(15)));
    assert_eq!(a.admin_pass, AdminPassSource::File("/run/pw".into()));
    assert_eq!(a.tls.mode.as_deref(), Some("verify-full"));
    assert!(configure(&["--admin-user", "u", "--port", "99999"]).is_err());
    assert!(configure(&["--admin-user", "u", "--poll-interval", "4"]).is_err());
    let missing_admin = configure(&[]).unwrap_err().to_string();
    assert!(missing_admin.contains("admin-user"), "{missing_admin}");
}

#[test]
fn an_admin_password_in_argv_never_shows_in_debug_output() {
    let c = configure(&["--admin-user", "u", "--admin-pass", "hunter2-secret"]).unwrap();
    let Command::Configure(a) = &c else { panic!() };
    assert_eq!(
        a.admin_pass,
        AdminPassSource::Argv(Secret::new("hunter2-secret"))
    );
    assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
}

#[test]
fn list_status_and_flags() {
    assert_eq!(
        p(&["list", "-o", "json"]).unwrap(),
        Command::List {
            format: OutputFormat::Json
        }
    );
    assert_eq!(
        p(&["list", "--output", "openmetrics"]).unwrap(),
        Command::List {
            format: OutputFormat::OpenMetrics
        }
    );
    assert_eq!(
        p(&["status", "--secret", "s", "-o", "json"]).unwrap(),
        Command::Status {
            secret: "s".into(),
            format: OutputFormat::Json
        }
    );
    assert!(p(&["status", "--secret", "s", "-o", "prometheus"]).is_err());
    assert_eq!(
        p(&["remove", "--secret", "s", "--force"]).unwrap(),
        Command::Remove {
            secret: "s".into(),
            force: true
        }
    );
    assert_eq!(
        p(&["install", "--secret", "s"]).unwrap(),
        Command::Install {
            secret: "s".into(),
            now: false
        }
    );
}
