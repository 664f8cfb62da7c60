//! `install` and `uninstall`: the service definition for systemd, launchd and Windows,
//! printed or installed and started through stand-ins for the service managers; and the
//! official CLI's command lines through a symlink named `sikkerkey`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::assertions::{Exit, assert_contains, assert_lacks};
use crate::support::cli::{BIN, Out, bare, mode, run};

use super::python3;

/// Shell scripts named like the service managers that append their argv (tab-separated)
/// to a file, so tests see what `install --now` would have run.
struct StandIns {
    dir: TempDir,
    record: PathBuf,
}

impl StandIns {
    fn new(programs: &[&str]) -> StandIns {
        let dir = TempDir::new("standins");
        let record = dir.path().join("calls");
        for p in programs {
            let path = dir.path().join(p);
            std::fs::write(
                &path,
                "#!/bin/sh\n{ printf '%s' \"$(basename \"$0\")\"; for a in \"$@\"; do printf '\\t%s' \"$a\"; done; echo; } >> \"$SKA_RECORD\"\n[ -z \"$SKA_STANDIN_FAIL\" ] || exit 3\n",
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        StandIns { dir, record }
    }

    fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }
}

/// One test's service set-up: a temp dir (SIKKERKEY_HOME, and the definition directory
/// unless the test names another) and stand-ins for the service managers in `managers`.
struct Setup {
    tmp: TempDir,
    stand_ins: StandIns,
}

impl Setup {
    fn new(managers: &[&str]) -> Setup {
        Setup {
            tmp: TempDir::new("svc"),
            stand_ins: StandIns::new(managers),
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// What the stand-ins were run with, one call a row.
    fn calls(&self) -> Vec<Vec<String>> {
        self.stand_ins.calls()
    }

    /// `args` for `platform`, with the temp dir as home and definition directory.
    fn command(&self, platform: &str, args: &[&str]) -> Command {
        self.command_in(self.path(), platform, self.path(), args)
    }

    /// `args` for `platform` with this `home` and definition directory.
    fn command_in(
        &self,
        home: &Path,
        platform: &str,
        service_dir: &Path,
        args: &[&str],
    ) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env_clear()
            .envs(self.env_in(home, platform, service_dir));
        c
    }

    /// The environment of `install`/`uninstall` for `platform`: the stand-ins first on
    /// PATH, the definition directory in a temp dir, and a known user name.
    fn env_in(
        &self,
        home: &Path,
        platform: &str,
        service_dir: &Path,
    ) -> Vec<(&'static str, std::ffi::OsString)> {
        let path = format!(
            "{}:{}",
            self.stand_ins.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("PATH", path.into()),
            ("SIKKERKEY_HOME", home.into()),
            ("SIKKERKEY_SERVICE_PLATFORM", platform.into()),
            ("SIKKERKEY_SERVICE_DIR", service_dir.into()),
            ("SKA_RECORD", self.stand_ins.record.clone().into()),
            ("HOME", home.into()),
            ("USER", "ska-test-user".into()),
        ]
    }
}

/// The name of the user running the tests, as the service would get it.
fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn call(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Splits a systemd value into words the way systemd does for what the renderer emits:
/// double quotes with C escapes, then `%%` and (in command arguments) `$$` collapse.
fn systemd_words(value: &str, command_line: bool) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            '\\' if quoted => word.push(chars.next().expect("escape at end")),
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quotes in {value:?}");
    if started {
        words.push(word);
    }
    words
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let w = w.replace("%%", "%");
            // Variables expand in a command's arguments, not in its executable path.
            if command_line && i > 0 {
                w.replace("$$", "$")
            } else {
                w
            }
        })
        .collect()
}

fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// `install --secret {secret}` for systemd as root, printed, from a shell that has only
/// PATH, SIKKERKEY_HOME=`home` and `env`.
fn print_systemd_unit(home: &Path, secret: &str, env: &[(&str, &str)]) -> Out {
    let mut c = bare(home, &["install", "--secret", secret]);
    c.env("SIKKERKEY_SERVICE_PLATFORM", "systemd")
        .env("USER", "root")
        .envs(env.iter().copied());
    run(c).expect(Exit::Ok)
}

/// The unit's `Environment=` assignments, each split as systemd splits it.
fn unit_environment(unit: &str) -> Vec<String> {
    unit_values(unit, "Environment")
        .iter()
        .flat_map(|v| systemd_words(v, false))
        .collect()
}

/// The agent binary at a path with a space, `$` and `%`: a hard link when the file system
/// allows, else a copy. `current_exe` then reports this path.
fn awkward_binary(dir: &Path) -> PathBuf {
    let bin_dir = dir.join("bin dir $x %y");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let exe = bin_dir.join("sikkerkey-agent");
    if std::fs::hard_link(BIN, &exe).is_err() {
        std::fs::copy(BIN, &exe).unwrap();
    }
    exe
}

#[test]
fn install_prints_a_systemd_unit_that_systemd_accepts() {
    let tmp = TempDir::new("svc");
    let home = tmp.path().join("home with space $HOME %h 'q' \"dq\" \\bs");
    std::fs::create_dir_all(&home).unwrap();
    let exe = awkward_binary(tmp.path());
    let mut c = Command::new(&exe);
    c.args(["install", "--secret", "sk_unit"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIKKERKEY_HOME", &home)
        .env("SIKKERKEY_VAULT", "vault1")
        .env("SIKKERKEY_SERVICE_PLATFORM", "systemd")
        .env("USER", "root");
    let out = run(c).expect(Exit::Ok);
    let unit = out.stdout.clone();
    assert_contains(
        &out.stderr,
        "# Save the unit above as /etc/systemd/system/sikkerkey-agent-sk_unit.service",
    );
    assert_contains(
        &out.stderr,
        "sudo systemctl enable --now sikkerkey-agent-sk_unit.service",
    );
    assert_contains(&out.stderr, "warning: no SikkerKey identity under");

    // What systemd will read, decoded.
    let exec = unit_values(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "{unit}");
    assert_eq!(
        systemd_words(exec[0], true),
        [exe.to_str().unwrap(), "start", "--secret", "sk_unit"]
    );
    let env = unit_environment(&unit);
    assert_eq!(
        env,
        [
            format!("SIKKERKEY_HOME={}", home.display()),
            "SIKKERKEY_VAULT=vault1".to_owned()
        ]
    );
    assert_eq!(
        systemd_words(unit_values(&unit, "ReadWritePaths")[0], false),
        [home.to_str().unwrap()]
    );
    for (key, value) in [
        ("User", "root"),
        ("After", "network-online.target"),
        ("Wants", "network-online.target"),
        ("Restart", "on-failure"),
        ("RestartSec", "10"),
        ("RestartPreventExitStatus", "2 3 4 5"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "read-only"),
        ("PrivateTmp", "yes"),
        ("WantedBy", "multi-user.target"),
    ] {
        assert_eq!(unit_values(&unit, key), [value], "{key} in\n{unit}");
    }

    // systemd's own parser, where it exists.
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let unit_path = tmp.path().join("sikkerkey-agent-sk_unit.service");
    std::fs::write(&unit_path, &unit).unwrap();
    let v = Command::new(analyze)
        .arg("verify")
        .arg(&unit_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&v.stderr);
    let about_us: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("sikkerkey-agent"))
        .collect();
    assert!(
        v.status.success() && about_us.is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}\nunit:\n{unit}",
        v.status
    );
    // And it does check: a unit whose binary does not exist is refused.
    std::fs::remove_file(&exe).unwrap();
    let v = Command::new(analyze)
        .arg("verify")
        .arg(&unit_path)
        .output()
        .unwrap();
    assert!(
        !v.status.success() && String::from_utf8_lossy(&v.stderr).contains("is not executable"),
        "systemd-analyze verify accepted a unit whose binary is gone: {}",
        String::from_utf8_lossy(&v.stderr)
    );
}

/// systemd-analyze, when installed: required under CI, else a printed skip (the
/// decoding checks above still ran).
fn systemd_analyze() -> Option<&'static str> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("systemd-analyze");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "systemd-analyze is required in CI (apt-get install systemd)"
    );
    eprintln!(
        "SKIPPED: systemd-analyze verify (not installed); the unit was checked by the test's own parser only"
    );
    None
}

#[test]
fn install_prints_a_well_formed_launchd_plist() {
    let Some(python) = python3() else { return };
    let setup = Setup::new(&[]);
    let home = setup.path().join("a&b <c> 'd' \"e\"");
    let out = run(setup.command_in(
        &home,
        "launchd",
        &setup.path().join("LaunchAgents"),
        &["install", "--secret", "sk_mac"],
    ))
    .expect(Exit::Ok);
    let check = r#"
import json, plistlib, sys
d = plistlib.loads(sys.stdin.buffer.read())
print(json.dumps(d))
"#;
    let mut p = Command::new(python)
        .arg("-c")
        .arg(check)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    p.stdin
        .take()
        .unwrap()
        .write_all(out.stdout.as_bytes())
        .unwrap();
    let parsed = p.wait_with_output().unwrap();
    assert!(
        parsed.status.success(),
        "plistlib refused the plist: {}\n{}",
        String::from_utf8_lossy(&parsed.stderr),
        out.stdout
    );
    let plist: Value = serde_json::from_slice(&parsed.stdout).unwrap();
    let log = format!("{}/agents/sk_mac.log", home.display());
    assert_eq!(
        plist,
        json!({
            "Label": "com.sikkerkey.agent.sk_mac",
            "ProgramArguments": [BIN, "start", "--secret", "sk_mac"],
            "EnvironmentVariables": {
                "PATH": "/usr/local/bin:/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                "SIKKERKEY_HOME": home.to_str().unwrap()
            },
            "RunAtLoad": true,
            "KeepAlive": {"SuccessfulExit": false},
            "ThrottleInterval": 10,
            "StandardOutPath": log,
            "StandardErrorPath": log
        })
    );
    let dest = setup
        .path()
        .join("LaunchAgents/com.sikkerkey.agent.sk_mac.plist");
    assert_contains(
        &out.stderr,
        &format!("# Save the plist above as {}", dest.display()),
    );
}

#[test]
fn install_prints_windows_commands_with_an_sc_fallback() {
    let setup = Setup::new(&[]);
    let out = run(setup.command("windows", &["install", "--secret", "sk_win-1"])).expect(Exit::Ok);
    for want in [
        &format!("nssm install SikkerKeyAgent_sk_win_1 {BIN} start --secret sk_win-1\r\n"),
        "nssm set SikkerKeyAgent_sk_win_1 AppExit Default Restart\r\n",
        "nssm set SikkerKeyAgent_sk_win_1 AppExit 4 Exit\r\n",
        "nssm set SikkerKeyAgent_sk_win_1 AppRestartDelay 10000\r\n",
        "nssm start SikkerKeyAgent_sk_win_1\r\n",
        &format!(
            "sc.exe create SikkerKeyAgent_sk_win_1 binPath= \"{BIN} start --secret sk_win-1\" start= auto"
        ),
    ] {
        assert!(
            out.stdout.contains(want),
            "{want:?} not in:\n{}",
            out.stdout
        );
    }
    assert!(setup.calls().is_empty());
}

#[test]
fn install_now_and_uninstall_drive_systemd() {
    let setup = Setup::new(&["systemctl"]);
    let units = setup.path().join("units");
    let cmd = |args: &[&str]| setup.command_in(setup.path(), "systemd", &units, args);
    let printed = run(cmd(&["install", "--secret", "sk_sd"]))
        .expect(Exit::Ok)
        .stdout;
    let out = run(cmd(&["install", "--secret", "sk_sd", "--now"])).expect(Exit::Ok);
    let unit_path = units.join("sikkerkey-agent-sk_sd.service");
    assert_eq!(std::fs::read_to_string(&unit_path).unwrap(), printed);
    assert_eq!(mode(&unit_path), 0o644);
    assert_contains(&printed, &format!("\nUser={}\n", whoami()));
    assert!(
        out.stdout.starts_with(&format!(
            "installed {} and started sikkerkey-agent-sk_sd.service",
            unit_path.display()
        )),
        "{}",
        out.stdout
    );
    assert_eq!(
        setup.calls(),
        [
            call(&["systemctl", "daemon-reload"]),
            call(&[
                "systemctl",
                "enable",
                "--now",
                "sikkerkey-agent-sk_sd.service"
            ]),
        ]
    );

    let out = run(cmd(&["uninstall", "--secret", "sk_sd"])).expect(Exit::Ok);
    assert!(!unit_path.exists());
    assert_contains(
        &out.stdout,
        "stopped and disabled sikkerkey-agent-sk_sd.service",
    );
    assert_eq!(
        setup.calls()[2..],
        [
            call(&[
                "systemctl",
                "disable",
                "--now",
                "sikkerkey-agent-sk_sd.service"
            ]),
            call(&["systemctl", "daemon-reload"]),
        ]
    );
    let out = run(cmd(&["uninstall", "--secret", "sk_sd"])).expect(Exit::Ok);
    assert_contains(
        &out.stdout,
        &format!(
            "no service is installed for secret sk_sd (looked for {}); nothing to uninstall",
            unit_path.display()
        ),
    );
    assert_eq!(setup.calls().len(), 4);
}

#[test]
fn install_now_rolls_back_when_the_service_manager_fails() {
    let setup = Setup::new(&["systemctl"]);
    let units = setup.path().join("units");
    let unit_path = units.join("sikkerkey-agent-sk_fail.service");
    let install = || {
        setup.command_in(
            setup.path(),
            "systemd",
            &units,
            &["install", "--secret", "sk_fail", "--now"],
        )
    };
    let failing_install = || {
        let mut c = install();
        c.env("SKA_STANDIN_FAIL", "1");
        run(c).expect(Exit::Failure)
    };
    let out = failing_install();
    assert_contains(
        &out.stderr,
        "error: `systemctl daemon-reload` failed (exit status: 3); rolled back (deleted ",
    );
    assert_contains(&out.stderr, "nothing is installed");
    assert!(
        !unit_path.exists(),
        "the unit stayed after a failed install"
    );
    assert_eq!(
        setup.calls(),
        [
            call(&["systemctl", "daemon-reload"]),
            call(&["systemctl", "daemon-reload"])
        ]
    );

    // A reinstall that fails puts the unit that was there back.
    std::fs::write(&unit_path, "[Unit]\nDescription=the old one\n").unwrap();
    let out = failing_install();
    assert_contains(&out.stderr, "the previous definition is in place again");
    assert_eq!(
        std::fs::read_to_string(&unit_path).unwrap(),
        "[Unit]\nDescription=the old one\n"
    );
    std::fs::remove_file(&unit_path).unwrap();

    // Without a service manager at all.
    let mut c = install();
    c.env("PATH", setup.path());
    let out = run(c).expect(Exit::Failure);
    assert_contains(&out.stderr, "`systemctl` was not found on PATH");
    assert!(!unit_path.exists());
}

/// The real systemctl where no systemd runs (this machine, a container, a chroot):
/// `daemon-reload` fails for real. Install leaves nothing behind; uninstall still deletes
/// the unit and says what it could not do.
#[test]
fn without_a_running_systemd_install_leaves_nothing_and_uninstall_still_deletes() {
    let Some(systemctl) = crate::support::require_env("SKA_SYSTEMCTL", "systemctl") else {
        return;
    };
    if Path::new("/run/systemd/system").exists() {
        eprintln!("SKIPPED: systemd runs on this machine; this test needs one where it does not");
        return;
    }
    let tmp = TempDir::new("svc");
    let units = tmp.path().join("units");
    std::fs::create_dir_all(&units).unwrap();
    let unit_path = units.join("sikkerkey-agent-sk_nosd.service");
    let bin_dir = Path::new(&systemctl).parent().unwrap().to_owned();
    let env = |c: &mut Command| {
        c.env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("SIKKERKEY_HOME", tmp.path())
            .env("SIKKERKEY_SERVICE_PLATFORM", "systemd")
            .env("SIKKERKEY_SERVICE_DIR", &units)
            .env("USER", "ska-test-user");
    };
    let mut c = Command::new(BIN);
    c.args(["install", "--secret", "sk_nosd", "--now"]);
    env(&mut c);
    let out = run(c).expect(Exit::Failure);
    assert_contains(&out.stderr, "+ systemctl daemon-reload");
    assert_contains(&out.stderr, "error: `systemctl daemon-reload` failed");
    assert_contains(
        &out.stderr,
        &format!("rolled back (deleted {}", unit_path.display()),
    );
    assert_contains(&out.stderr, "nothing is installed");
    assert!(!unit_path.exists(), "install left its unit behind");
    assert_eq!(std::fs::read_dir(&units).unwrap().count(), 0);

    // A unit put in place by hand (or by an install on a machine that had systemd).
    let mut c = Command::new(BIN);
    c.args(["install", "--secret", "sk_nosd"]);
    env(&mut c);
    let unit = run(c).expect(Exit::Ok).stdout;
    std::fs::write(&unit_path, unit).unwrap();
    let mut c = Command::new(BIN);
    c.args(["uninstall", "--secret", "sk_nosd"]);
    env(&mut c);
    let out = run(c).expect(Exit::Failure);
    assert!(!unit_path.exists(), "uninstall left the unit behind");
    assert_contains(
        &out.stderr,
        &format!(
            "error: deleted {}, but `systemctl disable --now sikkerkey-agent-sk_nosd.service` failed",
            unit_path.display()
        ),
    );
    assert_contains(&out.stderr, "`systemctl daemon-reload` failed");
    // Nothing left: the next uninstall has nothing to do.
    let mut c = Command::new(BIN);
    c.args(["uninstall", "--secret", "sk_nosd"]);
    env(&mut c);
    assert_contains(&run(c).expect(Exit::Ok).stdout, "nothing to uninstall");
}

#[test]
fn install_now_and_uninstall_drive_launchd() {
    let setup = Setup::new(&["launchctl"]);
    let home = setup.path().join("home");
    let agents = setup.path().join("LaunchAgents");
    let cmd = |args: &[&str]| setup.command_in(&home, "launchd", &agents, args);
    run(cmd(&["install", "--secret", "sk_ld", "--now"])).expect(Exit::Ok);
    let plist = agents.join("com.sikkerkey.agent.sk_ld.plist");
    assert_eq!(mode(&plist), 0o644);
    assert!(
        home.join("agents").is_dir(),
        "the log directory must exist before launchd opens the log"
    );
    let plist_arg = plist.to_str().unwrap();
    assert_eq!(setup.calls(), [call(&["launchctl", "load", plist_arg])]);
    run(cmd(&["uninstall", "--secret", "sk_ld"])).expect(Exit::Ok);
    assert!(!plist.exists());
    assert_eq!(
        setup.calls()[1..],
        [call(&["launchctl", "unload", plist_arg])]
    );
}

#[test]
fn install_now_and_uninstall_drive_nssm() {
    let setup = Setup::new(&["nssm"]);
    let cmd = |args: &[&str]| setup.command("windows", args);
    run(cmd(&["install", "--secret", "sk_w", "--now"])).expect(Exit::Ok);
    let calls = setup.calls();
    let home = setup.path().display().to_string();
    assert_eq!(
        calls[0],
        call(&[
            "nssm",
            "install",
            "SikkerKeyAgent_sk_w",
            BIN,
            "start",
            "--secret",
            "sk_w"
        ])
    );
    assert!(calls.contains(&call(&[
        "nssm",
        "set",
        "SikkerKeyAgent_sk_w",
        "AppEnvironmentExtra",
        &format!("SIKKERKEY_HOME={home}")
    ])));
    assert!(calls.contains(&call(&[
        "nssm",
        "set",
        "SikkerKeyAgent_sk_w",
        "Start",
        "SERVICE_AUTO_START"
    ])));
    assert_eq!(
        calls.last().unwrap(),
        &call(&["nssm", "start", "SikkerKeyAgent_sk_w"])
    );
    let n = calls.len();
    run(cmd(&["uninstall", "--secret", "sk_w"])).expect(Exit::Ok);
    assert_eq!(
        setup.calls()[n..],
        [
            call(&["nssm", "stop", "SikkerKeyAgent_sk_w"]),
            call(&["nssm", "remove", "SikkerKeyAgent_sk_w", "confirm"]),
        ]
    );
    // No NSSM: a clear error and nothing run.
    let without = Setup::new(&[]);
    let mut c = without.command_in(
        setup.path(),
        "windows",
        setup.path(),
        &["install", "--secret", "sk_w", "--now"],
    );
    c.env("PATH", without.stand_ins.dir.path());
    let out = run(c).expect(Exit::Failure);
    assert_contains(
        &out.stderr,
        "`nssm` was not found on PATH; install NSSM (https://nssm.cc)",
    );
    assert!(without.calls().is_empty());
}

#[test]
fn install_runs_the_service_as_the_user_behind_sudo() {
    let setup = Setup::new(&[]);
    let mut c = setup.command("systemd", &["install", "--secret", "sk_sudo"]);
    c.env_remove("SIKKERKEY_HOME")
        .env("SUDO_USER", "nobody")
        .env("USER", "root");
    let out = run(c).expect(Exit::Ok);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // nobody's home in /etc/passwd is /nonexistent on Debian; read it rather than assume.
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let home = passwd
            .lines()
            .find_map(|l| l.strip_prefix("nobody:"))
            .and_then(|rest| rest.split(':').nth(4))
            .expect("a nobody user in /etc/passwd");
        assert_contains(&out.stdout, "\nUser=nobody\n");
        assert_contains(
            &out.stdout,
            &format!("\nReadWritePaths=\"{home}/.sikkerkey\"\n"),
        );
        assert_lacks(&out.stderr, "will run as root");
        // launchd agents belong to the user: refused under sudo.
        let mut c = setup.command("launchd", &["install", "--secret", "sk_sudo"]);
        c.env("SUDO_USER", "nobody");
        let out = run(c).expect(Exit::Failure);
        assert_contains(&out.stderr, "run `install` without sudo");
    } else {
        // Not root: SUDO_USER cannot be real, so the service runs as whoever we are.
        assert_lacks(&out.stdout, "\nUser=nobody\n");
    }
}

#[test]
fn install_refuses_bad_input() {
    let setup = Setup::new(&[]);
    let out = run(setup.command("solaris", &["install", "--secret", "sk_x"])).expect(Exit::Usage);
    assert_contains(&out.stderr, "unknown service platform \"solaris\"");
    run(setup.command("systemd", &["install", "--secret", "x/../y"])).expect(Exit::Usage);
    run(setup.command("systemd", &["install"])).expect(Exit::Usage);
    run(setup.command("systemd", &["uninstall", "--secret", "sk_x", "--now"])).expect(Exit::Usage);
    assert!(setup.calls().is_empty());
}

/// `sudo sikkerkey agent install --secret sk_abc123 --now` from sync-agent.txt, through a
/// symlink named `sikkerkey`.
#[test]
fn the_official_install_command_line_works_through_a_symlink() {
    let setup = Setup::new(&["systemctl"]);
    let link = setup.path().join("sikkerkey");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let units = setup.path().join("units");
    let env = setup.env_in(setup.path(), "systemd", &units);
    let mut official = Command::new(&link);
    official
        .args(["agent", "install", "--secret", "sk_abc123", "--now"])
        .env_clear()
        .envs(env.clone());
    run(official).expect(Exit::Ok);
    let unit = std::fs::read_to_string(units.join("sikkerkey-agent-sk_abc123.service")).unwrap();
    // The unit runs the real binary (symlink resolved) with the command `start`.
    assert_eq!(
        unit_values(&unit, "ExecStart"),
        [format!("\"{BIN}\" start --secret sk_abc123").as_str()]
    );
    assert_eq!(
        setup.calls()[1],
        call(&[
            "systemctl",
            "enable",
            "--now",
            "sikkerkey-agent-sk_abc123.service"
        ])
    );
    // And the other official lines parse and run.
    for args in [
        vec!["agent", "list"],
        vec!["agent", "stop", "--secret", "sk_abc123"],
        vec!["agent", "remove", "--secret", "sk_abc123"],
        vec!["agent", "test", "--secret", "sk_abc123"],
        vec!["agent", "uninstall", "--secret", "sk_abc123"],
    ] {
        let mut c = Command::new(&link);
        c.args(&args).env_clear().envs(env.clone());
        let out = run(c);
        assert_ne!(
            out.code,
            Exit::Usage.code(),
            "{args:?} was not understood: {}",
            out.stderr
        );
    }
    assert!(!units.join("sikkerkey-agent-sk_abc123.service").exists());
}

/// Proxy and CA variables set at install time reach the service; a proxy URL with
/// credentials does not (unit files are world-readable), and a warning says so.
#[test]
fn install_carries_proxy_and_ca_variables_but_never_proxy_credentials() {
    let tmp = TempDir::new("svc");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = print_systemd_unit(
        &home,
        "sk_env",
        &[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("NO_PROXY", "localhost,.internal"),
            ("SIKKERKEY_CA_FILE", "/etc/ska/corp ca%.pem"),
            ("http_proxy", "http://ann:s3cretpw@proxy.corp:3128"),
        ],
    );
    let env = unit_environment(&out.stdout);
    assert_eq!(
        env,
        [
            format!("SIKKERKEY_HOME={}", home.display()),
            "HTTPS_PROXY=http://proxy.corp:3128".to_owned(),
            "NO_PROXY=localhost,.internal".to_owned(),
            "SIKKERKEY_CA_FILE=/etc/ska/corp ca%.pem".to_owned(),
        ]
    );
    assert_lacks(&out.stdout, "s3cretpw");
    assert_lacks(&out.stderr, "s3cretpw");
    assert_contains(
        &out.stderr,
        "warning: http_proxy holds a user name or password",
    );
    assert_contains(
        &out.stderr,
        "note: the service gets HTTPS_PROXY, NO_PROXY, SIKKERKEY_CA_FILE from this shell",
    );
}

/// libpq's TLS variables reach the service, so it verifies PostgreSQL the way the agent
/// did in the foreground instead of falling back to `prefer`.
#[test]
fn install_carries_the_libpq_tls_variables() {
    let tmp = TempDir::new("svc");
    let out = print_systemd_unit(
        tmp.path(),
        "sk_pg",
        &[
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/etc/pg/root ca.pem"),
            ("PGSSLCERT", "/etc/pg/client.crt"),
            ("PGSSLKEY", "client.key"),
        ],
    );
    let env = unit_environment(&out.stdout);
    assert_eq!(
        env[1..],
        [
            "PGSSLMODE=verify-full".to_owned(),
            "PGSSLROOTCERT=/etc/pg/root ca.pem".to_owned(),
            "PGSSLCERT=/etc/pg/client.crt".to_owned(),
        ]
    );
    assert_contains(
        &out.stderr,
        "warning: PGSSLKEY=client.key is not an absolute path",
    );
    assert_contains(
        &out.stderr,
        "note: the service gets PGSSLMODE, PGSSLROOTCERT, PGSSLCERT from this shell",
    );
}
