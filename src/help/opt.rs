//! The vocabulary of the command line: what an option, a command and a fixed set of
//! choices are, the options every command takes, and the output formats and shells whose
//! names they accept. The choices are drawn from the types the values become.

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

pub const fn switch(long: &'static str, help: &'static str) -> Opt {
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

pub const fn valued(
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

pub const fn required(o: Opt) -> Opt {
    Opt {
        required: true,
        ..o
    }
}

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
    /// Names from the environment table (`defs::ENVIRONMENT`).
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
