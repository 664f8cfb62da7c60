//! `configure`: writes the local config (mode 600) from a file, the environment, a
//! terminal prompt or the official `--admin-pass`, and refuses bad input without writing.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::assertions::{Exit, assert_contains, assert_lacks};
use crate::support::cli::{BIN, agent_file, bare, mode, read_json, run};
use crate::support::{TempDir, set_mode, unique_name};

use super::{configure_args, configure_ok, python3};

#[test]
fn configure_writes_a_private_config_from_a_password_file() {
    let home = TempDir::new("cfg");
    let password = "pa'ss\"wo\\rd $HOME ø ";
    let pw_file = home.path().join("admin-pass");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    set_mode(&pw_file, 0o600);
    let pw_arg = pw_file.to_str().unwrap();
    let args = configure_args(
        "sk_cfg1",
        "postgresql",
        &[
            "--admin-pass-file",
            pw_arg,
            "--database",
            "app",
            "--username-field",
            "user",
            "--password-field",
            "pass",
            "--poll-interval",
            "15",
        ],
    );
    let out = run(bare(home.path(), &args)).expect(Exit::Ok);
    let path = agent_file(home.path(), "sk_cfg1", "json");
    assert_contains(&out.stdout, path.to_str().unwrap());
    assert_lacks(&out.all(), password.trim());
    assert_eq!(
        read_json(&path),
        json!({
            "secretId": "sk_cfg1", "providerType": "postgresql",
            "connection": {"host": "db.internal", "port": 5432, "database": "app",
                "adminUser": "sk_admin", "adminPass": password, "projectReference": "",
                "usernameField": "user", "passwordField": "pass"},
            "pollIntervalSeconds": 15
        })
    );
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[test]
fn configure_uses_each_providers_default_port_unless_told() {
    let home = TempDir::new("cfg");
    for (provider, port) in [
        ("postgresql", 5432),
        ("postgresql_supabase", 5432),
        ("mysql", 3306),
        ("redis", 6379),
        ("mongodb", 27017),
    ] {
        let secret = format!("sk_{provider}");
        configure_ok(home.path(), &secret, provider, "from-env");
        let cfg = read_json(&agent_file(home.path(), &secret, "json"));
        assert_eq!(cfg["connection"]["port"], port, "{provider}");
        assert_eq!(cfg["connection"]["adminPass"], "from-env");
    }
    let mut c = bare(
        home.path(),
        &configure_args("sk_port", "mysql", &["--port", "3307"]),
    );
    c.env("SIKKERKEY_ADMIN_PASS", "from-env");
    let out = run(c).expect(Exit::Ok);
    assert_contains(&out.stdout, "db.internal:3307");
    let cfg = read_json(&agent_file(home.path(), "sk_port", "json"));
    assert_eq!(cfg["connection"]["port"], 3307);
}

#[test]
fn configure_rewrites_an_existing_config() {
    let home = TempDir::new("cfg");
    let write = |host: &str| {
        let mut c = bare(
            home.path(),
            &[
                "configure",
                "--secret",
                "sk_re",
                "--provider",
                "redis",
                "--host",
                host,
                "--admin-user",
                "default",
            ],
        );
        c.env("SIKKERKEY_ADMIN_PASS", "pw");
        run(c).expect(Exit::Ok)
    };
    assert!(write("one").stdout.starts_with("wrote "));
    assert!(write("two").stdout.starts_with("updated "));
    let cfg = read_json(&agent_file(home.path(), "sk_re", "json"));
    assert_eq!(cfg["connection"]["host"], "two");
}

/// A failed `configure` exits 2 with `message` and leaves the config as it was.
fn assert_configure_refused(home: &Path, args: &[&str], message: &str) {
    let path = agent_file(home, "sk_bad", "json");
    let before = std::fs::read(&path).ok();
    let mut c = bare(home, args);
    c.env("SIKKERKEY_ADMIN_PASS", "pw-from-env");
    let out = run(c).expect(Exit::Usage);
    assert!(
        out.stderr.contains(message),
        "{args:?}: expected {message:?} in:\n{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(&path).ok(),
        before,
        "{args:?} changed the config"
    );
}

#[test]
fn configure_refuses_bad_input_and_writes_nothing() {
    let home = TempDir::new("cfg");
    let h = home.path();
    assert_configure_refused(
        h,
        &configure_args("sk_bad", "oracle", &[]),
        "unknown provider type \"oracle\" for --provider; use postgresql, postgresql_supabase, mysql, redis or mongodb",
    );
    assert!(
        !h.join("agents").exists(),
        "a refused configure created the agents directory"
    );
    // Now an existing config that no failed attempt may touch.
    configure_ok(h, "sk_bad", "mysql", "original");
    let missing_host = [
        "configure",
        "--secret",
        "sk_bad",
        "--provider",
        "mysql",
        "--admin-user",
        "u",
    ];
    assert_configure_refused(h, &missing_host, "--host");
    let missing_user = [
        "configure",
        "--secret",
        "sk_bad",
        "--provider",
        "mysql",
        "--host",
        "h",
    ];
    assert_configure_refused(h, &missing_user, "--admin-user");
    for port in ["99999", "0", "abc", "-1"] {
        assert_configure_refused(
            h,
            &configure_args("sk_bad", "mysql", &["--port", port]),
            "port",
        );
    }
    assert_configure_refused(
        h,
        &configure_args("sk_bad", "mysql", &["--poll-interval", "2"]),
        "at least 5",
    );
    assert_configure_refused(
        h,
        &configure_args("sk_bad", "mysql", &["--admin-pass-file", "/nonexistent/pw"]),
        "cannot read the admin password file /nonexistent/pw",
    );
    let empty = h.join("empty-pw");
    std::fs::write(&empty, "\n").unwrap();
    set_mode(&empty, 0o600);
    assert_configure_refused(
        h,
        &configure_args(
            "sk_bad",
            "mysql",
            &["--admin-pass-file", empty.to_str().unwrap()],
        ),
        "the admin password is empty",
    );
    assert_configure_refused(
        h,
        &configure_args("../escape", "mysql", &[]),
        "not a valid secret id",
    );
    assert_configure_refused(
        h,
        &configure_args("sk_bad", "mysql", &["--bogus"]),
        "--bogus",
    );
    let cfg = read_json(&agent_file(h, "sk_bad", "json"));
    assert_eq!(cfg["connection"]["adminPass"], "original");
}

#[test]
fn configure_without_a_password_source_and_no_terminal_is_an_error() {
    let home = TempDir::new("cfg");
    // stdin is /dev/null: no prompt possible, and no SIKKERKEY_ADMIN_PASS.
    let out = run(bare(home.path(), &configure_args("sk_np", "mysql", &[]))).expect(Exit::Usage);
    assert_contains(
        &out.stderr,
        "no admin password: pass --admin-pass-file FILE, set SIKKERKEY_ADMIN_PASS",
    );
    assert!(!agent_file(home.path(), "sk_np", "json").exists());
}

/// The official CLI's own example, unchanged, through a symlink named `sikkerkey`.
/// (`--admin-pass` in argv is what is being tested; the value is a dummy.)
#[test]
fn configure_accepts_the_official_command_line_with_a_warning() {
    let home = TempDir::new("cfg");
    let link = home.path().join("sikkerkey");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let mut c = Command::new(&link);
    c.args([
        "agent",
        "configure",
        "--secret",
        "sk_abc123",
        "--provider",
        "postgresql",
        "--host",
        "localhost",
        "--port",
        "5432",
        "--admin-user",
        "postgres",
        "--admin-pass",
        "s3cret",
    ])
    .env_clear()
    .env("SIKKERKEY_HOME", home.path());
    let out = run(c).expect(Exit::Ok);
    assert_contains(&out.stderr, "warning: --admin-pass shows the password");
    assert_contains(&out.stderr, "shell history");
    assert_lacks(&out.all(), "s3cret");
    let cfg = read_json(&agent_file(home.path(), "sk_abc123", "json"));
    assert_eq!(cfg["connection"]["adminPass"], "s3cret");
}

/// On a terminal `configure` prompts, and the typed password is not echoed. Runs the
/// binary on a pseudo-terminal (python3's pty module); the password reaches the helper
/// through the environment, never argv.
#[test]
fn configure_prompts_on_a_terminal_without_echo() {
    let Some(python) = python3() else { return };
    let home = TempDir::new("cfg");
    let password = format!("typed-{}", unique_name("pw"));
    let script = r#"
import os, pty, select, sys
pw = os.environ.pop("SKA_TYPED").encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def read_some(timeout):
    global out
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    if not data:
        return None
    out += data
    return True
while b'admin password for "sk_admin": ' not in out:
    if not read_some(20):
        sys.stdout.buffer.write(out); sys.exit(90)
os.write(fd, pw + b"\n")
while read_some(20):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut c = Command::new(python);
    c.arg("-c")
        .arg(script)
        .arg(BIN)
        .args(configure_args("sk_tty", "postgresql", &[]))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIKKERKEY_HOME", home.path())
        .env("SKA_TYPED", &password);
    let out = run(c).expect(Exit::Ok);
    assert_contains(&out.stdout, "admin password for \"sk_admin\": ");
    assert_lacks(&out.stdout, &password);
    let cfg = read_json(&agent_file(home.path(), "sk_tty", "json"));
    assert_eq!(cfg["connection"]["adminPass"], password.as_str());
}

/// Files holding a credential obey the identity key's rule (libpq's for its key): the
/// admin password file and a TLS client key that group or others may read are refused
/// (exit 3) with the file, its mode and the chmod that fixes it, and nothing is written.
/// A root-owned file may also be 0640 (shared with a service user through its group).
#[test]
fn configure_refuses_a_password_file_or_tls_key_others_can_read() {
    let home = TempDir::new("cfg");
    let h = home.path();
    let pw_file = h.join("admin-pass");
    std::fs::write(&pw_file, "pw-in-a-file\n").unwrap();
    let key = h.join("client.key");
    std::fs::write(&key, "not even a key").unwrap();
    let cert = h.join("client.pem");
    std::fs::write(&cert, "a certificate").unwrap();
    let config = agent_file(h, "sk_perm", "json");
    let pw_args = configure_args(
        "sk_perm",
        "postgresql",
        &["--admin-pass-file", pw_file.to_str().unwrap()],
    );
    for mode_bits in [0o644, 0o604, 0o660] {
        set_mode(&pw_file, mode_bits);
        let out = run(bare(h, &pw_args)).expect(Exit::Config);
        assert_contains(
            &out.stderr,
            &format!(
                "the admin password file {} is readable or writable by",
                pw_file.display()
            ),
        );
        assert_contains(&out.stderr, &format!("(mode {mode_bits:04o})"));
        assert_contains(&out.stderr, &format!("chmod 600 '{}'", pw_file.display()));
        assert!(!config.exists(), "a refused configure wrote the config");
    }
    set_mode(&pw_file, 0o600);
    run(bare(h, &pw_args)).expect(Exit::Ok);
    // Tests run as root, who owns the file: 0640 is libpq's allowance for root's files.
    if running_as_root() {
        set_mode(&pw_file, 0o640);
        run(bare(h, &pw_args)).expect(Exit::Ok);
    }
    let tls_args = configure_args(
        "sk_perm",
        "postgresql",
        &[
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
        ],
    );
    set_mode(&key, 0o644);
    let mut c = bare(h, &tls_args);
    c.env("SIKKERKEY_ADMIN_PASS", "pw");
    let out = run(c).expect(Exit::Config);
    assert_contains(
        &out.stderr,
        &format!(
            "TLS client key {} is readable or writable by others (mode 0644)",
            key.display()
        ),
    );
    assert_contains(&out.stderr, &format!("chmod 600 '{}'", key.display()));
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
