//! A tiny template filler for the files under `service-templates/`, so the service
//! definitions read as what they are instead of as Rust string building.
//!
//! Placeholders:
//! - `{{name}}`: one value.
//! - `{{name*}}`: a list; in text its items joined by single spaces, in a command line
//!   each item becomes its own argument.
//! - `{{name[]}}`: a list; the whole line is repeated once per item (all `[]` lists in a
//!   line are walked together, so they must have the same length).
//!
//! Escaping is the caller's job (each format quotes differently). The templates are
//! compiled in and every one is rendered by the tests, so a placeholder without a value
//! is a bug in this crate and panics with its name.

use std::collections::BTreeMap;

/// A value for a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    One(String),
    List(Vec<String>),
}

/// The values to fill a template with.
#[derive(Debug, Clone, Default)]
pub struct Vars(BTreeMap<&'static str, Value>);

impl Vars {
    pub fn new() -> Self {
        Vars::default()
    }

    pub fn one(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.insert(name, Value::One(value.into()));
        self
    }

    pub fn list(mut self, name: &'static str, items: Vec<String>) -> Self {
        self.0.insert(name, Value::List(items));
        self
    }

    fn scalar(&self, name: &str) -> &str {
        match self.0.get(name) {
            Some(Value::One(v)) => v,
            _ => panic!("service template bug: no single value for {{{{{name}}}}}"),
        }
    }

    fn items(&self, name: &str) -> &[String] {
        match self.0.get(name) {
            Some(Value::List(v)) => v,
            _ => panic!("service template bug: no list value for {{{{{name}}}}}"),
        }
    }
}

/// One placeholder as written in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot<'t> {
    One(&'t str),
    Spread(&'t str),
    Each(&'t str),
}

/// Splits a line into literal text and placeholders.
fn parse_line(line: &str) -> Vec<Result<&str, Slot<'_>>> {
    let mut parts = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .map(|e| start + e)
            .unwrap_or_else(|| panic!("service template bug: unclosed {{{{ in {line:?}"));
        if start > 0 {
            parts.push(Ok(&rest[..start]));
        }
        let inner = &rest[start + 2..end];
        let slot = if let Some(n) = inner.strip_suffix("[]") {
            Slot::Each(n)
        } else if let Some(n) = inner.strip_suffix('*') {
            Slot::Spread(n)
        } else {
            Slot::One(inner)
        };
        parts.push(Err(slot));
        rest = &rest[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Ok(rest));
    }
    parts
}

/// How often a line is emitted: once, or once per item of its `[]` lists.
fn repetitions(parts: &[Result<&str, Slot<'_>>], vars: &Vars, line: &str) -> Option<usize> {
    let mut count = None;
    for part in parts {
        if let Err(Slot::Each(name)) = part {
            let n = vars.items(name).len();
            match count {
                None => count = Some(n),
                Some(c) if c != n => {
                    panic!("service template bug: lists of different lengths in {line:?}")
                }
                Some(_) => {}
            }
        }
    }
    count
}

/// Fills a text template (a unit file, a plist).
pub fn fill_text(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    for line in template.split_inclusive('\n') {
        let parts = parse_line(line);
        let times = repetitions(&parts, vars, line);
        for i in 0..times.unwrap_or(1) {
            for part in &parts {
                match part {
                    Ok(text) => out.push_str(text),
                    Err(Slot::One(name)) => out.push_str(vars.scalar(name)),
                    Err(Slot::Spread(name)) => out.push_str(&vars.items(name).join(" ")),
                    Err(Slot::Each(name)) => out.push_str(&vars.items(name)[i]),
                }
            }
        }
    }
    out
}

/// One line of a command template after filling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// A comment or blank line, kept for the printed script.
    Note(String),
    /// A program and its arguments, unquoted.
    Run(Vec<String>),
}

/// Fills a command template: one command per line, arguments separated by spaces, each
/// argument either literal or exactly one placeholder. Lines starting with `REM` and blank
/// lines are notes. The result keeps arguments apart, so they can be run without a shell
/// and quoted for printing by the caller.
pub fn fill_commands(template: &str, vars: &Vars) -> Vec<CommandLine> {
    let mut out = Vec::new();
    for line in template.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("REM") {
            out.push(CommandLine::Note(fill_text(line, vars)));
            continue;
        }
        let tokens: Vec<Vec<Result<&str, Slot<'_>>>> =
            trimmed.split_whitespace().map(parse_line).collect();
        for token in &tokens {
            assert!(
                token.len() == 1,
                "service template bug: a command argument must be literal or exactly one placeholder, in {line:?}"
            );
        }
        let flat: Vec<Result<&str, Slot<'_>>> = tokens.iter().map(|t| t[0]).collect();
        let times = repetitions(&flat, vars, line);
        for i in 0..times.unwrap_or(1) {
            let mut argv = Vec::new();
            for part in &flat {
                match part {
                    Ok(text) => argv.push((*text).to_owned()),
                    Err(Slot::One(name)) => argv.push(vars.scalar(name).to_owned()),
                    Err(Slot::Spread(name)) => argv.extend(vars.items(name).iter().cloned()),
                    Err(Slot::Each(name)) => argv.push(vars.items(name)[i].clone()),
                }
            }
            out.push(CommandLine::Run(argv));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::new()
            .one("a", "A")
            .list("xs", vec!["1".into(), "2".into()])
            .list("ys", vec!["p q".into(), "r".into()])
    }

    #[test]
    fn text_fills_scalars_spreads_and_repeats_lines() {
        let t = "x={{a}}\nall={{xs*}}\n<{{xs[]}}|{{ys[]}}>\nend\n";
        assert_eq!(fill_text(t, &vars()), "x=A\nall=1 2\n<1|p q>\n<2|r>\nend\n");
    }

    #[test]
    fn an_empty_list_drops_its_line() {
        let v = Vars::new().list("xs", vec![]);
        assert_eq!(fill_text("a\nE={{xs[]}}\nb\n", &v), "a\nb\n");
    }

    #[test]
    fn commands_keep_arguments_apart() {
        let t = "REM note {{a}}\n\ncmd {{a}} {{ys*}} tail\nrep {{xs[]}} {{a}}\n";
        assert_eq!(
            fill_commands(t, &vars()),
            vec![
                CommandLine::Note("REM note A".into()),
                CommandLine::Note(String::new()),
                CommandLine::Run(vec![
                    "cmd".into(),
                    "A".into(),
                    "p q".into(),
                    "r".into(),
                    "tail".into()
                ]),
                CommandLine::Run(vec!["rep".into(), "1".into(), "A".into()]),
                CommandLine::Run(vec!["rep".into(), "2".into(), "A".into()]),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "{{missing}}")]
    fn a_placeholder_without_a_value_is_a_bug() {
        fill_text("{{missing}}", &Vars::new());
    }

    #[test]
    #[should_panic(expected = "exactly one placeholder")]
    fn a_command_argument_mixing_text_and_a_placeholder_is_a_bug() {
        fill_commands("cmd pre{{a}}", &vars());
    }
}
