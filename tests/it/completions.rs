//! The shell completions and the man page, checked by the programs that read them: bash
//! and fish complete real command lines with them, zsh parses its script, groff renders
//! the man page without a warning.

use std::process::Command;

use crate::support::assertions::Exit;
use crate::support::cli;
use crate::support::{TempDir, require_env};

fn generate(args: &[&str], dir: &TempDir, name: &str) -> std::path::PathBuf {
    let mut command = Command::new(cli::BIN);
    command.args(args);
    let out = cli::run(command).expect(Exit::Ok);
    let path = dir.path().join(name);
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn output(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bash_completes_commands_options_providers_and_secret_ids() {
    let dir = TempDir::new("compl");
    let script = generate(&["completions", "bash"], &dir, "sikkerkey-agent.bash");
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("agents")).unwrap();
    std::fs::write(home.join("agents/sk_known.json"), "{}").unwrap();
    std::fs::write(home.join("agents/sk_known.state.json"), "{}").unwrap();
    let complete = |line: &str| {
        output(
            Command::new("bash")
                .env("SIKKERKEY_HOME", &home)
                .arg("-c")
                .arg(format!(
                    "set -e; source '{}'; COMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                     _sikkerkey_agent; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                    script.display()
                )),
        )
    };
    assert_eq!(
        complete("sikkerkey-agent sta ''").trim(),
        "",
        "after a full word"
    );
    let words = complete("sikkerkey-agent st");
    assert_eq!(
        words.lines().collect::<Vec<_>>(),
        ["start", "status", "stop"]
    );
    let words = complete("sikkerkey-agent configure --provider postg");
    assert_eq!(
        words.lines().collect::<Vec<_>>(),
        ["postgresql", "postgresql_supabase"]
    );
    let words = complete("sikkerkey-agent agent status --secret sk_");
    assert_eq!(words.trim(), "sk_known");
    let words = complete("sikkerkey-agent list --");
    assert!(
        words.contains("--output") && words.contains("--log-format"),
        "{words}"
    );
}

#[test]
fn zsh_and_fish_read_their_scripts() {
    let Some(zsh) = require_env("SKA_ZSH", "zsh") else {
        return;
    };
    let Some(fish) = require_env("SKA_FISH", "fish") else {
        return;
    };
    let dir = TempDir::new("compl");
    let z = generate(&["completions", "zsh"], &dir, "_sikkerkey-agent");
    output(Command::new(&zsh).arg("-n").arg(&z));
    let f = generate(&["completions", "fish"], &dir, "sikkerkey-agent.fish");
    output(Command::new(&fish).arg("--no-execute").arg(&f));
    let words = output(Command::new(&fish).arg("-c").arg(format!(
        "source '{}'; complete -C 'sikkerkey-agent configure --provider my'",
        f.display()
    )));
    assert!(words.starts_with("mysql"), "{words}");
    let words = output(Command::new(&fish).arg("-c").arg(format!(
        "source '{}'; complete -C 'sikkerkey-agent stat'",
        f.display()
    )));
    assert!(words.starts_with("status\t"), "{words}");
}

#[test]
fn the_man_page_renders_without_warnings() {
    let Some(groff) = require_env("SKA_GROFF", "groff") else {
        return;
    };
    let dir = TempDir::new("man");
    let page = generate(&["man"], &dir, "sikkerkey-agent.1");
    let out = Command::new(&groff)
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .arg(&page)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    // -P-cbou: plain text without overstruck bold; groff may still hyphenate long words.
    for want in [
        "SIKKERKEY_LOG_FORMAT",
        "ENVIRONMENT",
        "status",
        "prometheus",
    ] {
        assert!(
            text.contains(want),
            "{want} missing from the rendered page:\n{text}"
        );
    }
}
