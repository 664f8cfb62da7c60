//! The one description of the command line: every command with its options, the
//! environment variables it reads and the exit codes it uses. `--help`, the shell
//! completions and the man page (`completions`, `man`; `make completions`) are all
//! rendered from these tables, so they cannot drift apart.

use crate::exit::Exit;

/// One option of a command.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// `--secret`; a short alias (`-s`) goes in `short`.
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's placeholder (`<ID>`), or `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
    /// Fixed values, for completion.
    pub choices: &'static [&'static str],
    /// Completion should offer file names.
    pub file: bool,
}

const fn opt(long: &'static str, value: Option<&'static str>, help: &'static str) -> Opt {
    Opt {
        long,
        short: None,
        value,
        help,
        choices: &[],
        file: false,
    }
}

const SECRET: Opt = Opt {
    short: Some('s'),
    ..opt(
        "--secret",
        Some("<ID>"),
        "The managed secret (e.g. sk_a1b2c3); required",
    )
};

/// One command.
#[derive(Debug, Clone, Copy)]
pub struct CommandDoc {
    pub name: &'static str,
    pub summary: &'static str,
    /// What follows the command name in the usage line.
    pub usage: &'static str,
    pub about: &'static str,
    pub options: &'static [Opt],
    /// Names from [`ENVIRONMENT`].
    pub env: &'static [&'static str],
    /// Exit codes and what they mean for this command.
    pub exits: &'static [(i32, &'static str)],
}

/// Environment variables and what they do.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SIKKERKEY_HOME",
        "root of the identity and agent files (default ~/.sikkerkey)",
    ),
    ("SIKKERKEY_VAULT", "vault id or alias when several exist"),
    (
        "SIKKERKEY_API_URL",
        "overrides the identity's API URL (https, or http to loopback)",
    ),
    (
        "SIKKERKEY_LOG",
        "error, warn, info (default), debug or trace; anything else is an error",
    ),
    (
        "SIKKERKEY_LOG_FORMAT",
        "text, json or journal (default: journal under systemd, else text)",
    ),
    (
        "SIKKERKEY_ADMIN_PASS",
        "the admin password, instead of a prompt",
    ),
    (
        "SIKKERKEY_SERVICE_PLATFORM",
        "systemd, launchd or windows instead of this OS's",
    ),
    (
        "SIKKERKEY_SERVICE_DIR",
        "where service definitions go (default /etc/systemd/system)",
    ),
    (
        "SIKKERKEY_STOP_TIMEOUT_MS",
        "how long stop/remove wait for the agent to exit (default 60000)",
    ),
    (
        "NOTIFY_SOCKET",
        "set by systemd: READY/STATUS/WATCHDOG/STOPPING notifications",
    ),
    (
        "JOURNAL_STREAM",
        "set by systemd: log lines get journald priority prefixes",
    ),
];

const USAGE_ERROR: (i32, &str) = (Exit::Usage.code(), "bad command line");
const HOME_UNUSABLE: (i32, &str) = (Exit::Config.code(), "SIKKERKEY_HOME unusable");

pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "start",
        summary: "Run the agent for a secret in the foreground",
        usage: "--secret <ID>",
        about: "Runs the agent until SIGINT/SIGTERM: polls the secret's sync config, applies pending\n\
                rotations to the database, verifies them and confirms or rejects them. A rotation in\n\
                flight finishes before it exits; a second signal exits at once (the journal makes\n\
                that safe). SIGHUP re-reads the local config agents/<ID>.json.",
        options: &[SECRET],
        env: &[
            "SIKKERKEY_HOME",
            "SIKKERKEY_VAULT",
            "SIKKERKEY_API_URL",
            "SIKKERKEY_LOG",
            "SIKKERKEY_LOG_FORMAT",
            "NOTIFY_SOCKET",
            "JOURNAL_STREAM",
        ],
        exits: &[
            (
                Exit::Ok.code(),
                "stopped by a signal, or the secret was deleted / access revoked",
            ),
            (
                Exit::Failure.code(),
                "another failure (e.g. an agent for this secret already runs here)",
            ),
            USAGE_ERROR,
            (
                Exit::Config.code(),
                "unusable identity, key, local config or provider",
            ),
            (Exit::Locked.code(), "another machine holds the agent lock"),
            (
                Exit::SecretGone.code(),
                "the secret does not exist or this machine has no access",
            ),
            (
                Exit::Database.code(),
                "the database is unreachable or the admin lacks privileges",
            ),
            (
                Exit::WorkerCrashed.code(),
                "the worker crashed or hung; a restart finishes the rotation",
            ),
            (Exit::Interrupted.code(), "a second SIGINT/SIGTERM"),
        ],
    },
    CommandDoc {
        name: "configure",
        summary: "Write local connection details for a secret's agent",
        usage: "--secret <ID> --provider <TYPE> --host <HOST> --admin-user <USER> [OPTIONS]",
        about: "Writes $SIKKERKEY_HOME/agents/<ID>.json (mode 0600); it overrides the server's\n\
                connection details. The admin password comes from --admin-pass-file,\n\
                SIKKERKEY_ADMIN_PASS, or a prompt without echo. A running agent picks the\n\
                new file up on SIGHUP (systemctl reload).",
        options: &[
            SECRET,
            Opt {
                choices: &[
                    "postgresql",
                    "postgresql_supabase",
                    "mysql",
                    "redis",
                    "mongodb",
                ],
                ..opt(
                    "--provider",
                    Some("<TYPE>"),
                    "postgresql, postgresql_supabase, mysql, redis or mongodb; required",
                )
            },
            opt("--host", Some("<HOST>"), "Database host; required"),
            opt(
                "--port",
                Some("<PORT>"),
                "Database port (default: the provider's)",
            ),
            opt("--database", Some("<NAME>"), "Database name"),
            opt(
                "--admin-user",
                Some("<USER>"),
                "Admin user that can change passwords; required",
            ),
            Opt {
                file: true,
                ..opt(
                    "--admin-pass-file",
                    Some("<FILE>"),
                    "Read the admin password from a file",
                )
            },
            opt(
                "--admin-pass",
                Some("<PASS>"),
                "Admin password in argv (leaks to ps and shell history; prefer the file)",
            ),
            opt(
                "--project-reference",
                Some("<REF>"),
                "Supabase project reference",
            ),
            opt(
                "--username-field",
                Some("<FIELD>"),
                "Field of the secret value holding the username (default: username)",
            ),
            opt(
                "--password-field",
                Some("<FIELD>"),
                "Field of the secret value holding the password (default: password)",
            ),
            opt(
                "--poll-interval",
                Some("<SECONDS>"),
                "Poll interval (at least 5)",
            ),
            Opt {
                choices: &["disable", "prefer", "require", "verify-ca", "verify-full"],
                ..opt(
                    "--tls",
                    Some("<MODE>"),
                    "Database TLS: disable, prefer, require, verify-ca or verify-full (default: \
                     prefer for PostgreSQL and MySQL, require for Supabase, disable for Redis and \
                     MongoDB; verify-full when a CA file is given; verify-ca needs one)",
                )
            },
            Opt {
                file: true,
                ..opt(
                    "--tls-ca-file",
                    Some("<FILE>"),
                    "The only CA certificate(s) (PEM) the server's certificate may chain to \
                     (default for verify-full: the system's trust store)",
                )
            },
            Opt {
                file: true,
                ..opt(
                    "--tls-cert-file",
                    Some("<FILE>"),
                    "Client certificate (PEM), for servers that demand one",
                )
            },
            Opt {
                file: true,
                ..opt(
                    "--tls-key-file",
                    Some("<FILE>"),
                    "Its private key (PEM; default: the certificate file)",
                )
            },
        ],
        env: &["SIKKERKEY_HOME", "SIKKERKEY_ADMIN_PASS"],
        exits: &[
            (Exit::Ok.code(), "written"),
            (Exit::Failure.code(), "the file could not be written"),
            (
                Exit::Usage.code(),
                "bad command line, unknown provider, or no password",
            ),
            HOME_UNUSABLE,
            (
                Exit::Interrupted.code(),
                "Ctrl+C at the password prompt (the terminal echo is restored)",
            ),
        ],
    },
    CommandDoc {
        name: "test",
        summary: "Check the database connection and the admin's privileges",
        usage: "--secret <ID> [--use-server-config]",
        about: "Checks the local config, the admin's login and privileges and that the managed user\n\
                exists, one line per check, changing nothing. It never takes the agent lock: without\n\
                a local config it only says what it can check, unless --use-server-config, which\n\
                fetches the server's sync config and so registers this machine as the secret's agent.",
        options: &[
            SECRET,
            opt(
                "--use-server-config",
                None,
                "Without a local config, fetch the server's (registers this machine)",
            ),
        ],
        env: &["SIKKERKEY_HOME", "SIKKERKEY_VAULT", "SIKKERKEY_API_URL"],
        exits: &[
            (Exit::Ok.code(), "every check passed"),
            USAGE_ERROR,
            HOME_UNUSABLE,
            (
                Exit::CheckFailed.code(),
                "a check failed, or nothing could be checked",
            ),
        ],
    },
    CommandDoc {
        name: "status",
        summary: "One agent's state, with Nagios exit codes",
        usage: "--secret <ID>",
        about: "Prints whether the agent runs (PID), its health and last heartbeat, the last\n\
                rotation and its outcome, and whether a rotation journal is present. The first\n\
                line and the exit code follow the Nagios plugin convention.",
        options: &[SECRET],
        env: &["SIKKERKEY_HOME"],
        exits: &[
            (0, "OK: running, last heartbeat healthy and recent"),
            (
                1,
                "WARNING: starting, heartbeat not delivered, or last rotation rejected",
            ),
            (
                2,
                "CRITICAL: not running, unhealthy, or heartbeat stale (also a bad command line)",
            ),
            (
                3,
                "UNKNOWN: no agent files for this secret, or they cannot be read",
            ),
        ],
    },
    CommandDoc {
        name: "list",
        summary: "Show the agents configured or running on this machine",
        usage: "[-o table|json|prometheus]",
        about: "Lists every agent under SIKKERKEY_HOME; as root also the agents of other users\n\
                installed as systemd services (found through the units' SIKKERKEY_HOME).\n\
                `-o prometheus` writes OpenMetrics text for node_exporter's textfile collector.",
        options: &[Opt {
            short: Some('o'),
            choices: &["table", "json", "prometheus"],
            ..opt(
                "--output",
                Some("<FORMAT>"),
                "table (default), json or prometheus",
            )
        }],
        env: &["SIKKERKEY_HOME", "SIKKERKEY_SERVICE_DIR"],
        exits: &[
            (Exit::Ok.code(), "listed (also when there is nothing)"),
            USAGE_ERROR,
            HOME_UNUSABLE,
        ],
    },
    CommandDoc {
        name: "stop",
        summary: "Stop the running agent for a secret",
        usage: "--secret <ID>",
        about: "Sends SIGTERM to the running agent and waits for it to exit (a rotation in flight\n\
                finishes first). Nothing running is not an error: it says so and exits 0.",
        options: &[SECRET],
        env: &["SIKKERKEY_HOME", "SIKKERKEY_STOP_TIMEOUT_MS"],
        exits: &[
            (Exit::Ok.code(), "stopped, or was not running"),
            (
                Exit::Failure.code(),
                "could not stop it (another user's process, or still running)",
            ),
            USAGE_ERROR,
            HOME_UNUSABLE,
        ],
    },
    CommandDoc {
        name: "remove",
        summary: "Delete a secret's local agent files",
        usage: "--secret <ID> [--force]",
        about: "Deletes the local config, PID and state files of a secret's agent. Refuses while the\n\
                agent runs unless --force (which stops it and also deletes an unfinished rotation's\n\
                journal). Nothing to delete is not an error: it says so and exits 0.",
        options: &[
            SECRET,
            opt(
                "--force",
                None,
                "Stop a running agent first; delete the journal too",
            ),
        ],
        env: &["SIKKERKEY_HOME", "SIKKERKEY_STOP_TIMEOUT_MS"],
        exits: &[
            (Exit::Ok.code(), "removed, or nothing to remove"),
            (
                Exit::Failure.code(),
                "the agent runs (without --force), or a file could not be deleted",
            ),
            USAGE_ERROR,
            HOME_UNUSABLE,
        ],
    },
    CommandDoc {
        name: "install",
        summary: "Generate (and with --now, install and start) a system service",
        usage: "--secret <ID> [--now]",
        about: "Prints a hardened systemd unit (Type=notify, watchdog, reload), launchd plist or NSSM\n\
                commands for the agent and where to put it; with --now, writes it and starts it.",
        options: &[
            SECRET,
            opt("--now", None, "Write the definition and start the service"),
        ],
        env: &[
            "SIKKERKEY_HOME",
            "SIKKERKEY_VAULT",
            "SIKKERKEY_SERVICE_PLATFORM",
            "SIKKERKEY_SERVICE_DIR",
        ],
        exits: &[
            (Exit::Ok.code(), "printed or installed"),
            (Exit::Failure.code(), "a file or the service manager failed"),
            USAGE_ERROR,
        ],
    },
    CommandDoc {
        name: "uninstall",
        summary: "Stop, disable and delete the system service",
        usage: "--secret <ID>",
        about: "Stops and disables the system service and deletes its definition; local agent files\n\
                stay. No service installed is not an error: it says so and exits 0.",
        options: &[SECRET],
        env: &[
            "SIKKERKEY_HOME",
            "SIKKERKEY_SERVICE_PLATFORM",
            "SIKKERKEY_SERVICE_DIR",
        ],
        exits: &[
            (Exit::Ok.code(), "removed, or nothing was installed"),
            (Exit::Failure.code(), "the service manager failed"),
            USAGE_ERROR,
        ],
    },
    CommandDoc {
        name: "completions",
        summary: "Print a shell completion script (bash, zsh or fish)",
        usage: "<bash|zsh|fish>",
        about: "Prints the completion script for the shell, e.g.\n\
                sikkerkey-agent completions bash > /etc/bash_completion.d/sikkerkey-agent",
        options: &[],
        env: &[],
        exits: &[(Exit::Ok.code(), "printed"), USAGE_ERROR],
    },
    CommandDoc {
        name: "man",
        summary: "Print the man page (roff)",
        usage: "",
        about: "Prints sikkerkey-agent(1) in roff, e.g. sikkerkey-agent man | man -l -",
        options: &[],
        env: &[],
        exits: &[(Exit::Ok.code(), "printed")],
    },
];

/// Options every command takes.
pub const GLOBAL_OPTIONS: &[Opt] = &[
    Opt {
        short: Some('h'),
        ..opt("--help", None, "Print help (also after a command)")
    },
    Opt {
        short: Some('V'),
        ..opt(
            "--version",
            None,
            "Print the version and the providers compiled in",
        )
    },
    Opt {
        choices: &["text", "json", "journal"],
        ..opt(
            "--log-format",
            Some("<FORMAT>"),
            "text, json or journal (as SIKKERKEY_LOG_FORMAT)",
        )
    },
];

pub fn find(name: &str) -> Option<&'static CommandDoc> {
    COMMANDS.iter().find(|c| c.name == name)
}

fn env_meaning(name: &str) -> &'static str {
    ENVIRONMENT
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
        .unwrap_or("")
}

/// `--secret, -s <ID>` as the help text shows it.
pub fn option_label(o: &Opt) -> String {
    let mut s = o.long.to_owned();
    if let Some(c) = o.short {
        s = format!("-{c}, {s}");
    }
    if let Some(v) = o.value {
        s.push(' ');
        s.push_str(v);
    }
    s
}

fn table(rows: &[(String, &str)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("  {k:<width$}  {v}\n"))
        .collect()
}

/// `sikkerkey-agent <command> --help`.
pub fn command_help(c: &CommandDoc) -> String {
    let mut out = format!(
        "Usage: sikkerkey-agent {} {}\n\n{}\n\n{}\n",
        c.name, c.usage, c.summary, c.about
    );
    if !c.options.is_empty() {
        out.push_str("\nOptions:\n");
        let rows: Vec<(String, &str)> = c
            .options
            .iter()
            .map(|o| (option_label(o), o.help))
            .collect();
        out.push_str(&table(&rows));
    }
    if !c.env.is_empty() {
        out.push_str("\nEnvironment:\n");
        let rows: Vec<(String, &str)> = c
            .env
            .iter()
            .map(|n| ((*n).to_owned(), env_meaning(n)))
            .collect();
        out.push_str(&table(&rows));
    }
    out.push_str("\nExit codes:\n");
    let rows: Vec<(String, &str)> = c.exits.iter().map(|(n, m)| (n.to_string(), *m)).collect();
    out.push_str(&table(&rows));
    out.trim_end().to_owned()
}

/// `sikkerkey-agent --help`.
pub fn top_help() -> String {
    let mut out = String::from(
        "sikkerkey-agent: applies SikkerKey password rotations to a local database\n\n\
         Usage: sikkerkey-agent [agent] <COMMAND> [OPTIONS]\n\nCommands:\n",
    );
    let rows: Vec<(String, &str)> = COMMANDS
        .iter()
        .map(|c| (c.name.to_owned(), c.summary))
        .collect();
    out.push_str(&table(&rows));
    out.push_str("\nOptions:\n");
    let rows: Vec<(String, &str)> = GLOBAL_OPTIONS
        .iter()
        .map(|o| (option_label(o), o.help))
        .collect();
    out.push_str(&table(&rows));
    out.push_str("\nEnvironment:\n");
    let rows: Vec<(String, &str)> = ENVIRONMENT
        .iter()
        .map(|(n, m)| ((*n).to_owned(), *m))
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
}
