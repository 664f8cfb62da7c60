//! The layering rule of ARCHITECTURE.md ("Layers"), checked on the source text: which
//! module may import which, no cycle between the files of any module, only `api/` speaks
//! HTTP, only `providers/` link database drivers, only `settings.rs` reads `SIKKERKEY_*`
//! variables. A new import that breaks a rule fails here with the file and the line, so
//! the rule cannot drift silently; ARCHITECTURE.md's table of the layers is held to
//! [`MAY_IMPORT`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and the crate modules it may import. A module not
/// listed here fails the test: a new module states its place in the layers.
const MAY_IMPORT: &[(&str, &[&str])] = &[
    // Leaves: the building blocks, importing (almost) nothing.
    ("clock", &[]),
    ("defaults", &[]),
    ("exit", &[]),
    ("files", &[]),
    ("fsutil", &["json_problem"]),
    ("json_problem", &[]),
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
    (
        "identity",
        &["clock", "fsutil", "hex", "json_problem", "secret_file"],
    ),
    (
        "api",
        &[
            "clock",
            "defaults",
            "identity",
            "json_problem",
            "secret",
            "tls_failure",
            "trust",
        ],
    ),
    (
        "providers",
        &[
            "defaults",
            "hex",
            "json_problem",
            "secret",
            "suggest",
            "tls_failure",
        ],
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
    /// The top-level module it belongs to (`agent` for `agent/engine/rotate.rs`).
    module: String,
    /// Code lines (1-based number, text) with `//` comments removed.
    lines: Vec<(usize, String)>,
}

/// The crate's `src/`.
fn src_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn sources() -> Vec<Source> {
    let root = src_root();
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

// ---- no cycles between the files of a module ----
//
// Within each module directory (`src/`, `src/agent/`, `src/agent/engine/`, ...) the
// files and subdirectories below it form a graph: one depends on another when it names
// it in a path (`use super::watch::ThreadWatch`, `crate::agent::status::unix_now`,
// `heartbeat::Heartbeat` from a `mod.rs`). That graph must have no cycle. A module's own
// `mod.rs` is its face, not one of its parts: its children may use what it declares.
// Test modules inline in a file count as part of that file.

/// Cycles known and being removed elsewhere: (module directory, its files in the cycle).
/// An entry that no longer matches a cycle fails the test, so it goes with the fix.
const CYCLES_BEING_REMOVED: &[(&str, &[&str])] = &[];

/// Every source file of the library crate (not `main.rs`, the binary's own root):
/// (path relative to `src/`, text).
fn library_texts() -> Vec<(String, String)> {
    sources()
        .into_iter()
        .filter(|s| s.path != "main.rs")
        .map(|s| {
            let text = std::fs::read_to_string(src_root().join(&s.path)).unwrap();
            (s.path, text)
        })
        .collect()
}

/// The module a file is: `agent/engine/mod.rs` → `agent::engine`, `lib.rs` → the root.
fn module_of(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = path.split('/').map(str::to_owned).collect();
    let file = parts.pop().unwrap();
    match file.as_str() {
        "mod.rs" | "lib.rs" => {}
        f => parts.push(f.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The text with comments, string and character literals blanked (newlines kept).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !word_before(&chars, i) {
            // A raw string: r"..." or r#"..."#.
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<char> = std::iter::once('"')
                .chain((0..hashes).map(|_| '#'))
                .collect();
            let end = (j + 1..chars.len())
                .find(|&k| chars[k..].starts_with(&close))
                .map_or(chars.len(), |k| k + close.len());
            out.extend(chars[i..end].iter().map(|&ch| blank(ch)));
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1b}'), else a lifetime.
            let end = if next == Some('\\') {
                (i + 2..chars.len().min(i + 12)).find(|&k| chars[k] == '\'')
            } else {
                (chars.get(i + 2) == Some(&'\'')).then_some(i + 2)
            };
            match end {
                Some(end) => {
                    out.extend(std::iter::repeat_n(' ', end + 1 - i));
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn word_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// A token of code: an identifier (or keyword), `::`, or one punctuation character.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

fn tokens(code: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_alphanumeric() || c == '_' {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push(Token {
                    text: chars[start..i].iter().collect(),
                    line: n + 1,
                });
            } else if c == ':' && chars.get(i + 1) == Some(&':') {
                out.push(Token {
                    text: "::".into(),
                    line: n + 1,
                });
                i += 2;
            } else {
                if !c.is_whitespace() {
                    out.push(Token {
                        text: c.to_string(),
                        line: n + 1,
                    });
                }
                i += 1;
            }
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The paths of a path tree starting at `tokens[i]` (`a::b::{c, d::e}` → a::b::c,
/// a::b::d::e), and the index after it.
fn path_tree(tokens: &[Token], i: usize) -> (Vec<Vec<String>>, usize) {
    let Some(t) = tokens.get(i) else {
        return (vec![vec![]], i);
    };
    if t.text == "{" {
        let mut all = Vec::new();
        let mut j = i + 1;
        while let Some(t) = tokens.get(j) {
            match t.text.as_str() {
                "}" => return (all, j + 1),
                "," => j += 1,
                _ => {
                    let (paths, next) = path_tree(tokens, j);
                    all.extend(paths);
                    j = next.max(j + 1);
                }
            }
        }
        return (all, j);
    }
    if !(is_ident(&t.text) || t.text == "*") {
        return (vec![vec![]], i);
    }
    let seg = t.text.clone();
    if tokens.get(i + 1).is_some_and(|t| t.text == "::") {
        let (rest, next) = path_tree(tokens, i + 2);
        let paths = rest
            .into_iter()
            .map(|mut p| {
                p.insert(0, seg.clone());
                p
            })
            .collect();
        (paths, next)
    } else {
        (vec![vec![seg]], i + 1)
    }
}

/// The module a path names from module `base`, cut to the longest prefix that is a file
/// of the crate; `None` for a path into another crate or through a local name.
fn resolve(
    base: &[String],
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let mut at: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "super" => base[..base.len().checked_sub(1)?].to_vec(),
        "self" => base.to_vec(),
        child => {
            let mut m = base.to_vec();
            m.push(child.to_owned());
            if !modules.contains(&m) {
                return None;
            }
            m
        }
    };
    for seg in rest {
        match seg.as_str() {
            "super" => {
                at.pop()?;
            }
            "self" | "*" => {}
            s => at.push(s.to_owned()),
        }
    }
    while !modules.contains(&at) {
        at.pop()?;
    }
    Some(at)
}

/// One file naming another: (from, to, line).
type FileEdge = (Vec<String>, Vec<String>, usize);

/// Every file-to-file dependency of `texts` (path relative to `src/`, text).
fn file_edges(texts: &[(String, String)]) -> Vec<FileEdge> {
    let modules: BTreeSet<Vec<String>> = texts.iter().map(|(p, _)| module_of(p)).collect();
    let mut edges = Vec::new();
    for (path, text) in texts {
        let file = module_of(path);
        let toks = tokens(&code_only(text));
        // Inline modules (`mod tests { ... }`): their name, and the depth they close at.
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0;
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i].text;
            if t == "mod"
                && toks.get(i + 1).is_some_and(|t| is_ident(&t.text))
                && toks.get(i + 2).is_some_and(|t| t.text == "{")
            {
                inline.push((toks[i + 1].text.clone(), depth));
            }
            match t.as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                _ => {}
            }
            let starts_path = is_ident(t)
                && toks.get(i + 1).is_some_and(|t| t.text == "::")
                && (i == 0 || toks[i - 1].text != "::");
            if !starts_path {
                i += 1;
                continue;
            }
            let base: Vec<String> = file
                .iter()
                .cloned()
                .chain(inline.iter().map(|(m, _)| m.clone()))
                .collect();
            let (paths, next) = path_tree(&toks, i);
            for p in paths {
                if let Some(to) = resolve(&base, &p, &modules)
                    && to != file
                {
                    edges.push((file.clone(), to, toks[i].line));
                }
            }
            i = next.max(i + 1);
        }
    }
    edges
}

fn file_name(module: &[String], texts: &[(String, String)]) -> String {
    texts
        .iter()
        .map(|(p, _)| p)
        .find(|p| module_of(p) == module)
        .cloned()
        .unwrap_or_else(|| module.join("/"))
}

/// The cycles between the parts of each module: (module directory, the parts in one
/// strongly connected group, the file lines that tie them).
fn module_cycles(texts: &[(String, String)]) -> Vec<(String, Vec<String>, Vec<String>)> {
    let edges = file_edges(texts);
    let dirs: BTreeSet<Vec<String>> = texts
        .iter()
        .map(|(p, _)| {
            let mut d: Vec<String> = p.split('/').map(str::to_owned).collect();
            d.pop();
            d
        })
        .collect();
    let mut found = Vec::new();
    for dir in dirs {
        // The part of `dir` a file is in: its first path segment below `dir`.
        let part = |m: &[String]| -> Option<String> {
            (m.len() > dir.len() && m.starts_with(&dir)).then(|| m[dir.len()].clone())
        };
        let mut graph: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (from, to, line) in &edges {
            if let (Some(a), Some(b)) = (part(from), part(to))
                && a != b
            {
                graph
                    .entry(a)
                    .or_default()
                    .entry(b)
                    .or_default()
                    .push(format!(
                        "src/{}:{line} names {}",
                        file_name(from, texts),
                        file_name(to, texts)
                    ));
            }
        }
        for group in strongly_connected(&graph) {
            let ties = group
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|(b, _)| group.contains(b))
                        .flat_map(|(_, why)| why.first().cloned())
                })
                .collect();
            let name = if dir.is_empty() {
                "src".to_owned()
            } else {
                dir.join("/")
            };
            found.push((name, group, ties));
        }
    }
    found
}

/// The groups of more than one node that reach each other (Tarjan's algorithm).
fn strongly_connected(graph: &BTreeMap<String, BTreeMap<String, Vec<String>>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, Vec<String>>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        groups: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(next) = s.graph.get(v) {
            for w in next.keys() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.groups.push(group);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.groups
}

#[test]
fn no_module_has_a_cycle_between_its_files() {
    let cycles = module_cycles(&library_texts());
    let allowed = |dir: &str, group: &[String]| {
        CYCLES_BEING_REMOVED
            .iter()
            .any(|(d, parts)| *d == dir && parts.iter().eq(group.iter()))
    };
    let bad: Vec<String> = cycles
        .iter()
        .filter(|(dir, group, _)| !allowed(dir, group))
        .map(|(dir, group, ties)| {
            format!(
                "src/{dir}/: {} depend on each other:\n    {}",
                group.join(", "),
                ties.join("\n    ")
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "cycles between the files of a module (ARCHITECTURE.md, Layers):\n  {}",
        bad.join("\n  ")
    );
    for (dir, parts) in CYCLES_BEING_REMOVED {
        assert!(
            cycles
                .iter()
                .any(|(d, g, _)| d == dir && parts.iter().eq(g.iter())),
            "the cycle {parts:?} in src/{dir}/ is gone: remove it from CYCLES_BEING_REMOVED"
        );
    }
}

/// The cycle check on a small crate with a cycle planted in it, and the same crate
/// without it: it finds the one and only the one.
#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let crate_with = |watch: &str| {
        [
            ("lib.rs", "pub mod agent;"),
            (
                "agent/mod.rs",
                "pub mod heartbeat; pub mod watch; pub mod status;\nuse heartbeat::Heartbeat;\npub struct Context;",
            ),
            (
                "agent/heartbeat.rs",
                "use super::watch::{ThreadWatch, fail_point};\nuse super::Context;\n// use super::status;\nconst S: &str = \"super::status::X\";\nconst R: &str = r#\"super::status::Y \" \"#;\n/* super::status::Z */ const Q: char = '\"';",
            ),
            ("agent/watch.rs", watch),
            (
                "agent/status.rs",
                "#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::heartbeat;\n}",
            ),
        ]
        .map(|(p, t)| (p.to_owned(), t.to_owned()))
        .to_vec()
    };
    let clean = crate_with("use crate::agent::Context;");
    let planted = crate_with("use crate::agent::{\n    Context,\n    heartbeat::Heartbeat,\n};");
    // status's inline test module names heartbeat (`super::super` from inside it), and
    // heartbeat names status only in a comment and a string, which name nothing: no
    // cycle without the planted import.
    let name = |m: &[String]| m.join("::");
    let edges: BTreeSet<(String, String)> = file_edges(&clean)
        .iter()
        .map(|(a, b, _)| (name(a), name(b)))
        .collect();
    assert!(edges.contains(&("agent::status".into(), "agent::heartbeat".into())));
    assert!(!edges.contains(&("agent::heartbeat".into(), "agent::status".into())));
    assert_eq!(module_cycles(&clean), vec![]);
    let found = module_cycles(&planted);
    assert_eq!(found.len(), 1, "{found:?}");
    let (dir, group, ties) = &found[0];
    assert_eq!(dir, "agent");
    assert_eq!(group, &["heartbeat", "watch"]);
    assert_eq!(
        ties,
        &[
            "src/agent/heartbeat.rs:1 names agent/watch.rs",
            "src/agent/watch.rs:1 names agent/heartbeat.rs",
        ]
    );
    // Paths the resolver must read the way rustc does.
    let modules: BTreeSet<Vec<String>> = [
        "agent",
        "agent/engine",
        "agent/engine/rotate",
        "agent/journal",
        "api",
    ]
    .iter()
    .map(|m| m.split('/').map(str::to_owned).collect())
    .collect();
    let v = |s: &str| -> Vec<String> { s.split("::").map(str::to_owned).collect() };
    let base = v("agent::engine::rotate");
    assert_eq!(
        resolve(&base, &v("super::super::journal::Journal"), &modules),
        Some(v("agent::journal"))
    );
    assert_eq!(
        resolve(&base, &v("crate::api::ApiError"), &modules),
        Some(v("api"))
    );
    assert_eq!(
        resolve(&base, &v("super::Engine"), &modules),
        Some(v("agent::engine"))
    );
    assert_eq!(
        resolve(&v("agent"), &v("engine::rotate::x"), &modules),
        Some(v("agent::engine::rotate"))
    );
    assert_eq!(resolve(&base, &v("std::fmt"), &modules), None);
}

/// ARCHITECTURE.md's table of the layers says what [`MAY_IMPORT`] says, row for row.
#[test]
fn architecture_md_states_the_same_layers() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    let cells = |cell: &str| -> Vec<String> {
        cell.split(',')
            .map(|c| c.trim().trim_matches('`').to_owned())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let documented: Vec<(String, Vec<String>)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| {
            let mut parts = l.trim_end_matches('|').splitn(2, '|');
            let module = parts.next()?.trim().trim_end_matches('`').to_owned();
            Some((module, cells(parts.next().unwrap_or(""))))
        })
        .collect();
    let enforced: Vec<(String, Vec<String>)> = MAY_IMPORT
        .iter()
        .map(|(m, deps)| (m.to_string(), deps.iter().map(|d| d.to_string()).collect()))
        .collect();
    assert_eq!(
        documented, enforced,
        "ARCHITECTURE.md's layer table and MAY_IMPORT differ"
    );
}
