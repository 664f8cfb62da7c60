//! The `sikkerkey-agent` binary: logger, parse, dispatch, print the error chain once, exit.

use std::process::ExitCode;

use sikkerkey_agent::cli::{self, Command};
use sikkerkey_agent::commands::{self, CommandError};
use sikkerkey_agent::exit::Exit;
use sikkerkey_agent::logging::{self, LogSettings};
use sikkerkey_agent::settings::Settings;

fn print_error(e: &dyn std::error::Error) {
    let p = logging::error_prefix();
    eprintln!("{p}error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        eprintln!("{p}  caused by: {s}");
        source = s.source();
    }
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

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.into();
        }
    };
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let decided = logging::take_format_flag(args).and_then(|(flag, args)| {
        let log = LogSettings::decide(
            flag.as_deref(),
            settings.log.as_deref(),
            settings.log_format.as_deref(),
            logging::stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()),
        )?;
        Ok((log, args))
    });
    let args = match decided {
        Ok((log, args)) => {
            logging::init(log);
            args
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.into();
        }
    };
    let code = match cli::parse(args) {
        Err(e) => {
            eprintln!("{}error: {e}", logging::error_prefix());
            if !e.to_string().contains("--help") {
                eprintln!("Run `sikkerkey-agent --help` for usage.");
            }
            Exit::Usage
        }
        // Nagios plugin exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), not `Exit`;
        // a status that cannot even be looked at is UNKNOWN.
        Ok(Command::Status { secret }) => {
            let code = match commands::status::run(&secret, &settings) {
                Ok(verdict) => verdict.code(),
                Err(e) => {
                    print_error(&e);
                    commands::status::Nagios::Unknown.code()
                }
            };
            return ExitCode::from(code as u8);
        }
        Ok(command) => match dispatch(command, &settings) {
            Ok(code) => code,
            Err(e) => {
                print_error(&e);
                e.code
            }
        },
    };
    code.into()
}
