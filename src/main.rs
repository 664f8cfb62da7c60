//! The `sikkerkey-agent` binary: logger, parse, dispatch, print the error chain once, exit.

use sikkerkey_agent::cli::{self, Command};
use sikkerkey_agent::commands::{self, CommandError};
use sikkerkey_agent::exit::Exit;
use sikkerkey_agent::logging;
use sikkerkey_agent::settings::Settings;

/// Our own log lines at the level `SIKKERKEY_LOG` names (default info).
fn init_logger(settings: &Settings) {
    let level = settings
        .log
        .as_deref()
        .and_then(|v| v.parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Info);
    logging::init(level);
}

fn print_error(e: &dyn std::error::Error) {
    eprintln!("error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
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
            println!("sikkerkey-agent {}", env!("CARGO_PKG_VERSION"));
            Ok(Exit::Ok)
        }
        Command::Start { secret } => commands::start::run(&secret, settings),
        Command::Configure(args) => commands::configure::run(&args, settings),
        Command::Test { secret } => commands::test::run(&secret, settings),
        Command::List { format } => commands::list::run(format, settings),
        Command::Stop { secret } => commands::stop::run(&secret, settings),
        Command::Remove { secret, force } => commands::remove::run(&secret, force, settings),
        Command::Install { secret, now } => commands::install::run(&secret, now, settings),
        Command::Uninstall { secret } => commands::uninstall::run(&secret, settings),
    }
}

fn main() -> std::process::ExitCode {
    let settings = Settings::from_env();
    init_logger(&settings);
    let code = match cli::parse(std::env::args_os().skip(1)) {
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("Run `sikkerkey-agent --help` for usage.");
            Exit::Usage
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
