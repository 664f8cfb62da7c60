//! The definitions themselves: every command with its options, environment variables
//! and exit codes, and what each environment variable does. A table and nothing else;
//! `render.rs` turns it into help text, `cli.rs` parses against it.

use super::opt::{Choices, CommandDoc, Kind, Opt, Positional, required, switch, valued};
use crate::exit::Exit;

pub const SECRET: Opt = Opt {
    short: Some('s'),
    ..required(valued(
        "--secret",
        "<ID>",
        Kind::SecretId,
        "The managed secret (e.g. sk_a1b2c3); required",
    ))
};

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
         disable for Redis and MongoDB; verify-full when a CA file is given; verify-ca needs one)",
    ),
    valued(
        "--tls-ca-file",
        "<FILE>",
        Kind::File,
        "The only CA certificate(s) (PEM) the server's certificate may chain to \
         (default for verify-full: the system's trust store)",
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

/// The command named `name`.
pub fn find(name: &str) -> Option<&'static CommandDoc> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// What the environment variable `name` does, from [`ENVIRONMENT`].
pub fn env_meaning(name: &str) -> &'static str {
    ENVIRONMENT
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
        .unwrap_or("")
}
