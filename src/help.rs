//! The one definition of the command line: every command with its options, the
//! environment variables the program reads and the exit codes it uses. The parser
//! (`cli.rs`) accepts exactly the options listed here and checks their values against the
//! choices listed here; `--help`, the shell completions and the man page (`completions`,
//! `man`; `make completions`) are rendered from the same tables. So an option, a choice or
//! a variable cannot be known to one of them and missing from another.

use crate::exit::Exit;
use crate::logging::LogFormat;
use crate::providers::ProviderKind;
use crate::providers::tls::TlsMode;

/// Output format of `list` and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    /// Prometheus text format 0.0.4, for node_exporter's textfile collector.
    Prometheus,
    /// OpenMetrics 1.0 text, for scrapers that negotiate it.
    OpenMetrics,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 4] = [
        OutputFormat::Table,
        OutputFormat::Json,
        OutputFormat::Prometheus,
        OutputFormat::OpenMetrics,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Json => "json",
            OutputFormat::Prometheus => "prometheus",
            OutputFormat::OpenMetrics => "openmetrics",
        }
    }
}

/// A shell `completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    pub const ALL: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }
}

/// A fixed set of values an option (or argument) accepts, each drawn from the type that
/// the value becomes, so a new provider or TLS mode reaches parsing, help and completion
/// at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choices {
    Providers,
    TlsModes,
    LogFormats,
    /// `list -o`: every [`OutputFormat`].
    ListFormats,
    /// `status -o`: a table or JSON.
    StatusFormats,
    Shells,
}

impl Choices {
    pub fn names(self) -> Vec<&'static str> {
        match self {
            Choices::Providers => ProviderKind::ALL.iter().map(|k| k.as_str()).collect(),
            Choices::TlsModes => TlsMode::ALL.iter().map(|m| m.as_str()).collect(),
            Choices::LogFormats => LogFormat::ALL.iter().map(|f| f.name()).collect(),
            Choices::ListFormats => OutputFormat::ALL.iter().map(|f| f.name()).collect(),
            Choices::StatusFormats => [OutputFormat::Table, OutputFormat::Json]
                .iter()
                .map(|f| f.name())
                .collect(),
            Choices::Shells => Shell::ALL.iter().map(|s| s.name()).collect(),
        }
    }

    /// What one of the values is called in a message.
    pub fn noun(self) -> &'static str {
        match self {
            Choices::Providers => "provider type",
            Choices::TlsModes => "TLS mode",
            Choices::LogFormats => "log format",
            Choices::ListFormats | Choices::StatusFormats => "output format",
            Choices::Shells => "shell",
        }
    }

    /// "a, b or c".
    pub fn listed(self) -> String {
        let names = self.names();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }
}

/// What an option's value is, for checking and for completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A switch: no value.
    Switch,
    Text,
    /// A file name (completion offers files).
    File,
    /// A secret id (completion offers the ids found under `agents/`).
    SecretId,
    /// One of a fixed set; anything else is a usage error with a suggestion.
    OneOf(Choices),
}

/// One option of a command.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// `--secret`.
    pub long: &'static str,
    /// A short alias (`-s`).
    pub short: Option<char>,
    /// The value's placeholder (`<ID>`); empty for a switch.
    pub placeholder: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// The command cannot run without it.
    pub required: bool,
    /// The value is a password: never repeated back in an error message.
    pub sensitive: bool,
}

impl Opt {
    pub fn takes_value(&self) -> bool {
        self.kind != Kind::Switch
    }

    pub fn choices(&self) -> Option<Choices> {
        match self.kind {
            Kind::OneOf(c) => Some(c),
            _ => None,
        }
    }

    /// The help text with the choices, as shown by `--help` and the man page.
    pub fn full_help(&self) -> String {
        match self.choices() {
            Some(c) => format!("{} ({})", self.help, c.listed()),
            None => self.help.to_owned(),
        }
    }
}

const fn switch(long: &'static str, help: &'static str) -> Opt {
    Opt {
        long,
        short: None,
        placeholder: "",
        kind: Kind::Switch,
        help,
        required: false,
        sensitive: false,
    }
}

const fn valued(
    long: &'static str,
    placeholder: &'static str,
    kind: Kind,
    help: &'static str,
) -> Opt {
    Opt {
        long,
        short: None,
        placeholder,
        kind,
        help,
        required: false,
        sensitive: false,
    }
}

const fn required(o: Opt) -> Opt {
    Opt {
        required: true,
        ..o
    }
}

pub const SECRET: Opt = Opt {
    short: Some('s'),
    ..required(valued(
        "--secret",
        "<ID>",
        Kind::SecretId,
        "The managed secret (e.g. sk_a1b2c3); required",
    ))
};

pub const HELP: Opt = Opt {
    short: Some('h'),
    ..switch("--help", "Print help (also after a command)")
};

pub const VERSION: Opt = Opt {
    short: Some('V'),
    ..switch(
        "--version",
        "Print the version and the providers compiled in",
    )
};

pub const LOG_FORMAT: Opt = valued(
    "--log-format",
    "<FORMAT>",
    Kind::OneOf(Choices::LogFormats),
    "Format of the lines on stderr; overrides SIKKERKEY_LOG_FORMAT",
);

/// Options every command takes, before or after the command word.
pub const GLOBAL_OPTIONS: &[Opt] = &[HELP, VERSION, LOG_FORMAT];

/// A positional argument.
#[derive(Debug, Clone, Copy)]
pub struct Positional {
    pub name: &'static str,
    pub choices: Choices,
}

/// One command.
#[derive(Debug, Clone, Copy)]
pub struct CommandDoc {
    pub name: &'static str,
    pub summary: &'static str,
    pub about: &'static str,
    pub options: &'static [Opt],
    /// The one positional argument the command takes, if any.
    pub positional: Option<Positional>,
    /// Names from [`ENVIRONMENT`].
    pub env: &'static [&'static str],
    /// Exit codes and what they mean for this command.
    pub exits: &'static [(i32, &'static str)],
}

impl CommandDoc {
    /// What follows the command name in the usage line, from the options.
    pub fn usage(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.positional {
            parts.push(format!("<{}>", p.choices.names().join("|")));
        }
        let mut optional = false;
        for o in self.options {
            if !o.required {
                optional = true;
                continue;
            }
            parts.push(format!("{} {}", o.long, o.placeholder));
        }
        if optional {
            parts.push("[OPTIONS]".into());
        }
        parts.join(" ")
    }

    /// This command's option with the long name `--{name}` or the short `-{c}`, or a
    /// global one.
    pub fn find_long(&self, name: &str) -> Option<&'static Opt> {
        self.options
            .iter()
            .chain(GLOBAL_OPTIONS)
            .find(|o| o.long.strip_prefix("--") == Some(name))
    }

    pub fn find_short(&self, c: char) -> Option<&'static Opt> {
        self.options
            .iter()
            .chain(GLOBAL_OPTIONS)
            .find(|o| o.short == Some(c))
    }
}

/// Environment variables and what they do. `settings.rs` reads every `SIKKERKEY_*` one;
/// a test holds this list, README.md and settings.rs together.
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
        "SIKKERKEY_CA_FILE",
        "PEM file of CAs trusted for the control plane in addition to the system's",
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
        "SIKKERKEY_DRIFT_CHECK_SECONDS",
        "how often an idle agent logs in with the live value to catch drift (default 60; 0: off)",
    ),
    (
        "SIKKERKEY_DRIFT_REPAIR",
        "on (default): repair a drift; off: only report it",
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
        "PGSSLMODE",
        "PostgreSQL TLS as libpq reads it (also PGSSLROOTCERT, PGSSLCERT, PGSSLKEY), when the local config has no tls object",
    ),
    (
        "SSL_CERT_FILE",
        "the CAs the control plane is checked against instead of the system store (also SSL_CERT_DIR)",
    ),
    (
        "HTTPS_PROXY",
        "proxy for control-plane calls (also ALL_PROXY, HTTP_PROXY, NO_PROXY, or lower case)",
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

const CONFIGURE_OPTIONS: &[Opt] = &[
    SECRET,
    required(valued(
        "--provider",
        "<TYPE>",
        Kind::OneOf(Choices::Providers),
        "Database type; required",
    )),
    required(valued(
        "--host",
        "<HOST>",
        Kind::Text,
        "Database host; required",
    )),
    valued(
        "--port",
        "<PORT>",
        Kind::Text,
        "Database port (default: the provider's)",
    ),
    valued("--database", "<NAME>", Kind::Text, "Database name"),
    required(valued(
        "--admin-user",
        "<USER>",
        Kind::Text,
        "Admin user that can change passwords; required",
    )),
    valued(
        "--admin-pass-file",
        "<FILE>",
        Kind::File,
        "Read the admin password from a file",
    ),
    Opt {
        sensitive: true,
        ..valued(
            "--admin-pass",
            "<PASS>",
            Kind::Text,
            "Admin password in argv (leaks to ps and shell history; prefer the file)",
        )
    },
    valued(
        "--project-reference",
        "<REF>",
        Kind::Text,
        "Supabase project reference",
    ),
    valued(
        "--username-field",
        "<FIELD>",
        Kind::Text,
        "Field of the secret value holding the username (default: username)",
    ),
    valued(
        "--password-field",
        "<FIELD>",
        Kind::Text,
        "Field of the secret value holding the password (default: password)",
    ),
    valued(
        "--poll-interval",
        "<SECONDS>",
        Kind::Text,
        "Poll interval (at least 5)",
    ),
    valued(
        "--tls",
        "<MODE>",
        Kind::OneOf(Choices::TlsModes),
        "Database TLS (default: prefer for PostgreSQL and MySQL, require for Supabase, \
         disable for Redis and MongoDB; verify-full when a CA file is given)",
    ),
    valued(
        "--tls-ca-file",
        "<FILE>",
        Kind::File,
        "CA certificate(s) (PEM) the server's certificate must chain to",
    ),
    valued(
        "--tls-cert-file",
        "<FILE>",
        Kind::File,
        "Client certificate (PEM), for servers that demand one",
    ),
    valued(
        "--tls-key-file",
        "<FILE>",
        Kind::File,
        "Its private key (PEM; default: the certificate file)",
    ),
];

pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "start",
        summary: "Run the agent for a secret in the foreground",
        about: "Runs the agent until SIGINT/SIGTERM: polls the secret's sync config, applies pending\n\
                rotations to the database, verifies them and confirms or rejects them. A rotation in\n\
                flight finishes before it exits; a second signal exits at once (the journal makes\n\
                that safe). SIGHUP re-reads the local config agents/<ID>.json.",
        options: &[SECRET],
        positional: None,
        env: &[
            "SIKKERKEY_HOME",
            "SIKKERKEY_VAULT",
            "SIKKERKEY_API_URL",
            "SIKKERKEY_CA_FILE",
            "SIKKERKEY_LOG",
            "SIKKERKEY_LOG_FORMAT",
            "SIKKERKEY_DRIFT_CHECK_SECONDS",
            "SIKKERKEY_DRIFT_REPAIR",
            "PGSSLMODE",
            "SSL_CERT_FILE",
            "HTTPS_PROXY",
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
        about: "Writes $SIKKERKEY_HOME/agents/<ID>.json (mode 0600); it overrides the server's\n\
                connection details. The admin password comes from --admin-pass-file,\n\
                SIKKERKEY_ADMIN_PASS, or a prompt without echo. A running agent picks the\n\
                new file up on SIGHUP (systemctl reload).",
        options: CONFIGURE_OPTIONS,
        positional: None,
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
        about: "Checks the local config, the admin's login and privileges and that the managed user\n\
                exists, one line per check, changing nothing. It never takes the agent lock: without\n\
                a local config it only says what it can check, unless --use-server-config, which\n\
                fetches the server's sync config and so registers this machine as the secret's agent.",
        options: &[
            SECRET,
            switch(
                "--use-server-config",
                "Without a local config, fetch the server's (registers this machine)",
            ),
        ],
        positional: None,
        env: &[
            "SIKKERKEY_HOME",
            "SIKKERKEY_VAULT",
            "SIKKERKEY_API_URL",
            "SIKKERKEY_CA_FILE",
            "PGSSLMODE",
        ],
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
        summary: "One agent's state, as a monitoring plugin",
        about: "Prints whether the agent runs (PID), its health and last heartbeat, the last\n\
                rotation and its outcome, and whether a rotation journal is present. The first\n\
                line and the exit code follow the monitoring-plugin convention (Nagios, Icinga,\n\
                Sensu): `SIKKERKEY AGENT OK - ... | last_heartbeat_age=12s;...`.",
        options: &[
            SECRET,
            Opt {
                short: Some('o'),
                ..valued(
                    "--output",
                    "<FORMAT>",
                    Kind::OneOf(Choices::StatusFormats),
                    "Output format (default: table, the plugin output)",
                )
            },
        ],
        positional: None,
        env: &["SIKKERKEY_HOME"],
        exits: &[
            (0, "OK: running, last heartbeat healthy and recent"),
            (
                1,
                "WARNING: starting, heartbeat not delivered, or last rotation rejected",
            ),
            (2, "CRITICAL: not running, unhealthy, or heartbeat stale"),
            (
                3,
                "UNKNOWN: no agent files for this secret, they cannot be read, or a bad command line",
            ),
        ],
    },
    CommandDoc {
        name: "list",
        summary: "Show the agents configured or running on this machine",
        about: "Lists every agent under SIKKERKEY_HOME; as root also the agents of other users\n\
                installed as systemd services (found through the units' SIKKERKEY_HOME).\n\
                `-o prometheus` writes the Prometheus text format for node_exporter's textfile\n\
                collector, `-o openmetrics` the OpenMetrics text format.",
        options: &[Opt {
            short: Some('o'),
            ..valued(
                "--output",
                "<FORMAT>",
                Kind::OneOf(Choices::ListFormats),
                "Output format (default: table; prometheus for node_exporter's textfile collector)",
            )
        }],
        positional: None,
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
        about: "Sends SIGTERM to the running agent and waits for it to exit (a rotation in flight\n\
                finishes first). Nothing running is not an error: it says so and exits 0.",
        options: &[SECRET],
        positional: None,
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
        about: "Deletes the local config, PID and state files of a secret's agent. Refuses while the\n\
                agent runs unless --force (which stops it and also deletes an unfinished rotation's\n\
                journal). Nothing to delete is not an error: it says so and exits 0.",
        options: &[
            SECRET,
            switch(
                "--force",
                "Stop a running agent first; delete the journal too",
            ),
        ],
        positional: None,
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
        about: "Prints a hardened systemd unit (Type=notify, watchdog, reload), launchd plist or NSSM\n\
                commands for the agent and where to put it; with --now, writes it and starts it.\n\
                All or nothing: when the service manager fails, the definition written is\n\
                removed again. The proxy, CA and PGSSL* variables set now go into the service.",
        options: &[
            SECRET,
            switch("--now", "Write the definition and start the service"),
        ],
        positional: None,
        env: &[
            "SIKKERKEY_HOME",
            "SIKKERKEY_VAULT",
            "SIKKERKEY_CA_FILE",
            "SIKKERKEY_SERVICE_PLATFORM",
            "SIKKERKEY_SERVICE_DIR",
            "PGSSLMODE",
            "SSL_CERT_FILE",
            "HTTPS_PROXY",
        ],
        exits: &[
            (Exit::Ok.code(), "printed or installed"),
            (
                Exit::Failure.code(),
                "a file or the service manager failed (nothing is left installed)",
            ),
            USAGE_ERROR,
        ],
    },
    CommandDoc {
        name: "uninstall",
        summary: "Stop, disable and delete the system service",
        about: "Stops and disables the system service and deletes its definition; local agent files\n\
                stay. The definition is deleted even when the service manager cannot be reached;\n\
                what it could not do is listed. No service installed is not an error: it says so\n\
                and exits 0.",
        options: &[SECRET],
        positional: None,
        env: &[
            "SIKKERKEY_HOME",
            "SIKKERKEY_SERVICE_PLATFORM",
            "SIKKERKEY_SERVICE_DIR",
        ],
        exits: &[
            (Exit::Ok.code(), "removed, or nothing was installed"),
            (
                Exit::Failure.code(),
                "the definition could not be deleted, or the service manager failed",
            ),
            USAGE_ERROR,
        ],
    },
    CommandDoc {
        name: "completions",
        summary: "Print a shell completion script (bash, zsh or fish)",
        about: "Prints the completion script for the shell, e.g.\n\
                sikkerkey-agent completions bash > /etc/bash_completion.d/sikkerkey-agent",
        options: &[],
        positional: Some(Positional {
            name: "shell",
            choices: Choices::Shells,
        }),
        env: &[],
        exits: &[(Exit::Ok.code(), "printed"), USAGE_ERROR],
    },
    CommandDoc {
        name: "man",
        summary: "Print the man page (roff)",
        about: "Prints sikkerkey-agent(1) in roff, e.g. sikkerkey-agent man | man -l -",
        options: &[],
        positional: None,
        env: &[],
        exits: &[(Exit::Ok.code(), "printed"), USAGE_ERROR],
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
