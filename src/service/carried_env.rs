//! The network settings `install` copies from the installing shell into the service: a
//! service starts with an empty environment, so an agent that reaches the control plane
//! through a proxy or trusts a private CA in the shell would lose both under systemd or
//! launchd, and one that verified PostgreSQL's certificate through libpq's `PGSSL*`
//! variables in the foreground would run as a service with the default `prefer`.
//! `install` says which variables it carried.
//!
//! A proxy URL with a user name or password is not copied: unit files and plists are
//! world-readable (and systemd shows `Environment=` to every user), so the installer says
//! where to put it instead.

use crate::trust::CA_FILE_VAR;

/// Variables carried into the service when set at install time, in this order.
pub const CARRIED: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    CA_FILE_VAR,
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
];

/// Carried variables that name a file or directory: they must be absolute, since the
/// service does not start in this directory. `PGSSLROOTCERT=system` names no file.
fn is_path(name: &str, value: &str) -> bool {
    match name {
        "SSL_CERT_FILE" | "SSL_CERT_DIR" | CA_FILE_VAR | "PGSSLCERT" | "PGSSLKEY" => true,
        "PGSSLROOTCERT" => value != "system",
        _ => false,
    }
}

/// The carried variables `lookup` finds set, and a warning for each one left out.
pub fn select(
    lookup: impl Fn(&str) -> Option<String>,
) -> (Vec<(&'static str, String)>, Vec<String>) {
    let mut env = Vec::new();
    let mut warnings = Vec::new();
    for &name in CARRIED {
        let Some(value) = lookup(name).filter(|v| !v.is_empty()) else {
            continue;
        };
        if name.to_ascii_lowercase().ends_with("_proxy")
            && !name.eq_ignore_ascii_case("NO_PROXY")
            && has_credentials(&value)
        {
            warnings.push(format!(
                "{name} holds a user name or password, which the service definition would show to every local user, so it was not copied; put it in a drop-in only root can read (systemctl edit) or in the launchd plist by hand"
            ));
            continue;
        }
        if is_path(name, &value) && !value.starts_with('/') {
            warnings.push(format!(
                "{name}={value} is not an absolute path and the service does not start in this directory, so it was not copied; set it to an absolute path and install again"
            ));
            continue;
        }
        if is_path(name, &value) && (value.starts_with("/tmp/") || value.starts_with("/var/tmp/")) {
            warnings.push(format!(
                "{name}={value} is under a temporary directory, which the systemd unit hides from the agent (PrivateTmp=yes); move the file elsewhere"
            ));
        }
        env.push((name, value));
    }
    (env, warnings)
}

/// Whether a proxy URL carries `user[:password]@` before its host.
fn has_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn set_variables_are_carried_in_a_fixed_order() {
        let vars = [
            ("SIKKERKEY_CA_FILE", "/etc/ska/ca.pem"),
            ("NO_PROXY", "localhost,.internal"),
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("HTTP_PROXY", ""),
            ("PATH", "/bin"),
        ];
        let (env, warnings) = select(lookup(&vars));
        assert_eq!(
            env,
            vec![
                ("HTTPS_PROXY", "http://proxy.corp:3128".to_owned()),
                ("NO_PROXY", "localhost,.internal".to_owned()),
                ("SIKKERKEY_CA_FILE", "/etc/ska/ca.pem".to_owned()),
            ]
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn proxy_credentials_are_never_written_into_a_service() {
        let vars = [
            ("https_proxy", "http://ann:pw@proxy.corp:3128"),
            ("ALL_PROXY", "socks5://proxy.corp/x@y"),
            ("NO_PROXY", "me@host"),
        ];
        let (env, warnings) = select(lookup(&vars));
        assert_eq!(
            env,
            vec![
                ("ALL_PROXY", "socks5://proxy.corp/x@y".to_owned()),
                ("NO_PROXY", "me@host".to_owned()),
            ]
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("https_proxy ") && !warnings[0].contains("pw"));
    }

    #[test]
    fn libpq_tls_variables_are_carried() {
        let vars = [
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "system"),
            ("PGSSLCERT", "client.crt"),
            ("PGSSLKEY", "/etc/pg/client.key"),
        ];
        let (env, warnings) = select(lookup(&vars));
        assert_eq!(
            env,
            vec![
                ("PGSSLMODE", "verify-full".to_owned()),
                ("PGSSLROOTCERT", "system".to_owned()),
                ("PGSSLKEY", "/etc/pg/client.key".to_owned()),
            ]
        );
        assert!(warnings[0].starts_with("PGSSLCERT=client.crt is not an absolute path"));
    }

    #[test]
    fn relative_ca_paths_are_not_carried() {
        let vars = [
            ("SIKKERKEY_CA_FILE", "certs/ca.pem"),
            ("SSL_CERT_FILE", "/etc/ca.pem"),
        ];
        let (env, warnings) = select(lookup(&vars));
        assert_eq!(env, vec![("SSL_CERT_FILE", "/etc/ca.pem".to_owned())]);
        assert!(warnings[0].contains("not an absolute path"));
    }
}
