//! Command-line parsing: argv in, an [`Invocation`] out. Pure data, no I/O, so tests can
//! feed any argument list. One loop, driven by the definitions in `help/`: an option is
//! accepted exactly when the command's table lists it (or it is global), its value is
//! checked against the table's choices, and a single-valued option given twice is an
//! error naming both values. Accepts the official CLI's spelling: a leading `agent` word
//! is skipped, so `sikkerkey agent start --secret X` works through a symlink named
//! `sikkerkey`.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use lexopt::prelude::*;

use crate::help::{self, CommandDoc, Opt};
use crate::secret::Secret;
use crate::suggest;

pub use crate::help::{OutputFormat, Shell};

/// Where `configure` takes the admin password from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminPassSource {
    /// `--admin-pass` in argv (works, with a warning: it leaks to `ps` and shell history).
    Argv(Secret),
    File(PathBuf),
    /// `SIKKERKEY_ADMIN_PASS`, or a prompt on a terminal.
    EnvOrPrompt,
}

/// `configure`'s flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigureArgs {
    pub secret: String,
    pub provider: String,
    pub host: String,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub admin_user: String,
    pub admin_pass: AdminPassSource,
    pub project_reference: Option<String>,
    pub username_field: Option<String>,
    pub password_field: Option<String>,
    pub poll_interval: Option<u64>,
    pub tls: TlsFlags,
}

/// `configure`'s database TLS flags, as given (`configure` checks them). All `None`: no
/// `tls` object is written and the defaults (or PGSSL* variables) apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFlags {
    /// `--tls MODE`.
    pub mode: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start {
        secret: String,
    },
    /// Boxed: it is much larger than every other command.
    Configure(Box<ConfigureArgs>),
    Test {
        secret: String,
        /// Fetch the server's sync config when there is no local one (takes the agent lock).
        use_server_config: bool,
    },
    Status {
        secret: String,
        /// `Table` (the plugin output) or `Json`.
        format: OutputFormat,
    },
    List {
        format: OutputFormat,
    },
    Stop {
        secret: String,
    },
    Remove {
        secret: String,
        force: bool,
    },
    Install {
        secret: String,
        now: bool,
    },
    Uninstall {
        secret: String,
    },
    /// Help text to print (top-level or one command's).
    Help(String),
    Version,
    /// A completion script for this shell.
    Completions(Shell),
    /// The man page.
    Man,
}

/// A parsed command line: the command and the global options given with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    /// `--log-format`, checked against its choices.
    pub log_format: Option<String>,
}

/// A command line that cannot be run, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// The whole message, ending in where to read more.
    pub message: String,
    /// The command the line was for, once known (`status` exits 3 on a usage error).
    pub command: Option<&'static str>,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

/// The options before the command word: only the global ones.
const TOP: CommandDoc = CommandDoc {
    name: "",
    summary: "",
    about: "",
    options: &[],
    positional: None,
    env: &[],
    exits: &[],
};

fn help_pointer(doc: &CommandDoc) -> String {
    if doc.name.is_empty() {
        "run `sikkerkey-agent --help` for usage".to_owned()
    } else {
        format!("run `sikkerkey-agent {} --help` for its options", doc.name)
    }
}

fn usage(doc: &CommandDoc, what: impl fmt::Display) -> UsageError {
    UsageError {
        message: format!("{what}; {}", help_pointer(doc)),
        command: (!doc.name.is_empty()).then_some(doc.name),
    }
}

/// Values given on the command line, in order.
#[derive(Default)]
struct Given {
    values: Vec<(&'static Opt, OsString)>,
    switches: Vec<&'static Opt>,
}

impl Given {
    fn raw(&self, long: &str) -> Option<&OsString> {
        self.values
            .iter()
            .find(|(o, _)| o.long == long)
            .map(|(_, v)| v)
    }

    fn has(&self, o: &Opt) -> bool {
        self.raw(o.long).is_some() || self.switches.iter().any(|s| s.long == o.long)
    }

    fn switch(&self, long: &str) -> bool {
        self.switches.iter().any(|s| s.long == long)
    }

    fn text(&self, doc: &CommandDoc, long: &str) -> Result<Option<String>, UsageError> {
        self.raw(long)
            .map(|v| {
                v.clone()
                    .into_string()
                    .map_err(|_| usage(doc, format!("the value of {long} is not valid UTF-8")))
            })
            .transpose()
    }

    fn path(&self, long: &str) -> Option<PathBuf> {
        self.raw(long).map(PathBuf::from)
    }
}

/// An argument detached from the parser, so the parser can read its value.
enum Arg {
    Long(String),
    Short(char),
    Value(OsString),
}

impl From<lexopt::Arg<'_>> for Arg {
    fn from(arg: lexopt::Arg<'_>) -> Arg {
        match arg {
            Long(l) => Arg::Long(l.to_owned()),
            Short(c) => Arg::Short(c),
            Value(v) => Arg::Value(v),
        }
    }
}

/// What an option asks the parser to do next.
enum Flow {
    Continue,
    Help,
    Version,
}

/// Reads one option (and its value) for `doc`, checking it against the definitions.
fn option(
    doc: &'static CommandDoc,
    arg: Arg,
    parser: &mut lexopt::Parser,
    given: &mut Given,
) -> Result<Flow, UsageError> {
    let found = match &arg {
        Arg::Long(name) => doc.find_long(name),
        Arg::Short(c) => doc.find_short(*c),
        Arg::Value(v) => {
            return Err(usage(
                doc,
                format!(
                    "unexpected argument \"{}\"",
                    v.to_string_lossy().escape_debug()
                ),
            ));
        }
    };
    let Some(opt) = found else {
        return Err(unknown_option(doc, &arg));
    };
    if opt.long == help::HELP.long {
        return Ok(Flow::Help);
    }
    if opt.long == help::VERSION.long {
        return Ok(Flow::Version);
    }
    if !opt.takes_value() {
        given.switches.push(opt);
        return Ok(Flow::Continue);
    }
    let value = parser.value().map_err(|_| {
        usage(
            doc,
            format!("{} needs a value ({})", opt.long, opt.placeholder),
        )
    })?;
    if let Some(choices) = opt.choices() {
        let names = choices.names();
        let text = value.to_string_lossy();
        if !names.contains(&text.trim()) {
            return Err(usage(
                doc,
                format!(
                    "unknown {} \"{}\" for {}{}; use {}",
                    choices.noun(),
                    text.escape_debug(),
                    opt.long,
                    suggest::did_you_mean(text.trim(), names.iter().copied()),
                    choices.listed()
                ),
            ));
        }
    }
    if let Some(first) = given.raw(opt.long) {
        let what = if opt.sensitive {
            format!("{} is given twice", opt.long)
        } else {
            format!(
                "{} is given twice (\"{}\" and \"{}\"); give it once",
                opt.long,
                first.to_string_lossy().escape_debug(),
                value.to_string_lossy().escape_debug()
            )
        };
        return Err(usage(doc, what));
    }
    given.values.push((opt, value));
    Ok(Flow::Continue)
}

/// An option the command does not take, with the nearest one it does take.
fn unknown_option(doc: &CommandDoc, arg: &Arg) -> UsageError {
    let longs: Vec<&str> = doc
        .options
        .iter()
        .chain(help::GLOBAL_OPTIONS)
        .map(|o| o.long)
        .collect();
    let what = match arg {
        Arg::Long(name) => {
            let typed = format!("--{name}");
            let hint = suggest::did_you_mean(&typed, longs.iter().copied());
            format!("unknown option {typed}{hint}")
        }
        Arg::Short(c) => format!("unknown option -{c}"),
        Arg::Value(v) => format!("unexpected argument \"{}\"", v.to_string_lossy()),
    };
    usage(doc, what)
}

/// lexopt's own errors (a value after a switch, a bad `-` cluster), in our words.
fn lexopt_error(doc: &CommandDoc, e: lexopt::Error) -> UsageError {
    let what = match e {
        lexopt::Error::UnexpectedValue { option, value } => format!(
            "{option} takes no value (got \"{}\")",
            value.to_string_lossy().escape_debug()
        ),
        lexopt::Error::MissingValue {
            option: Some(option),
        } => format!("{option} needs a value"),
        other => other.to_string(),
    };
    usage(doc, what)
}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = lexopt::Parser::from_args(args);
    let mut given = Given::default();
    let mut saw_agent_word = false;
    let command = loop {
        let Some(arg) = parser.next().map_err(|e| lexopt_error(&TOP, e))? else {
            break Command::Help(help::top_help());
        };
        match arg {
            Value(word) => {
                let word = word.to_string_lossy().into_owned();
                if word == "agent" && !saw_agent_word {
                    saw_agent_word = true;
                    continue;
                }
                break parse_command(&word, &mut parser, &mut given)?;
            }
            other => match option(&TOP, other.into(), &mut parser, &mut given)? {
                Flow::Continue => {}
                Flow::Help => break Command::Help(help::top_help()),
                Flow::Version => break Command::Version,
            },
        }
    };
    let log_format = given.text(&TOP, help::LOG_FORMAT.long)?;
    Ok(Invocation {
        command,
        log_format: log_format.map(|f| f.trim().to_owned()),
    })
}

/// `--log-format`'s value wherever it stands, for printing an error about a command line
/// that did not parse in the format asked for.
pub fn log_format_in<I>(args: I) -> Option<String>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let long = help::LOG_FORMAT.long;
    let mut args = args.into_iter().map(Into::into);
    let mut found = None;
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy().into_owned();
        if arg == "--" {
            break;
        }
        if arg == long {
            found = args.next().map(|v| v.to_string_lossy().into_owned());
        } else if let Some(v) = arg.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_owned());
        }
    }
    found
}

fn parse_command(
    word: &str,
    parser: &mut lexopt::Parser,
    given: &mut Given,
) -> Result<Command, UsageError> {
    if word == "help" {
        let next = parser.next().map_err(|e| lexopt_error(&TOP, e))?;
        return Ok(Command::Help(match next {
            Some(Value(cmd)) => match help::find(&cmd.to_string_lossy()) {
                Some(c) => help::command_help(c),
                None => help::top_help(),
            },
            _ => help::top_help(),
        }));
    }
    let Some(doc) = help::find(word) else {
        return Err(UsageError {
            message: format!(
                "unknown command \"{}\"{}; run `sikkerkey-agent --help` to see the commands",
                word.escape_debug(),
                suggest::did_you_mean(word, help::COMMANDS.iter().map(|c| c.name))
            ),
            command: None,
        });
    };
    let mut positional: Option<String> = None;
    while let Some(arg) = parser.next().map_err(|e| lexopt_error(doc, e))? {
        match (arg, doc.positional) {
            (Value(v), Some(p)) if positional.is_none() => {
                let v = v.to_string_lossy().into_owned();
                let names = p.choices.names();
                if !names.contains(&v.as_str()) {
                    return Err(usage(
                        doc,
                        format!(
                            "unknown {} \"{}\"{}; use {}",
                            p.choices.noun(),
                            v.escape_debug(),
                            suggest::did_you_mean(&v, names.iter().copied()),
                            p.choices.listed()
                        ),
                    ));
                }
                positional = Some(v);
            }
            (arg, _) => match option(doc, arg.into(), parser, given)? {
                Flow::Continue => {}
                Flow::Help => return Ok(Command::Help(help::command_help(doc))),
                Flow::Version => return Ok(Command::Version),
            },
        }
    }
    if let Some(missing) = doc.options.iter().find(|o| o.required && !given.has(o)) {
        return Err(usage(
            doc,
            format!("missing required option {}", missing.long),
        ));
    }
    if let (Some(p), None) = (doc.positional, &positional) {
        return Err(usage(
            doc,
            format!("missing the {} ({})", p.name, p.choices.listed()),
        ));
    }
    build(doc, given, positional)
}

/// The command from the values the definitions accepted.
fn build(
    doc: &'static CommandDoc,
    given: &Given,
    positional: Option<String>,
) -> Result<Command, UsageError> {
    let secret = || -> Result<String, UsageError> {
        Ok(given
            .text(doc, help::SECRET.long)?
            .expect("--secret is required, so it was given"))
    };
    let format = || -> Result<OutputFormat, UsageError> {
        let name = given.text(doc, "--output")?;
        Ok(name
            .and_then(|n| OutputFormat::ALL.into_iter().find(|f| f.name() == n.trim()))
            .unwrap_or(OutputFormat::Table))
    };
    Ok(match doc.name {
        "start" => Command::Start { secret: secret()? },
        "test" => Command::Test {
            secret: secret()?,
            use_server_config: given.switch("--use-server-config"),
        },
        "status" => Command::Status {
            secret: secret()?,
            format: format()?,
        },
        "list" => Command::List { format: format()? },
        "stop" => Command::Stop { secret: secret()? },
        "remove" => Command::Remove {
            secret: secret()?,
            force: given.switch("--force"),
        },
        "install" => Command::Install {
            secret: secret()?,
            now: given.switch("--now"),
        },
        "uninstall" => Command::Uninstall { secret: secret()? },
        "configure" => Command::Configure(Box::new(configure(doc, given)?)),
        "completions" => {
            let name = positional.expect("checked above");
            Command::Completions(
                Shell::ALL
                    .into_iter()
                    .find(|s| s.name() == name)
                    .expect("checked against the choices"),
            )
        }
        "man" => Command::Man,
        other => unreachable!("command {other} is defined but not built"),
    })
}

fn configure(doc: &'static CommandDoc, given: &Given) -> Result<ConfigureArgs, UsageError> {
    let text = |long: &str| given.text(doc, long);
    let port = match text("--port")? {
        None => None,
        Some(t) => match t.trim().parse::<u16>() {
            Ok(v) if v != 0 => Some(v),
            _ => {
                return Err(usage(
                    doc,
                    format!(
                        "--port \"{}\" is not a port number (1 to 65535)",
                        t.escape_debug()
                    ),
                ));
            }
        },
    };
    let poll_interval = match text("--poll-interval")? {
        None => None,
        Some(t) => match t.trim().parse::<u64>() {
            Ok(v) if v >= 5 => Some(v),
            _ => {
                return Err(usage(
                    doc,
                    format!(
                        "--poll-interval \"{}\" is not a number of seconds of at least 5",
                        t.escape_debug()
                    ),
                ));
            }
        },
    };
    let admin_pass = match (text("--admin-pass")?, given.path("--admin-pass-file")) {
        (Some(_), Some(_)) => {
            return Err(usage(
                doc,
                "--admin-pass and --admin-pass-file are both given; give one",
            ));
        }
        (Some(p), None) => AdminPassSource::Argv(Secret::new(p)),
        (None, Some(f)) => AdminPassSource::File(f),
        (None, None) => AdminPassSource::EnvOrPrompt,
    };
    let required = |long: &str| -> Result<String, UsageError> {
        Ok(text(long)?.expect("required options were checked"))
    };
    Ok(ConfigureArgs {
        secret: required("--secret")?,
        provider: required("--provider")?.trim().to_owned(),
        host: required("--host")?,
        port,
        database: text("--database")?,
        admin_user: required("--admin-user")?,
        admin_pass,
        project_reference: text("--project-reference")?,
        username_field: text("--username-field")?,
        password_field: text("--password-field")?,
        poll_interval,
        tls: TlsFlags {
            mode: text("--tls")?.map(|m| m.trim().to_owned()),
            ca_file: given.path("--tls-ca-file"),
            cert_file: given.path("--tls-cert-file"),
            key_file: given.path("--tls-key-file"),
        },
    })
}

#[cfg(test)]
mod tests;
