//! SIGHUP: re-read the local config `agents/{id}.json` (connection details and the `tls`
//! object; the TLS files it names are read at each connection) and say what changed. The new
//! connection details are used from the next job on; a rotation in flight keeps the
//! target it started with, so a reload never drops or splits one. A config that cannot be
//! read keeps the previous one in force.

use std::path::Path;

use crate::localconfig::{LocalConfig, TargetSource};

/// What differs between two local configs, in words that never include a password.
pub fn changes(old: Option<&LocalConfig>, new: Option<&LocalConfig>) -> Vec<String> {
    let (old, new) = match (old, new) {
        (None, None) => return Vec::new(),
        (Some(_), None) => {
            return vec!["the local config is gone; using the server's connection details".into()];
        }
        (None, Some(_)) => {
            return vec!["a local config now overrides the server's connection details".into()];
        }
        (Some(o), Some(n)) => (o, n),
    };
    let mut out = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name} \"{a}\" -> \"{b}\""));
        }
    };
    let (o, n) = (&old.connection.db, &new.connection.db);
    field(
        "provider",
        old.provider_type.clone(),
        new.provider_type.clone(),
    );
    field("host", o.host.clone(), n.host.clone());
    field("port", o.port.to_string(), n.port.to_string());
    field("database", o.database.clone(), n.database.clone());
    field("admin user", o.admin_user.clone(), n.admin_user.clone());
    field(
        "project reference",
        o.project_reference.clone(),
        n.project_reference.clone(),
    );
    field(
        "username field",
        old.connection.username_field.clone(),
        new.connection.username_field.clone(),
    );
    field(
        "password field",
        old.connection.password_field.clone(),
        new.connection.password_field.clone(),
    );
    if old.tls != new.tls {
        // Modes and file paths only: the files themselves are read at each connection,
        // so a renewed certificate is used from the next job on even without a reload.
        out.push(format!("TLS settings {:?} -> {:?}", old.tls, new.tls));
    }
    if o.admin_pass.expose() != n.admin_pass.expose() {
        out.push("admin password changed".into());
    }
    out
}

/// Re-reads the local config into `source`. Logs what changed, or why nothing did.
pub fn reload(secret_id: &str, path: &Path, source: &TargetSource) -> Result<Vec<String>, String> {
    let new = LocalConfig::load(path).map_err(|e| {
        let mut msg = e.to_string();
        if let Some(cause) = std::error::Error::source(&e) {
            msg.push_str(&format!(": {cause}"));
        }
        msg
    });
    let new = match new {
        Ok(n) => n,
        Err(e) => {
            log::error!("secret {secret_id}: reload failed, keeping the previous settings: {e}");
            return Err(e);
        }
    };
    let mut current = source.local.write().unwrap_or_else(|e| e.into_inner());
    let diff = changes(current.as_ref(), new.as_ref());
    if diff.is_empty() {
        log::info!(
            "secret {secret_id}: reloaded {}: nothing changed",
            path.display()
        );
    } else {
        log::info!(
            "secret {secret_id}: reloaded {}: {}; used from the next job on",
            path.display(),
            diff.join(", ")
        );
    }
    *current = new;
    Ok(diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn names_what_changed_but_never_the_password() {
        let mut a = LocalConfig::default();
        a.connection.db.host = "db1".into();
        a.connection.db.admin_pass = Secret::new("old-pass-123");
        let mut b = a.clone();
        b.connection.db.host = "db2".into();
        b.connection.db.admin_pass = Secret::new("new-pass-456");
        let c = changes(Some(&a), Some(&b));
        assert_eq!(c, vec!["host \"db1\" -> \"db2\"", "admin password changed"]);
        assert!(!format!("{c:?}").contains("pass-"));
        assert!(changes(Some(&a), Some(&a)).is_empty());
        assert_eq!(changes(Some(&a), None).len(), 1);
    }
}
