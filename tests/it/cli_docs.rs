//! The command line, `--help` and README.md say the same thing. The parser accepts
//! exactly the options in `src/help/defs.rs`, so what is checked here is what could still
//! drift: each option reaches the binary's `--help` and its command's README section,
//! each variable `settings.rs` reads (and each one `install` carries into a service) is
//! in the help and README, and each exit code in `src/exit.rs` is in the help and in
//! README's table.

use std::path::Path;
use std::process::Command;

use sikkerkey_agent::exit::Exit;
use sikkerkey_agent::help;
use sikkerkey_agent::service::carried_env::CARRIED;

use crate::support::cli::BIN;

fn source(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn help_of(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).env_clear().output().unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The text of README's `### {name}` section, up to the next heading.
fn readme_section<'a>(readme: &'a str, name: &str) -> &'a str {
    let start = readme
        .find(&format!("\n### {name}\n"))
        .unwrap_or_else(|| panic!("README.md has no `### {name}` section"));
    let rest = &readme[start + 1..];
    let end = rest[4..].find("\n#").map(|i| i + 4).unwrap_or(rest.len());
    &rest[..end]
}

/// Every `"NAME"` string literal in `text` that starts with `prefix`.
fn names_in(text: &str, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() > prefix.len()
                && s.starts_with(prefix)
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_option_is_in_the_help_and_in_its_readme_section() {
    let readme = source("README.md");
    let mut missing = Vec::new();
    for c in help::COMMANDS {
        let shown = help_of(&[c.name, "--help"]);
        if c.options.is_empty() {
            continue;
        }
        let section = readme_section(&readme, c.name);
        for o in c.options {
            if !shown.contains(&help::option_label(o)) {
                missing.push(format!("{} {}: not in `--help`", c.name, o.long));
            }
            if !section.contains(o.long) {
                missing.push(format!(
                    "{} {}: not in README's `### {}` section",
                    c.name, o.long, c.name
                ));
            }
        }
    }
    let top = help_of(&["--help"]);
    for o in help::GLOBAL_OPTIONS {
        if !top.contains(&help::option_label(o)) {
            missing.push(format!("{}: not in the top-level `--help`", o.long));
        }
        if !readme.contains(o.long) {
            missing.push(format!("{}: not in README.md", o.long));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn every_variable_read_is_in_the_help_and_in_readme() {
    let readme = source("README.md");
    let top = help_of(&["--help"]);
    let read = names_in(&source("src/settings.rs"), "SIKKERKEY_");
    assert!(
        read.len() >= 10 && read.iter().any(|n| n == "SIKKERKEY_DRIFT_REPAIR"),
        "the scan of settings.rs found too little: {read:?}"
    );
    let mut missing = Vec::new();
    for name in &read {
        // The test-only knobs are in README's environment table, not in the help.
        let test_only = name.starts_with("SIKKERKEY_AGENT_");
        if !test_only && !top.contains(&format!("\n  {name} ")) {
            missing.push(format!("{name}: read by settings.rs, not in `--help`"));
        }
        if !readme.contains(&format!("`{name}`")) {
            missing.push(format!("{name}: read by settings.rs, not in README.md"));
        }
    }
    // Proxy variables are documented in upper case ("or lower case").
    for name in CARRIED {
        if !readme.contains(&name.to_ascii_uppercase()) {
            missing.push(format!("{name}: carried into services, not in README.md"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn every_exit_code_is_in_the_help_and_in_readme() {
    let readme = source("README.md");
    let top = help_of(&["--help"]);
    let codes = top
        .split_once("\nExit codes")
        .expect("the top-level help lists the exit codes")
        .1;
    let mut missing = Vec::new();
    for e in Exit::ALL {
        if !codes.contains(&format!("\n  {:<3} ", e.code())) {
            missing.push(format!("exit code {} ({e:?}): not in `--help`", e.code()));
        }
        if !readme.contains(&format!("\n| {} |", e.code())) {
            missing.push(format!(
                "exit code {} ({e:?}): not in README's exit code table",
                e.code()
            ));
        }
    }
    // A command documents only codes that exist (status: the monitoring-plugin ones).
    for c in help::COMMANDS {
        for (code, _) in c.exits {
            let known = if c.name == "status" {
                (0..=3).contains(code)
            } else {
                Exit::ALL.iter().any(|e| e.code() == *code)
            };
            if !known {
                missing.push(format!("{}: documents unknown exit code {code}", c.name));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn readme_shows_the_two_commands_near_the_top() {
    let readme = source("README.md");
    let at = readme
        .lines()
        .position(|l| l.starts_with("## Two commands"))
        .expect("README.md has its `## Two commands` section");
    assert!(
        at < 40,
        "`## Two commands` is at line {}; it belongs near the top",
        at + 1
    );
}
