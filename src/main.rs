//! The `sikkerkey-agent` binary: parse, logger, dispatch, print the error chain once, exit.

use std::process::ExitCode;

use log::Level;
use sikkerkey_agent::cli::{self, Command};
use sikkerkey_agent::commands::{self, CommandError};
use sikkerkey_agent::exit::Exit;
use sikkerkey_agent::logging::{self, LogSettings};
use sikkerkey_agent::settings::Settings;

/// `error: ...` and one `caused by:` line per source, as one message (one JSON object in
/// the JSON format).
fn print_error(e: &dyn std::error::Error) {
    let mut text = format!("error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    logging::say(Level::Error, &text);
}

fn dispatch(command: Command, settings: &Settings) -> Result<Exit, CommandError> {
    match command {
        Command::Help(text) => {
            println!("{text}");
            Ok(Exit::Ok)
        }
        Command::Version => {
            println!("{}", commands::version());
            Ok(Exit::Ok)
        }
        Command::Start { secret } => commands::start::run(&secret, settings),
        Command::Configure(args) => commands::configure::run(&args, settings),
        Command::Test {
            secret,
            use_server_config,
        } => commands::test::run(&secret, use_server_config, settings),
        Command::Status { .. } => unreachable!("status has its own exit codes; see main"),
        Command::List { format } => commands::list::run(format, settings),
        Command::Stop { secret } => commands::stop::run(&secret, settings),
        Command::Remove { secret, force } => commands::remove::run(&secret, force, settings),
        Command::Install { secret, now } => commands::install::run(&secret, now, settings),
        Command::Uninstall { secret } => commands::uninstall::run(&secret, settings),
        Command::Completions(shell) => {
            print!("{}", commands::completions::script(shell));
            Ok(Exit::Ok)
        }
        Command::Man => {
            print!("{}", commands::completions::man_page());
            Ok(Exit::Ok)
        }
    }
}

/// `status` speaks the monitoring-plugin convention even about its own command line:
/// a usage error is UNKNOWN (3), never read as CRITICAL (2).
fn usage_exit(command: Option<&str>) -> ExitCode {
    if command == Some("status") {
        ExitCode::from(commands::status::Nagios::Unknown.code() as u8)
    } else {
        Exit::Usage.into()
    }
}

fn main() -> ExitCode {
    // A setting the agent does not understand stops every command (exit 2), after the
    // logger is set up from the command line, so the error is written as asked.
    let settings = Settings::from_env();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let parsed = cli::parse(args.iter().cloned());
    let flag = match &parsed {
        Ok(invocation) => invocation.log_format.clone(),
        // The line did not parse; its error is still written in the format it asked for.
        Err(_) => cli::log_format_in(args.iter().cloned()),
    };
    let journal = logging::stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref());
    let (level, format) = match &settings {
        Ok(s) => (s.log.as_deref(), s.log_format.as_deref()),
        Err(_) => (None, None),
    };
    let log = LogSettings::decide(flag.as_deref(), level, format, journal);
    let log = match log {
        Ok(log) => log,
        Err(e) => {
            // Write the complaint in whatever format can still be made out.
            let fallback = LogSettings::decide(flag.as_deref(), None, format, journal)
                .or_else(|_| LogSettings::decide(flag.as_deref(), None, None, journal))
                .or_else(|_| LogSettings::decide(None, None, None, journal))
                .expect("the default log settings are valid");
            logging::init(fallback);
            print_error(&e);
            return usage_exit(parsed.err().and_then(|e| e.command));
        }
    };
    logging::init(log);
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            print_error(&e);
            let command = match &parsed {
                Ok(invocation) if matches!(invocation.command, Command::Status { .. }) => {
                    Some("status")
                }
                Ok(_) => None,
                Err(e) => e.command,
            };
            return usage_exit(command);
        }
    };
    let command = match parsed {
        Ok(invocation) => invocation.command,
        Err(e) => {
            print_error(&e);
            return usage_exit(e.command);
        }
    };
    // Monitoring-plugin exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), not `Exit`;
    // a status that cannot even be looked at is UNKNOWN.
    if let Command::Status { secret, format } = command {
        let code = match commands::status::run(&secret, format, &settings) {
            Ok(verdict) => verdict.code(),
            Err(e) => {
                print_error(&e);
                commands::status::Nagios::Unknown.code()
            }
        };
        return ExitCode::from(code as u8);
    }
    match dispatch(command, &settings) {
        Ok(code) => code.into(),
        Err(e) => {
            print_error(&e);
            e.code.into()
        }
    }
}
