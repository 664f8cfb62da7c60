//! Service definitions as pure functions of a [`ServiceSpec`]: the systemd unit, the launchd
//! plist and the Windows commands, filled from the templates in `service-templates/`
//! (compiled in) with each value quoted by the rules of the format it lands in.

use super::ServiceSpec;
use super::template::{self, CommandLine, Vars};
use crate::exit;

const SYSTEMD_TEMPLATE: &str = include_str!("../../service-templates/systemd.service");
const LAUNCHD_TEMPLATE: &str = include_str!("../../service-templates/launchd.plist");
const NSSM_TEMPLATE: &str = include_str!("../../service-templates/windows-nssm.cmd");
const SC_TEMPLATE: &str = include_str!("../../service-templates/windows-sc.cmd");

/// PATH for the launchd job: launchd starts jobs with a minimal one.
pub const LAUNCHD_PATH: &str = "/usr/local/bin:/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin";

fn no_restart_codes() -> Vec<String> {
    exit::DO_NOT_RESTART
        .iter()
        .map(|e| e.code().to_string())
        .collect()
}

/// A value as one double-quoted systemd word: C-style escapes for `\` and `"`, `%%` for a
/// literal `%` (specifiers), and, where `expands_variables` (arguments of a command line,
/// not its executable path, which systemd takes literally), `$$` for a literal `$`.
/// Control characters never get here ([`ServiceSpec::new`] refuses them).
pub fn systemd_quote(value: &str, expands_variables: bool) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' if expands_variables => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value of one double-quoted systemd word as [`systemd_quote`] wrote it (with the
/// same `expands_variables`); `None` when `word` is not in double quotes.
pub fn systemd_unquote(word: &str, expands_variables: bool) -> Option<String> {
    let inner = word.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            // Each stands doubled: `%%`, and `$$` where variables expand.
            '%' => {
                chars.next();
                out.push('%');
            }
            '$' if expands_variables => {
                chars.next();
                out.push('$');
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// Escapes text for an XML element or attribute.
pub fn xml_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Quotes one argument for a Windows command line (the rules `CommandLineToArgvW` and the
/// C runtime parse by): bare when nothing needs quoting, else in double quotes with
/// backslashes doubled only where they precede a quote.
pub fn windows_quote(arg: &str) -> String {
    if !arg.is_empty()
        && !arg.chars().any(|c| {
            matches!(
                c,
                ' ' | '\t' | '"' | '&' | '|' | '<' | '>' | '^' | '(' | ')'
            )
        })
    {
        return arg.to_owned();
    }
    let mut out = String::from("\"");
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            c => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
    out
}

/// The systemd unit `sikkerkey-agent-{id}.service`.
pub fn systemd_unit(spec: &ServiceSpec) -> String {
    let timeouts = super::timeouts::UnitTimeouts::for_defaults();
    let vars = Vars::new()
        .one("secret", &spec.secret_id)
        .one("user", &spec.user)
        .one("exe", systemd_quote(&spec.exe, false))
        .one("state_dir", systemd_quote(&spec.home, false))
        .list(
            "environment",
            spec.environment()
                .iter()
                .map(|(k, v)| systemd_quote(&format!("{k}={v}"), false))
                .collect(),
        )
        .list("no_restart_codes", no_restart_codes())
        .one("timeout_start", format!("{}s", timeouts.start))
        .one("timeout_stop", format!("{}s", timeouts.stop))
        .one("watchdog", format!("{}s", timeouts.watchdog));
    template::fill_text(SYSTEMD_TEMPLATE, &vars)
}

/// The launchd plist `com.sikkerkey.agent.{id}.plist`.
pub fn launchd_plist(spec: &ServiceSpec) -> String {
    let env = spec.environment();
    let vars = Vars::new()
        .one("secret", xml_escape(&spec.secret_id))
        .one("label", xml_escape(&spec.launchd_label()))
        .one("exe", xml_escape(&spec.exe))
        .one("path", xml_escape(LAUNCHD_PATH))
        .one("log", xml_escape(&spec.log_path()))
        .list("env_name", env.iter().map(|(k, _)| xml_escape(k)).collect())
        .list(
            "env_value",
            env.iter().map(|(_, v)| xml_escape(v)).collect(),
        );
    template::fill_text(LAUNCHD_TEMPLATE, &vars)
}

fn windows_vars(spec: &ServiceSpec) -> Vars {
    let env: Vec<String> = spec
        .environment()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let service = spec.windows_service_name();
    Vars::new()
        .one("secret", &spec.secret_id)
        .one("service", &service)
        .one("exe", &spec.exe)
        .one(
            "display_name",
            format!("SikkerKey Agent ({})", spec.secret_id),
        )
        .one(
            "description",
            format!("SikkerKey sync agent for secret {}", spec.secret_id),
        )
        .one("log", spec.log_path())
        .one(
            "sc_command",
            format!(
                "{} start --secret {}",
                windows_quote(&spec.exe),
                spec.secret_id
            ),
        )
        .one(
            "registry_key",
            format!("HKLM\\SYSTEM\\CurrentControlSet\\Services\\{service}"),
        )
        .one("sc_environment", env.join("\\0"))
        .list("environment", env)
        .list("no_restart_codes", no_restart_codes())
}

/// The NSSM commands that install and start the service, each as program + arguments.
pub fn windows_nssm(spec: &ServiceSpec) -> Vec<CommandLine> {
    template::fill_commands(NSSM_TEMPLATE, &windows_vars(spec))
}

/// The sc.exe fallback, for printing.
pub fn windows_sc(spec: &ServiceSpec) -> Vec<CommandLine> {
    template::fill_commands(SC_TEMPLATE, &windows_vars(spec))
}

/// Command lines as a script to paste into an elevated prompt.
pub fn command_script(lines: &[CommandLine]) -> String {
    let mut out = String::new();
    for line in lines {
        match line {
            CommandLine::Note(text) => out.push_str(text),
            CommandLine::Run(argv) => out.push_str(
                &argv
                    .iter()
                    .map(|a| windows_quote(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        }
        out.push_str("\r\n");
    }
    out
}

/// The Windows definition as printed: NSSM first, then the sc.exe fallback.
pub fn windows_script(spec: &ServiceSpec) -> String {
    let mut out = command_script(&windows_nssm(spec));
    out.push_str("\r\n");
    out.push_str(&command_script(&windows_sc(spec)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec with every character the formats treat specially in its paths.
    fn awkward_spec() -> ServiceSpec {
        ServiceSpec::new(
            "sk_a1-b2.c3",
            "/opt/Sikker Key/bin$x/sikkerkey-agent",
            "/home/ann/Jo's \"keys\" & <more> 100%\\dir",
            "ann",
            Some("prod-vault"),
        )
        .unwrap()
        .with_network(vec![
            ("HTTPS_PROXY", "http://proxy.corp:3128".into()),
            ("NO_PROXY", "localhost,.internal,10.0.0.0/8".into()),
            (
                "SIKKERKEY_CA_FILE",
                "/etc/Sikker Key/corp \"root\" 100%$ca.pem".into(),
            ),
        ])
        .unwrap()
    }

    fn plain_spec() -> ServiceSpec {
        ServiceSpec::new(
            "sk_abc123",
            "/usr/local/bin/sikkerkey-agent",
            "/home/ann/.sikkerkey",
            "ann",
            None,
        )
        .unwrap()
    }

    /// Compares with a golden file under tests/golden/; `SIKKERKEY_UPDATE_GOLDEN=1` rewrites it.
    fn golden(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("SIKKERKEY_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read golden file {}: {e} (run with SIKKERKEY_UPDATE_GOLDEN=1 to create it)",
                path.display()
            )
        });
        assert_eq!(
            actual,
            expected,
            "rendered output differs from {}",
            path.display()
        );
    }

    /// `{kind}-plain.{ext}` and `{kind}-awkward.{ext}` against `render`.
    fn golden_pair(kind: &str, ext: &str, render: impl Fn(&ServiceSpec) -> String) {
        golden(&format!("{kind}-plain.{ext}"), &render(&plain_spec()));
        golden(&format!("{kind}-awkward.{ext}"), &render(&awkward_spec()));
    }

    #[test]
    fn systemd_golden() {
        golden_pair("systemd", "service", systemd_unit);
    }

    #[test]
    fn launchd_golden() {
        golden_pair("launchd", "plist", launchd_plist);
    }

    #[test]
    fn windows_golden() {
        golden_pair("windows", "cmd", windows_script);
    }

    #[test]
    fn systemd_quoting() {
        assert_eq!(
            systemd_quote(r#"a b"c\d%e$f"#, true),
            r#""a b\"c\\d%%e$$f""#
        );
        assert_eq!(systemd_quote("a$b", false), "\"a$b\"");
        for value in [
            r#"a b"c\d%e$f"#,
            "",
            "%%",
            "\\\"",
            "/srv/odd \"dir\" 100%\\x",
        ] {
            for expands in [false, true] {
                let quoted = systemd_quote(value, expands);
                assert_eq!(systemd_unquote(&quoted, expands).as_deref(), Some(value));
            }
        }
        assert_eq!(systemd_unquote("bare", false), None);
    }

    #[test]
    fn the_unit_uses_the_shared_exit_codes() {
        let unit = systemd_unit(&plain_spec());
        let line = unit
            .lines()
            .find(|l| l.starts_with("RestartPreventExitStatus="))
            .unwrap();
        let codes: Vec<i32> = line
            .split_once('=')
            .unwrap()
            .1
            .split(' ')
            .map(|c| c.parse().unwrap())
            .collect();
        assert_eq!(codes, exit::DO_NOT_RESTART.map(|e| e.code()));
    }

    #[test]
    fn nssm_commands_keep_awkward_paths_as_one_argument() {
        let spec = awkward_spec();
        let runs: Vec<Vec<String>> = windows_nssm(&spec)
            .into_iter()
            .filter_map(|l| match l {
                CommandLine::Run(a) => Some(a),
                CommandLine::Note(_) => None,
            })
            .collect();
        assert_eq!(
            runs[0],
            [
                "nssm",
                "install",
                "SikkerKeyAgent_sk_a1_b2.c3",
                spec.exe.as_str(),
                "start",
                "--secret",
                "sk_a1-b2.c3"
            ]
        );
        let env = runs
            .iter()
            .find(|a| a.get(3).map(String::as_str) == Some("AppEnvironmentExtra"))
            .unwrap();
        assert_eq!(
            env[4..6],
            [
                format!("SIKKERKEY_HOME={}", spec.home),
                "SIKKERKEY_VAULT=prod-vault".to_owned()
            ]
        );
        assert_eq!(
            env.last().unwrap(),
            &format!("SIKKERKEY_CA_FILE={}", spec.network[2].1)
        );
        let exits: Vec<&str> = runs
            .iter()
            .filter(|a| a.get(3).map(String::as_str) == Some("AppExit") && a[5] == "Exit")
            .map(|a| a[4].as_str())
            .collect();
        assert_eq!(exits, exit::DO_NOT_RESTART.map(|e| e.code().to_string()));
        assert_eq!(
            runs.last().unwrap(),
            &["nssm", "start", "SikkerKeyAgent_sk_a1_b2.c3"]
        );
    }

    #[test]
    fn windows_quoting_follows_the_argv_rules() {
        assert_eq!(windows_quote("plain"), "plain");
        assert_eq!(windows_quote(""), "\"\"");
        assert_eq!(
            windows_quote(r"C:\Program Files\x"),
            r#""C:\Program Files\x""#
        );
        assert_eq!(windows_quote(r#"a"b"#), r#""a\"b""#);
        assert_eq!(windows_quote(r"dir\ with\"), r#""dir\ with\\""#);
    }
}
