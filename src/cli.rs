//! Command-line parsing: argv in, a [`Command`] out. Pure data, no I/O, so tests can feed
//! any argument list. Accepts the official CLI's spelling: a leading `agent` word is
//! skipped, so `sikkerkey agent start --secret X` works through a symlink named `sikkerkey`.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

use crate::help;
use crate::secret::Secret;
use crate::suggest;

/// Output format of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    /// OpenMetrics text, for node_exporter's textfile collector.
    Prometheus,
}

/// A shell `completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

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

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, lexopt::Error>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = lexopt::Parser::from_args(args);
    let mut saw_agent_word = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(help::top_help())),
            Short('V') | Long("version") => return Ok(Command::Version),
            Value(word) => {
                let word = word.string()?;
                if word == "agent" && !saw_agent_word {
                    saw_agent_word = true;
                    continue;
                }
                return parse_command(&word, &mut parser);
            }
            _ => return Err(unexpected(arg, None)),
        }
    }
    Ok(Command::Help(help::top_help()))
}

fn parse_command(word: &str, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    match word {
        "start" => parse_secret_command(parser, "start", "", |secret, _| Command::Start { secret }),
        "test" => parse_secret_command(parser, "test", "use-server-config", |secret, u| {
            Command::Test {
                secret,
                use_server_config: u,
            }
        }),
        "status" => {
            parse_secret_command(parser, "status", "", |secret, _| Command::Status { secret })
        }
        "stop" => parse_secret_command(parser, "stop", "", |secret, _| Command::Stop { secret }),
        "uninstall" => parse_secret_command(parser, "uninstall", "", |secret, _| {
            Command::Uninstall { secret }
        }),
        "remove" => parse_secret_command(parser, "remove", "force", |secret, force| {
            Command::Remove { secret, force }
        }),
        "install" => parse_secret_command(parser, "install", "now", |secret, now| {
            Command::Install { secret, now }
        }),
        "configure" => parse_configure(parser),
        "list" => parse_list(parser),
        "completions" => parse_completions(parser),
        "man" => match parser.next()? {
            None => Ok(Command::Man),
            Some(Short('h') | Long("help")) => Ok(command_help("man")),
            Some(arg) => Err(unexpected(arg, Some("man"))),
        },
        "help" => Ok(match parser.next()? {
            Some(Value(cmd)) => match help::find(&cmd.string()?) {
                Some(c) => Command::Help(help::command_help(c)),
                None => Command::Help(help::top_help()),
            },
            _ => Command::Help(help::top_help()),
        }),
        other => Err(lexopt::Error::Custom(
            format!(
                "unknown command \"{other}\"{}; run `sikkerkey-agent --help` to see the commands",
                suggest::did_you_mean(other, help::COMMANDS.iter().map(|c| c.name))
            )
            .into(),
        )),
    }
}

fn command_help(name: &str) -> Command {
    Command::Help(help::command_help(
        help::find(name).expect("every parsed command is documented"),
    ))
}

/// An argument the command does not take, with the nearest option it does take.
fn unexpected(arg: lexopt::Arg, command: Option<&str>) -> lexopt::Error {
    let options: Vec<&str> = command
        .and_then(help::find)
        .map(|c| c.options)
        .unwrap_or(&[])
        .iter()
        .chain(help::GLOBAL_OPTIONS)
        .map(|o| o.long)
        .collect();
    let (what, hint) = match &arg {
        Long(name) => {
            let typed = format!("--{name}");
            let hint = suggest::did_you_mean(&typed, options.iter().copied());
            (format!("unknown option {typed}"), hint)
        }
        Short(c) => (format!("unknown option -{c}"), String::new()),
        Value(v) => (
            format!("unexpected argument \"{}\"", v.to_string_lossy()),
            String::new(),
        ),
    };
    let see = match command {
        Some(c) => format!("run `sikkerkey-agent {c} --help` for its options"),
        None => "run `sikkerkey-agent --help` for usage".to_owned(),
    };
    lexopt::Error::Custom(format!("{what}{hint}; {see}").into())
}

/// A required option that was not given.
fn missing(command: &str, flag: &str) -> lexopt::Error {
    lexopt::Error::Custom(
        format!(
            "missing required option --{flag}; run `sikkerkey-agent {command} --help` for its options"
        )
        .into(),
    )
}

/// A command taking `--secret ID` and, when `flag` is not empty, a boolean `--{flag}`.
fn parse_secret_command(
    parser: &mut lexopt::Parser,
    command: &str,
    flag: &str,
    make: impl FnOnce(String, bool) -> Command,
) -> Result<Command, lexopt::Error> {
    let mut secret = None;
    let mut set = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("secret") | Short('s') => secret = Some(parser.value()?.string()?),
            Long(f) if !flag.is_empty() && f == flag => set = true,
            Short('h') | Long("help") => return Ok(command_help(command)),
            _ => return Err(unexpected(arg, Some(command))),
        }
    }
    Ok(make(secret.ok_or_else(|| missing(command, "secret"))?, set))
}

fn parse_completions(parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut shell = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(command_help("completions")),
            Value(v) => {
                let v = v.string()?;
                shell = Some(match v.as_str() {
                    "bash" => Shell::Bash,
                    "zsh" => Shell::Zsh,
                    "fish" => Shell::Fish,
                    other => {
                        return Err(lexopt::Error::Custom(
                            format!(
                                "unknown shell \"{other}\"{}; use bash, zsh or fish",
                                suggest::did_you_mean(other, ["bash", "zsh", "fish"])
                            )
                            .into(),
                        ));
                    }
                });
            }
            _ => return Err(unexpected(arg, Some("completions"))),
        }
    }
    shell.map(Command::Completions).ok_or_else(|| {
        lexopt::Error::Custom(
            "missing the shell (bash, zsh or fish); run `sikkerkey-agent completions --help`"
                .into(),
        )
    })
}

fn parse_list(parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut format = OutputFormat::Table;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('o') | Long("output") => {
                format = match parser.value()?.string()?.as_str() {
                    "json" => OutputFormat::Json,
                    "table" | "text" => OutputFormat::Table,
                    "prometheus" | "openmetrics" => OutputFormat::Prometheus,
                    other => {
                        return Err(lexopt::Error::Custom(
                            format!(
                                "unknown output format \"{other}\"{}; use table, json or prometheus",
                                suggest::did_you_mean(other, ["table", "json", "prometheus"])
                            )
                            .into(),
                        ));
                    }
                }
            }
            Long("json") => format = OutputFormat::Json,
            Short('h') | Long("help") => return Ok(command_help("list")),
            _ => return Err(unexpected(arg, Some("list"))),
        }
    }
    Ok(Command::List { format })
}

fn parse_configure(parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut secret = None;
    let mut provider = None;
    let mut host = None;
    let mut port = None;
    let mut database = None;
    let mut admin_user = None;
    let mut admin_pass = AdminPassSource::EnvOrPrompt;
    let mut project_reference = None;
    let mut username_field = None;
    let mut password_field = None;
    let mut poll_interval = None;
    let mut tls = TlsFlags::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("secret") | Short('s') => secret = Some(parser.value()?.string()?),
            Long("provider") => provider = Some(parser.value()?.string()?),
            Long("host") => host = Some(parser.value()?.string()?),
            Long("port") => {
                let text = parser.value()?.string()?;
                match text.parse::<u16>() {
                    Ok(v) if v != 0 => port = Some(v),
                    _ => {
                        return Err(lexopt::Error::Custom(
                            format!("--port \"{text}\" is not a port number (1 to 65535)").into(),
                        ));
                    }
                }
            }
            Long("database") => database = Some(parser.value()?.string()?),
            Long("admin-user") => admin_user = Some(parser.value()?.string()?),
            Long("admin-pass") => {
                admin_pass = AdminPassSource::Argv(Secret::new(parser.value()?.string()?))
            }
            Long("admin-pass-file") => admin_pass = AdminPassSource::File(parser.value()?.into()),
            Long("project-reference") => project_reference = Some(parser.value()?.string()?),
            Long("username-field") => username_field = Some(parser.value()?.string()?),
            Long("password-field") => password_field = Some(parser.value()?.string()?),
            Long("poll-interval") => {
                let v: u64 = parser.value()?.parse()?;
                if v < 5 {
                    return Err(lexopt::Error::Custom(
                        "--poll-interval must be at least 5 seconds".into(),
                    ));
                }
                poll_interval = Some(v);
            }
            Long("tls") => tls.mode = Some(parser.value()?.string()?),
            Long("tls-ca-file") => tls.ca_file = Some(parser.value()?.into()),
            Long("tls-cert-file") => tls.cert_file = Some(parser.value()?.into()),
            Long("tls-key-file") => tls.key_file = Some(parser.value()?.into()),
            Short('h') | Long("help") => return Ok(command_help("configure")),
            _ => return Err(unexpected(arg, Some("configure"))),
        }
    }
    Ok(Command::Configure(Box::new(ConfigureArgs {
        secret: secret.ok_or_else(|| missing("configure", "secret"))?,
        provider: provider.ok_or_else(|| missing("configure", "provider"))?,
        host: host.ok_or_else(|| missing("configure", "host"))?,
        port,
        database,
        admin_user: admin_user.ok_or_else(|| missing("configure", "admin-user"))?,
        admin_pass,
        project_reference,
        username_field,
        password_field,
        poll_interval,
        tls,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, lexopt::Error> {
        parse(args.iter().map(|s| s.to_string()))
    }

    /// `configure` for a MySQL secret `s` on host `h`, then `more`.
    fn configure(more: &[&str]) -> Result<Command, lexopt::Error> {
        let base = [
            "configure",
            "--secret",
            "s",
            "--provider",
            "mysql",
            "--host",
            "h",
        ];
        p(&[&base[..], more].concat())
    }

    #[test]
    fn start_with_and_without_the_agent_word() {
        let want = Command::Start {
            secret: "sk_1".into(),
        };
        assert_eq!(p(&["start", "--secret", "sk_1"]).unwrap(), want);
        assert_eq!(p(&["agent", "start", "--secret", "sk_1"]).unwrap(), want);
        assert_eq!(p(&["agent", "start", "--secret=sk_1"]).unwrap(), want);
    }

    #[test]
    fn help_and_version_everywhere() {
        let help = |c: &str| Command::Help(help::command_help(help::find(c).unwrap()));
        assert_eq!(p(&["--version"]).unwrap(), Command::Version);
        assert_eq!(p(&[]).unwrap(), Command::Help(help::top_help()));
        assert_eq!(p(&["start", "--help"]).unwrap(), help("start"));
        assert_eq!(p(&["agent", "configure", "-h"]).unwrap(), help("configure"));
        assert_eq!(p(&["install", "--help"]).unwrap(), help("install"));
        assert_eq!(p(&["help", "status"]).unwrap(), help("status"));
        assert_eq!(
            p(&["completions", "fish"]).unwrap(),
            Command::Completions(Shell::Fish)
        );
        assert_eq!(p(&["man"]).unwrap(), Command::Man);
    }

    #[test]
    fn mistakes_point_at_the_fix() {
        let e = |args: &[&str]| p(args).unwrap_err().to_string();
        assert_eq!(
            e(&["stop"]),
            "missing required option --secret; run `sikkerkey-agent stop --help` for its options"
        );
        assert!(
            e(&["strat"]).contains("did you mean \"start\"?"),
            "{}",
            e(&["strat"])
        );
        let typo = e(&["start", "--secert", "x"]);
        assert!(
            typo.contains("unknown option --secert; did you mean \"--secret\"?")
                && typo.contains("`sikkerkey-agent start --help`"),
            "{typo}"
        );
        assert!(e(&["list", "-o", "prometeus"]).contains("did you mean \"prometheus\"?"));
        assert_eq!(
            p(&["test", "--secret", "s", "--use-server-config"]).unwrap(),
            Command::Test {
                secret: "s".into(),
                use_server_config: true
            }
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(p(&["start"]).unwrap_err().to_string().contains("--secret"));
        assert!(
            p(&["frobnicate"])
                .unwrap_err()
                .to_string()
                .contains("unknown command")
        );
        assert!(p(&["start", "--secret", "x", "--bogus"]).is_err());
        assert!(p(&["agent", "agent", "start"]).is_err());
    }

    #[test]
    fn configure_parses_all_flags() {
        let c = p(&[
            "configure",
            "--secret",
            "sk_1",
            "--provider",
            "mysql",
            "--host",
            "db",
            "--port",
            "3307",
            "--admin-user",
            "root",
            "--admin-pass-file",
            "/run/pw",
            "--poll-interval",
            "15",
        ])
        .unwrap();
        let Command::Configure(a) = c else { panic!() };
        assert_eq!((a.port, a.poll_interval), (Some(3307), Some(15)));
        assert_eq!(a.admin_pass, AdminPassSource::File("/run/pw".into()));
        assert!(configure(&["--admin-user", "u", "--port", "99999"]).is_err());
        let missing_admin = configure(&[]).unwrap_err().to_string();
        assert!(missing_admin.contains("admin-user"), "{missing_admin}");
    }

    #[test]
    fn an_admin_password_in_argv_never_shows_in_debug_output() {
        let c = configure(&["--admin-user", "u", "--admin-pass", "hunter2-secret"]).unwrap();
        let Command::Configure(a) = &c else { panic!() };
        assert_eq!(
            a.admin_pass,
            AdminPassSource::Argv(Secret::new("hunter2-secret"))
        );
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
    }

    #[test]
    fn list_and_flags() {
        assert_eq!(
            p(&["list", "-o", "json"]).unwrap(),
            Command::List {
                format: OutputFormat::Json
            }
        );
        assert_eq!(
            p(&["remove", "--secret", "s", "--force"]).unwrap(),
            Command::Remove {
                secret: "s".into(),
                force: true
            }
        );
        assert_eq!(
            p(&["install", "--secret", "s"]).unwrap(),
            Command::Install {
                secret: "s".into(),
                now: false
            }
        );
    }
}
