//! Finds the `SIKKERKEY_HOME` of agents installed as systemd services, so `sudo list` also
//! shows agents that other users installed: each generated unit names its home in an
//! `Environment="SIKKERKEY_HOME=..."` line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::service::render::systemd_unquote;

/// The value of a unit's `Environment="SIKKERKEY_HOME=..."` line.
pub fn home_from_unit(unit: &str) -> Option<PathBuf> {
    unit.lines().find_map(|line| {
        let word = line.trim().strip_prefix("Environment=")?;
        let value = systemd_unquote(word, false)?;
        value.strip_prefix("SIKKERKEY_HOME=").map(PathBuf::from)
    })
}

fn same(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Homes named by installed agent units other than `own`: those whose `agents/` we can
/// read, and those we cannot (another user's, without root).
pub fn other_homes(own: &Path, service_dir: Option<&Path>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let dir = service_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/etc/systemd/system"));
    let Ok(listing) = std::fs::read_dir(&dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut homes = BTreeSet::new();
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("sikkerkey-agent-") && name.ends_with(".service")) {
            continue;
        }
        if let Some(home) = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|u| home_from_unit(&u))
        {
            homes.insert(home);
        }
    }
    let (mut readable, mut unreadable) = (Vec::new(), Vec::new());
    for home in homes.into_iter().filter(|h| !same(h, own)) {
        match std::fs::read_dir(home.join("agents")) {
            Ok(_) => readable.push(home),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => unreadable.push(home),
            Err(_) => {}
        }
    }
    (readable, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServiceSpec;
    use crate::service::render::systemd_unit;

    #[test]
    fn reads_back_the_home_the_unit_was_rendered_with() {
        for home in ["/home/ann/.sikkerkey", "/srv/odd \"dir\" 100%\\x"] {
            let spec = ServiceSpec::new("sk_1", "/bin/a", home, "ann", Some("v1")).unwrap();
            assert_eq!(
                home_from_unit(&systemd_unit(&spec)),
                Some(PathBuf::from(home))
            );
        }
    }
}
