//! `--help` text from the definitions: a command's usage, options, environment and exit
//! codes, and the overview of every command.

use super::defs::{COMMANDS, ENVIRONMENT, env_meaning};
use super::opt::{CommandDoc, GLOBAL_OPTIONS, Opt};
use crate::exit::Exit;

/// `-s, --secret <ID>` as the help text shows it.
pub fn option_label(o: &Opt) -> String {
    let mut s = o.long.to_owned();
    if let Some(c) = o.short {
        s = format!("-{c}, {s}");
    }
    if o.takes_value() {
        s.push(' ');
        s.push_str(o.placeholder);
    }
    s
}

fn table(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("  {k:<width$}  {v}\n"))
        .collect()
}

fn option_rows<'a>(options: impl IntoIterator<Item = &'a Opt>) -> Vec<(String, String)> {
    options
        .into_iter()
        .map(|o| (option_label(o), o.full_help()))
        .collect()
}

/// `sikkerkey-agent <command> --help`.
pub fn command_help(c: &CommandDoc) -> String {
    let mut out = format!(
        "Usage: sikkerkey-agent {} {}\n\n{}\n\n{}\n",
        c.name,
        c.usage(),
        c.summary,
        c.about
    );
    if !c.options.is_empty() {
        out.push_str("\nOptions:\n");
        out.push_str(&table(&option_rows(c.options)));
    }
    if !c.env.is_empty() {
        out.push_str("\nEnvironment:\n");
        let rows: Vec<(String, String)> = c
            .env
            .iter()
            .map(|n| ((*n).to_owned(), env_meaning(n).to_owned()))
            .collect();
        out.push_str(&table(&rows));
    }
    out.push_str("\nExit codes:\n");
    let rows: Vec<(String, String)> = c
        .exits
        .iter()
        .map(|(n, m)| (n.to_string(), (*m).to_owned()))
        .collect();
    out.push_str(&table(&rows));
    out.trim_end().to_owned()
}

/// `sikkerkey-agent --help`.
pub fn top_help() -> String {
    let mut out = String::from(
        "sikkerkey-agent: applies SikkerKey password rotations to a local database\n\n\
         Usage: sikkerkey-agent [agent] <COMMAND> [OPTIONS]\n\nCommands:\n",
    );
    let rows: Vec<(String, String)> = COMMANDS
        .iter()
        .map(|c| (c.name.to_owned(), c.summary.to_owned()))
        .collect();
    out.push_str(&table(&rows));
    out.push_str("\nOptions:\n");
    out.push_str(&table(&option_rows(GLOBAL_OPTIONS)));
    out.push_str("\nEnvironment:\n");
    let rows: Vec<(String, String)> = ENVIRONMENT
        .iter()
        .map(|(n, m)| ((*n).to_owned(), (*m).to_owned()))
        .collect();
    out.push_str(&table(&rows));
    out.push_str("\nExit codes (status uses the monitoring-plugin codes instead):\n");
    let rows: Vec<(String, String)> = Exit::ALL
        .iter()
        .map(|e| (e.code().to_string(), e.meaning().to_owned()))
        .collect();
    out.push_str(&table(&rows));
    out.push_str(
        "\nRun `sikkerkey-agent <COMMAND> --help` for a command's options and exit codes.",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::help::defs::find;
    use crate::help::opt::Choices;
    use crate::providers::ProviderKind;
    use crate::providers::tls::TlsMode;

    #[test]
    fn every_command_documents_its_environment_and_exit_codes() {
        for c in COMMANDS {
            let h = command_help(c);
            assert!(h.contains("Exit codes:"), "{}", c.name);
            for n in c.env {
                assert!(!env_meaning(n).is_empty(), "{n} is not in ENVIRONMENT");
                assert!(h.contains(n));
            }
        }
        let top = top_help();
        for c in COMMANDS {
            assert!(top.contains(c.name));
        }
    }

    #[test]
    fn choices_come_from_the_types_they_become() {
        let help = command_help(find("configure").unwrap());
        for k in ProviderKind::ALL {
            assert!(help.contains(k.as_str()), "{k:?}");
        }
        for m in TlsMode::ALL {
            assert!(help.contains(m.as_str()), "{m:?}");
        }
        assert_eq!(Choices::Shells.listed(), "bash, zsh or fish");
        assert_eq!(
            find("configure").unwrap().usage(),
            "--secret <ID> --provider <TYPE> --host <HOST> --admin-user <USER> [OPTIONS]"
        );
    }
}
