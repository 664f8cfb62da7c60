//! Command-line parsing: argv in, a [`Command`] out. Pure data, no I/O, so tests can feed
//! any argument list. Accepts the official CLI's spelling: a leading `agent` word is
//! skipped, so `sikkerkey agent start --secret X` works through a symlink named `sikkerkey`.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

use crate::secret::Secret;

/// Output format of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
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
    Help(&'static str),
    Version,
}

pub const USAGE: &str = "\
sikkerkey-agent: applies SikkerKey password rotations to a local database

Usage: sikkerkey-agent [agent] <COMMAND> [OPTIONS]

Commands:
  start      Run the agent for a secret in the foreground
  configure  Write local connection details for a secret's agent
  test       Check the database connection and the admin's privileges
  list       Show the agents configured or running on this machine
  stop       Stop the running agent for a secret
  remove     Delete a secret's local agent files
  install    Generate (and with --now, install and start) a system service
  uninstall  Stop, disable and delete the system service

Options:
  -h, --help     Print help (also after a command)
  -V, --version  Print the version

Run `sikkerkey-agent <COMMAND> --help` for a command's options.
Exit codes are listed in README.md.";

const START_HELP: &str = "\
Usage: sikkerkey-agent start --secret <ID>

Runs the agent in the foreground until SIGINT/SIGTERM (a second signal exits at once).
Polls the secret's sync config, applies pending rotations to the database, verifies them
and confirms or rejects them.

Options:
  --secret <ID>  The managed secret (e.g. sk_a1b2c3)";

const CONFIGURE_HELP: &str = "\
Usage: sikkerkey-agent configure --secret <ID> --provider <TYPE> --host <HOST> --admin-user <USER> [OPTIONS]

Writes $SIKKERKEY_HOME/agents/<ID>.json (mode 0600). It overrides the server's connection details.

Options:
  --secret <ID>            The managed secret
  --provider <TYPE>        postgresql, postgresql_supabase, mysql, redis or mongodb
  --host <HOST>            Database host
  --port <PORT>            Database port (default: the provider's)
  --database <NAME>        Database name
  --admin-user <USER>      Admin user that can change passwords
  --admin-pass-file <FILE> Read the admin password from a file
  --admin-pass <PASS>      Admin password in argv (leaks to ps and shell history; prefer the file,
                           SIKKERKEY_ADMIN_PASS, or the prompt)
  --project-reference <R>  Supabase project reference
  --username-field <F>     Field of the secret value holding the username (default: username)
  --password-field <F>     Field of the secret value holding the password (default: password)
  --poll-interval <S>      Poll interval in seconds (at least 5)";

const TEST_HELP: &str = "\
Usage: sikkerkey-agent test --secret <ID>

Connects with the local config (or the server's sync config), checks the admin's login
and privileges and that the managed user exists. One line per check; non-zero exit if any fails.";

const LIST_HELP: &str = "\
Usage: sikkerkey-agent list [-o json]

Lists the agents configured or running on this machine.";

const STOP_HELP: &str = "\
Usage: sikkerkey-agent stop --secret <ID>

Sends SIGTERM to the running agent and waits for it to exit.";

const REMOVE_HELP: &str = "\
Usage: sikkerkey-agent remove --secret <ID> [--force]

Deletes the local config, PID and state files of a secret's agent. Refuses while the
agent runs unless --force.";

const INSTALL_HELP: &str = "\
Usage: sikkerkey-agent install --secret <ID> [--now]

Prints a system service definition for the agent and where to put it; with --now,
writes it and starts the service.";

const UNINSTALL_HELP: &str = "\
Usage: sikkerkey-agent uninstall --secret <ID>

Stops and disables the system service and deletes its definition.";

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
            Short('h') | Long("help") => return Ok(Command::Help(USAGE)),
            Short('V') | Long("version") => return Ok(Command::Version),
            Value(word) => {
                let word = word.string()?;
                if word == "agent" && !saw_agent_word {
                    saw_agent_word = true;
                    continue;
                }
                return parse_command(&word, &mut parser);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Command::Help(USAGE))
}

fn parse_command(word: &str, parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    match word {
        "start" => parse_secret_command(parser, "", START_HELP, |secret, _| Command::Start {
            secret,
        }),
        "test" => parse_secret_command(parser, "", TEST_HELP, |secret, _| Command::Test { secret }),
        "stop" => parse_secret_command(parser, "", STOP_HELP, |secret, _| Command::Stop { secret }),
        "uninstall" => parse_secret_command(parser, "", UNINSTALL_HELP, |secret, _| {
            Command::Uninstall { secret }
        }),
        "remove" => parse_secret_command(parser, "force", REMOVE_HELP, |secret, force| {
            Command::Remove { secret, force }
        }),
        "install" => parse_secret_command(parser, "now", INSTALL_HELP, |secret, now| {
            Command::Install { secret, now }
        }),
        "configure" => parse_configure(parser),
        "list" => parse_list(parser),
        "help" => Ok(Command::Help(USAGE)),
        other => Err(lexopt::Error::Custom(
            format!("unknown command \"{other}\"; run with --help to see the commands").into(),
        )),
    }
}

fn missing(flag: &str) -> lexopt::Error {
    lexopt::Error::MissingValue {
        option: Some(format!("--{flag}")),
    }
}

/// A command taking `--secret ID` and, when `flag` is not empty, a boolean `--{flag}`.
fn parse_secret_command(
    parser: &mut lexopt::Parser,
    flag: &str,
    help: &'static str,
    make: impl FnOnce(String, bool) -> Command,
) -> Result<Command, lexopt::Error> {
    let mut secret = None;
    let mut set = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("secret") | Short('s') => secret = Some(parser.value()?.string()?),
            Long(f) if !flag.is_empty() && f == flag => set = true,
            Short('h') | Long("help") => return Ok(Command::Help(help)),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(make(secret.ok_or_else(|| missing("secret"))?, set))
}

fn parse_list(parser: &mut lexopt::Parser) -> Result<Command, lexopt::Error> {
    let mut format = OutputFormat::Table;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('o') | Long("output") => {
                format = match parser.value()?.string()?.as_str() {
                    "json" => OutputFormat::Json,
                    "table" | "text" => OutputFormat::Table,
                    other => {
                        return Err(lexopt::Error::Custom(
                            format!("unknown output format \"{other}\"; use json or table").into(),
                        ));
                    }
                }
            }
            Long("json") => format = OutputFormat::Json,
            Short('h') | Long("help") => return Ok(Command::Help(LIST_HELP)),
            _ => return Err(arg.unexpected()),
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
            Short('h') | Long("help") => return Ok(Command::Help(CONFIGURE_HELP)),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Command::Configure(Box::new(ConfigureArgs {
        secret: secret.ok_or_else(|| missing("secret"))?,
        provider: provider.ok_or_else(|| missing("provider"))?,
        host: host.ok_or_else(|| missing("host"))?,
        port,
        database,
        admin_user: admin_user.ok_or_else(|| missing("admin-user"))?,
        admin_pass,
        project_reference,
        username_field,
        password_field,
        poll_interval,
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
        assert_eq!(p(&["--version"]).unwrap(), Command::Version);
        assert_eq!(p(&[]).unwrap(), Command::Help(USAGE));
        assert_eq!(p(&["start", "--help"]).unwrap(), Command::Help(START_HELP));
        assert_eq!(
            p(&["agent", "configure", "-h"]).unwrap(),
            Command::Help(CONFIGURE_HELP)
        );
        assert_eq!(
            p(&["install", "--help"]).unwrap(),
            Command::Help(INSTALL_HELP)
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
