//! The layering rule of ARCHITECTURE.md ("Layers"), checked on the source text: which
//! module may import which, only `api/` speaks HTTP, only `providers/` link database
//! drivers, only `settings.rs` reads `SIKKERKEY_*` variables. A new import that breaks a
//! rule fails here with the file and the line, so the rule cannot drift silently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and the crate modules it may import. A module not
/// listed here fails the test: a new module states its place in the layers.
const MAY_IMPORT: &[(&str, &[&str])] = &[
    // Leaves: the building blocks, importing (almost) nothing.
    ("clock", &[]),
    ("defaults", &[]),
    ("exit", &[]),
    ("files", &[]),
    ("fsutil", &[]),
    ("hex", &[]),
    ("memory", &[]),
    ("secret", &[]),
    ("secret_file", &[]),
    ("settings", &["secret"]),
    ("pidfile", &["fsutil"]),
    ("suggest", &[]),
    ("tls_failure", &[]),
    ("trust", &[]),
    ("logging", &["clock"]),
    // The one definition of the command line, which `cli` parses against; its choices
    // come from the types they become (provider kinds, TLS modes, log formats).
    ("help", &["exit", "logging", "providers"]),
    ("cli", &["help", "secret", "suggest"]),
    // The domain: identity and wire format, databases, local config, service files.
    ("identity", &["clock", "fsutil", "hex", "secret_file"]),
    (
        "api",
        &[
            "clock",
            "defaults",
            "identity",
            "secret",
            "tls_failure",
            "trust",
        ],
    ),
    (
        "providers",
        &["defaults", "hex", "secret", "suggest", "tls_failure"],
    ),
    (
        "localconfig",
        &["api", "fsutil", "providers", "secret", "secret_file"],
    ),
    (
        "service",
        &[
            "defaults", "exit", "files", "fsutil", "identity", "settings", "trust",
        ],
    ),
    // The runtime.
    (
        "agent",
        &[
            "api",
            "clock",
            "defaults",
            // A crashed thread ends the process itself, with Exit::WorkerCrashed (watch.rs).
            "exit",
            "files",
            "fsutil",
            "hex",
            "localconfig",
            "logging",
            "memory",
            "pidfile",
            "providers",
            "secret",
        ],
    ),
    // The front: one module per command, over everything below it.
    (
        "commands",
        &[
            "agent",
            "api",
            "cli",
            "clock",
            "exit",
            "files",
            "fsutil",
            "help",
            "identity",
            "localconfig",
            "logging",
            "pidfile",
            "providers",
            "secret",
            "secret_file",
            "service",
            "settings",
        ],
    ),
    ("lib", &[]),
    ("main", &[]),
];

/// Crates that are database drivers (or a driver's runtime): only `providers/` use them.
const DRIVER_CRATES: &[&str] = &[
    "postgres",
    "postgres_protocol",
    "tokio_postgres",
    "mysql",
    "redis",
    "mongodb",
    "bson",
    "tokio",
    "stringprep",
];

/// One source file of the crate, its text without comments.
struct Source {
    /// Relative to `src/`, with `/` separators.
    path: String,
    /// The top-level module it belongs to (`agent` for `agent/rotation.rs`).
    module: String,
    /// Code lines (1-based number, text) with `//` comments removed.
    lines: Vec<(usize, String)>,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        files.len() > 20,
        "found only {} files under {}",
        files.len(),
        root.display()
    );
    files.into_iter().map(|p| source(&root, p)).collect()
}

fn source(root: &Path, path: PathBuf) -> Source {
    let rel = path
        .strip_prefix(root)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/");
    let module = rel
        .split('/')
        .next()
        .unwrap()
        .trim_end_matches(".rs")
        .to_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, strip_comment(l).to_owned()))
        .collect();
    Source {
        path: rel,
        module,
        lines,
    }
}

/// The line without a trailing `//` comment (a `//` inside a string literal is rare
/// enough in this code base that cutting there only makes the check stricter nowhere).
fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        Some(i) if !line[..i].contains('"') => &line[..i],
        _ => line,
    }
}

/// The crate modules a line names through `crate::name` or `crate::{a, b::c}`.
fn crate_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        // `sikkerkey_agent::` or `$crate::` are not this form; `::crate` does not occur.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            let mut ident = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        if !ident.is_empty() {
                            out.push(std::mem::take(&mut ident));
                        }
                        item_start = true;
                    }
                    c if depth == 1 && item_start && (c.is_alphanumeric() || c == '_') => {
                        ident.push(c)
                    }
                    _ if depth == 1 && item_start && !ident.is_empty() => {
                        out.push(std::mem::take(&mut ident));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !ident.is_empty() {
                out.push(ident);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Whether the line uses crate `name` by path (`name::`, `::name::`, `use name;`), not a
/// module of ours that happens to share the name (`providers::redis::`).
fn uses_crate(line: &str, name: &str) -> bool {
    let mut from = 0;
    while let Some(i) = line[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let after = &line[at + name.len()..];
        if !(after.starts_with("::") || after.starts_with(';') && line.contains("use ")) {
            continue;
        }
        let before = &line[..at];
        let prev = before.chars().next_back();
        let word_char = |c: char| c.is_alphanumeric() || c == '_';
        let is_path_root = match prev {
            None => true,
            Some(':') => {
                // `::name::` is a crate root only when nothing names a parent before it.
                let b = before.trim_end_matches(':');
                b.len() + 2 == before.len() && !b.chars().next_back().is_some_and(word_char)
            }
            Some(c) => !word_char(c) && c != '.',
        };
        if is_path_root {
            return true;
        }
    }
    false
}

fn violations(mut check: impl FnMut(&Source, &str) -> Option<String>) -> Vec<String> {
    let mut out = Vec::new();
    for src in sources() {
        for (n, line) in &src.lines {
            if let Some(why) = check(&src, line) {
                out.push(format!("src/{}:{n}: {why}: {}", src.path, line.trim()));
            }
        }
    }
    out
}

fn assert_none(rule: &str, found: Vec<String>) {
    assert!(
        found.is_empty(),
        "{rule} (ARCHITECTURE.md, Layers):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn modules_import_only_the_layers_below_them() {
    let allowed = |module: &str| -> Option<BTreeSet<&str>> {
        MAY_IMPORT
            .iter()
            .find(|(m, _)| *m == module)
            .map(|(_, deps)| deps.iter().copied().collect())
    };
    let mut unknown = BTreeSet::new();
    let found = violations(|src, line| {
        let Some(deps) = allowed(&src.module) else {
            unknown.insert(src.module.clone());
            return None;
        };
        crate_modules(line)
            .into_iter()
            .find(|m| *m != src.module && !deps.contains(m.as_str()))
            .map(|m| format!("{} may not import {m}", src.module))
    });
    assert!(
        unknown.is_empty(),
        "modules without a place in MAY_IMPORT: {unknown:?}"
    );
    assert_none("a module imports one above or beside it", found);
}

#[test]
fn only_main_imports_commands() {
    let found = violations(|src, line| {
        let names_commands = crate_modules(line).iter().any(|m| m == "commands")
            || line.contains("sikkerkey_agent::commands");
        (names_commands && src.module != "commands" && src.module != "main")
            .then(|| "only main.rs dispatches to commands".to_owned())
    });
    assert_none("commands is imported below main", found);
}

#[test]
fn only_api_speaks_http() {
    let found = violations(|src, line| {
        (uses_crate(line, "ureq") && src.module != "api").then(|| "ureq outside api/".into())
    });
    assert_none("HTTP outside api/", found);
}

#[test]
fn only_providers_link_database_drivers() {
    let found = violations(|src, line| {
        if src.module == "providers" {
            return None;
        }
        DRIVER_CRATES
            .iter()
            .find(|c| uses_crate(line, c))
            .map(|c| format!("database driver crate {c} outside providers/"))
    });
    assert_none("a database driver outside providers/", found);
}

#[test]
fn only_settings_reads_sikkerkey_variables() {
    let found = violations(|src, line| {
        let reads = (line.contains("env::var(\"SIKKERKEY_")
            || line.contains("env::var_os(\"SIKKERKEY_"))
            && src.path != "settings.rs"
            // The golden-file switch of the service unit tests is test code, not a setting.
            && !line.contains("SIKKERKEY_UPDATE_GOLDEN");
        reads.then(|| "reads a SIKKERKEY_* variable outside settings.rs".into())
    });
    assert_none("environment read outside settings.rs", found);
}

/// The checks above must be able to fail: each detector on lines that break the rule.
#[test]
fn the_detectors_see_what_they_look_for() {
    assert_eq!(crate_modules("use crate::agent::AgentError;"), ["agent"]);
    assert_eq!(
        crate_modules("use crate::{fsutil, pidfile::{self, PidFile}};"),
        ["fsutil", "pidfile"]
    );
    assert_eq!(
        crate_modules("x = crate::exit::Exit::Config.code();"),
        ["exit"]
    );
    assert!(crate_modules("use sikkerkey_agent::commands;").is_empty());
    assert!(uses_crate("use ureq::Agent;", "ureq"));
    assert!(uses_crate("let e: ::mysql::Error = x;", "mysql"));
    assert!(uses_crate("    redis::cmd(\"ACL\")", "redis"));
    assert!(!uses_crate("use crate::providers::redis::Redis;", "redis"));
    assert!(!uses_crate("let postgres = 1;", "postgres"));
    assert!(!uses_crate("self.mysql::x", "mysql"));
}
