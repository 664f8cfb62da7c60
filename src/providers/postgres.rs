//! PostgreSQL (and Supabase's PostgreSQL): roles are created and altered with a
//! SCRAM-SHA-256 verifier the agent computes, so the plaintext never reaches the server's
//! statement log; rollback puts the stored verifier from `pg_authid` back.
//!
//! Runtime: the sync `postgres` crate bounds only the TCP connect; a server that accepts
//! the connection and then stops answering (a frozen VM, a dead link, a stuck failover)
//! would block the worker for as long as the kernel keeps the socket. So the provider
//! drives `tokio-postgres` on a current-thread runtime of its own that lives for one job
//! (as the MongoDB provider does), and every round trip goes through `Postgres::call`, a
//! `block_on` under `tokio::time::timeout`: the handshake is bounded by the connect
//! timeout, every statement by the statement timeout plus a short grace (the server's own
//! `statement_timeout` fires first when the server is merely slow). This is the
//! provider's private plumbing; the agent itself stays plain threads.
//!
//! TLS: the connector is rustls with the verifier of the target's mode (`providers::tls`),
//! shared by the admin connection and every login. The provider opens the socket itself
//! (`postgres/socket.rs`) and hands it to the driver's `connect_raw` behind an
//! `auth_guard::AuthGuard`, which refuses cleartext and MD5 password requests unless the
//! server's certificate was verified or the connection is a Unix socket; SCRAM, with
//! channel binding whenever TLS is up, is always allowed. `connect.rs` opens sessions and
//! bounds every call, `errors.rs` says what a failure means.

mod auth_guard;
mod connect;
mod errors;
mod scram;
mod socket;

use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use connect::{CLIENT_GRACE, CallError, bounded, connect_on, login_name};

use super::error::{FailureKind, ProviderError};
use super::provider::{PasswordMatch, Provider, RefusalFacts, StoredCredential};
use super::runtime::{DriverClient, Session};
use super::target::Target;
use super::tls::TlsStatus;
use crate::secret::Secret;

/// PostgreSQL truncates longer identifiers, which would give the password to another name.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// How long dropping a provider may wait for the runtime's blocking threads (a name lookup).
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The first PostgreSQL version (`server_version_num`) in which CREATEROLE alone no longer
/// lets a role change another role's password: it also needs ADMIN OPTION on that role.
const ADMIN_OPTION_SINCE: i32 = 160_000;

/// What decides whether the admin may change an existing role's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolePrivileges {
    pub server_version_num: i32,
    pub admin_is_superuser: bool,
    pub managed_is_superuser: bool,
    /// The admin holds ADMIN OPTION on the managed role (directly or through a role).
    pub admin_option: bool,
}

impl RolePrivileges {
    /// Why the admin (already known to have CREATEROLE) cannot change the role's
    /// password, with the statement that fixes it; `None` when it can.
    pub fn missing(&self, admin: &str, managed: &str) -> Option<String> {
        if self.admin_is_superuser {
            return None;
        }
        if self.managed_is_superuser {
            return Some(format!(
                "role \"{managed}\" is a SUPERUSER, whose password only a superuser may change; use a superuser admin or manage a role without SUPERUSER"
            ));
        }
        if self.server_version_num >= ADMIN_OPTION_SINCE && !self.admin_option {
            return Some(format!(
                "PostgreSQL 16 and later need ADMIN OPTION on the managed role as well as CREATEROLE, and role \"{admin}\" lacks it on \"{managed}\"; grant it as a superuser with: GRANT {} TO {} WITH ADMIN OPTION",
                quote_ident(managed),
                quote_ident(admin)
            ));
        }
        None
    }
}

/// An admin connection to one PostgreSQL database, with the runtime that drives it.
pub struct Postgres {
    target: Target,
    session: Session<Client>,
}

/// Dropping the client closes the connection.
impl DriverClient for Client {
    const SHUTDOWN_GRACE: Duration = SHUTDOWN_GRACE;
}

impl Postgres {
    /// Connects as the admin and bounds every later statement by the target's timeout.
    pub fn connect(target: &Target) -> Result<Self, ProviderError> {
        let action = format!("connecting as admin \"{}\"", target.admin_user);
        let runtime = super::runtime::job_runtime(target, &action)?;
        let client = connect_on(
            &runtime,
            target,
            &login_name(target, &target.admin_user),
            &target.admin_pass,
        )
        .map_err(|e| e.into_provider(target, &action))?;
        let pg = Postgres {
            target: target.clone(),
            session: Session::new(client, runtime),
        };
        let ms = target.timeouts.statement.as_millis();
        pg.execute(
            "setting session timeouts",
            &format!(
                "SET statement_timeout = {ms}; SET lock_timeout = {ms}; SET standard_conforming_strings = on"
            ),
        )?;
        Ok(pg)
    }

    fn client(&self) -> &Client {
        self.session.client()
    }

    /// One round trip, bounded by the statement timeout plus grace.
    fn call<T>(
        &self,
        future: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, CallError> {
        bounded(
            self.session.runtime(),
            self.target.timeouts.statement + CLIENT_GRACE,
            future,
        )
    }

    /// Runs `{statement} PASSWORD '<SCRAM verifier of password>'`.
    fn set_verifier(
        &mut self,
        action: &str,
        statement: &str,
        password: &Secret,
    ) -> Result<(), ProviderError> {
        let verifier = quote_literal(&verifier(password));
        self.execute(action, &format!("{statement} PASSWORD {verifier}"))
    }

    fn execute(&self, action: &str, sql: &str) -> Result<(), ProviderError> {
        self.call(self.client().batch_execute(sql))
            .map_err(|e| e.into_provider(&self.target, action))
    }
}

impl Provider for Postgres {
    fn target(&self) -> &Target {
        &self.target
    }

    fn check_admin(&mut self) -> Result<(), ProviderError> {
        let row = self
            .call(self.client().query_one("SELECT current_user::text, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user", &[]))
            .map_err(|e| e.into_provider(&self.target, "checking the admin's privileges"))?;
        let (name, superuser, createrole): (String, bool, bool) =
            (row.get(0), row.get(1), row.get(2));
        if superuser || createrole {
            return Ok(());
        }
        Err(ProviderError::new(
            &self.target,
            FailureKind::Privilege,
            "checking the admin's privileges",
            format!(
                "role \"{name}\" has neither SUPERUSER nor CREATEROLE; grant it with: ALTER ROLE {} CREATEROLE",
                quote_ident(&name)
            ),
        ))
    }

    fn check_can_manage(&mut self, username: &str) -> Result<(), ProviderError> {
        let action = format!("checking the admin's privileges on role \"{username}\"");
        let row = self
            .call(self.client().query_opt(
                "SELECT current_setting('server_version_num')::int, \
                        (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
                        r.rolsuper, \
                        pg_has_role(current_user, r.oid, 'MEMBER WITH ADMIN OPTION') \
                 FROM pg_roles r WHERE r.rolname = $1",
                &[&username],
            ))
            .map_err(|e| e.into_provider(&self.target, &action))?;
        let Some(row) = row else { return Ok(()) };
        let privileges = RolePrivileges {
            server_version_num: row.get(0),
            admin_is_superuser: row.get::<_, Option<bool>>(1).unwrap_or(false),
            managed_is_superuser: row.get(2),
            admin_option: row.get(3),
        };
        match privileges.missing(&self.target.admin_user, username) {
            None => Ok(()),
            Some(why) => Err(ProviderError::new(
                &self.target,
                FailureKind::Privilege,
                &action,
                why,
            )),
        }
    }

    fn input_problem(&self, username: &str, _password: &Secret) -> Option<String> {
        (username.len() > MAX_IDENTIFIER_BYTES).then(|| {
            format!(
                "the role name is {} bytes; PostgreSQL allows {MAX_IDENTIFIER_BYTES}",
                username.len()
            )
        })
    }

    fn user_exists(&mut self, username: &str) -> Result<bool, ProviderError> {
        let row = self
            .call(self.client().query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
                &[&username],
            ))
            .map_err(|e| {
                e.into_provider(&self.target, &format!("looking up role \"{username}\""))
            })?;
        Ok(row.get(0))
    }

    fn read_stored(&mut self, username: &str) -> Result<StoredCredential, ProviderError> {
        if !self.user_exists(username)? {
            return Ok(StoredCredential::Absent);
        }
        match self.call(self.client().query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&username],
        )) {
            Ok(row) => Ok(StoredCredential::Stored(
                row.get::<_, Option<String>>(0).unwrap_or_default(),
            )),
            Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                Ok(StoredCredential::Unreadable {
                    reason: format!(
                        "admin \"{}\" cannot read pg_authid (it is not a superuser)",
                        self.target.admin_user
                    ),
                })
            }
            Err(e) => Err(e.into_provider(
                &self.target,
                &format!("reading the stored verifier of role \"{username}\""),
            )),
        }
    }

    fn create_user(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let action = format!("creating role \"{username}\"");
        let statement = format!("CREATE ROLE {} WITH LOGIN", quote_ident(username));
        self.set_verifier(&action, &statement, password)
    }

    fn change_password(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let action = format!("setting the password of role \"{username}\"");
        let statement = format!("ALTER ROLE {} WITH", quote_ident(username));
        self.set_verifier(&action, &statement, password)
    }

    fn restore_stored(&mut self, username: &str, stored: &str) -> Result<(), ProviderError> {
        let password = if stored.is_empty() {
            "NULL".to_owned()
        } else {
            quote_literal(stored)
        };
        self.execute(
            &format!("restoring the previous password of role \"{username}\""),
            &format!(
                "ALTER ROLE {} WITH PASSWORD {password}",
                quote_ident(username)
            ),
        )
    }

    fn drop_user(&mut self, username: &str) -> Result<(), ProviderError> {
        self.execute(
            &format!("dropping role \"{username}\""),
            &format!("DROP ROLE IF EXISTS {}", quote_ident(username)),
        )
    }

    /// NOLOGIN and an expired `VALID UNTIL` from `pg_roles` (any admin may read it); the
    /// stored verifier against `password` from `pg_authid` (a superuser admin only).
    fn explain_refusal(
        &mut self,
        username: &str,
        password: &Secret,
    ) -> Result<RefusalFacts, ProviderError> {
        let action = format!("looking at role \"{username}\" after a refused login");
        let row = self
            .call(self.client().query_opt(
                "SELECT rolcanlogin, rolvaliduntil IS NOT NULL AND rolvaliduntil < now(), \
                        rolvaliduntil::text \
                 FROM pg_roles WHERE rolname = $1",
                &[&username],
            ))
            .map_err(|e| e.into_provider(&self.target, &action))?;
        let Some(row) = row else {
            return Ok(RefusalFacts {
                password: PasswordMatch::Absent,
                obstacle: None,
            });
        };
        let (can_login, expired, until): (bool, bool, Option<String>) =
            (row.get(0), row.get(1), row.get(2));
        let obstacle = if !can_login {
            Some(format!(
                "role \"{username}\" is NOLOGIN (ALTER ROLE {} LOGIN allows it)",
                quote_ident(username)
            ))
        } else if expired {
            Some(format!(
                "the password of role \"{username}\" expired at {} (VALID UNTIL)",
                until.unwrap_or_default()
            ))
        } else {
            None
        };
        let password = match self.read_stored(username)? {
            StoredCredential::Absent => PasswordMatch::Absent,
            StoredCredential::Stored(stored) => {
                let stored = (!stored.is_empty()).then_some(stored.as_str());
                match scram::stored_matches(stored, username, password) {
                    Some(true) => PasswordMatch::Matches,
                    Some(false) => PasswordMatch::Differs,
                    None => PasswordMatch::Unknown,
                }
            }
            StoredCredential::Unreadable { .. } => PasswordMatch::Unknown,
        };
        Ok(RefusalFacts { password, obstacle })
    }

    fn login(&self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        login_on(self.session.runtime(), &self.target, username, password)
    }

    fn tls_status(&mut self) -> TlsStatus {
        match self.call(self.client().query_opt(
            "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )) {
            Ok(Some(row)) if row.get::<_, bool>(0) => TlsStatus::Encrypted {
                protocol: row.get::<_, Option<String>>(1).unwrap_or_default(),
                cipher: row.get(2),
            },
            Ok(Some(_)) => TlsStatus::Plaintext,
            _ => TlsStatus::Unknown,
        }
    }
}

/// Logs in as `username` on a fresh connection to the target's database, within the
/// connect timeout, on `runtime`. A missing database counts as success: PostgreSQL
/// authenticates before it looks the database up.
pub(super) fn login_on(
    runtime: &Runtime,
    target: &Target,
    username: &str,
    password: &Secret,
) -> Result<(), ProviderError> {
    let action = format!("logging in as \"{username}\"");
    match connect_on(runtime, target, &login_name(target, username), password) {
        Ok(client) => {
            drop(client);
            Ok(())
        }
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => Ok(()),
        Err(e) => Err(e.into_provider(target, &action)),
    }
}

/// The SCRAM-SHA-256 verifier sent instead of the password, so the plaintext never
/// reaches the server's statement log.
fn verifier(password: &Secret) -> String {
    postgres_protocol::password::scram_sha_256(password.expose().as_bytes())
}

/// `"name"` with every `"` doubled: the exact name, whatever it contains.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with every `'` doubled (standard_conforming_strings is on for our sessions).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::kind::ProviderKind;

    #[test]
    fn identifiers_and_literals_are_doubled_not_stripped() {
        assert_eq!(
            quote_ident(r#"app"; DROP ROLE x; --"#),
            r#""app""; DROP ROLE x; --""#
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn supabase_logins_carry_the_project_reference_and_sql_names_do_not() {
        let mut t = Target {
            kind: ProviderKind::PostgresqlSupabase,
            host: "db".into(),
            port: 5432,
            database: String::new(),
            admin_user: "postgres".into(),
            admin_pass: Secret::new("x"),
            project_reference: "abcd1234".into(),
            timeouts: Default::default(),
            tls: Default::default(),
        };
        assert_eq!(login_name(&t, "app"), "app.abcd1234");
        assert_eq!(quote_ident("app"), "\"app\"");
        t.kind = ProviderKind::Postgresql;
        assert_eq!(login_name(&t, "app"), "app");
    }

    #[test]
    fn verifier_has_nothing_to_escape() {
        let v = postgres_protocol::password::scram_sha_256("p'\"\\$ø".as_bytes());
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(!v.contains('\'') && !v.contains('\\'));
    }
}

#[cfg(test)]
mod admin_option_tests {
    use super::*;

    #[test]
    fn admin_option_is_needed_from_postgresql_16_on() {
        let p = |v, admin_option| RolePrivileges {
            server_version_num: v,
            admin_is_superuser: false,
            managed_is_superuser: false,
            admin_option,
        };
        assert_eq!(p(150_008, false).missing("sk", "app"), None);
        let hint = p(160_004, false).missing("sk", "app").unwrap();
        assert!(
            hint.contains("GRANT \"app\" TO \"sk\" WITH ADMIN OPTION"),
            "{hint}"
        );
        assert_eq!(p(170_000, true).missing("sk", "app"), None);
        let superuser = RolePrivileges {
            managed_is_superuser: true,
            ..p(150_000, true)
        };
        assert!(
            superuser
                .missing("sk", "app")
                .unwrap()
                .contains("SUPERUSER")
        );
        let as_super = RolePrivileges {
            admin_is_superuser: true,
            ..superuser
        };
        assert_eq!(as_super.missing("sk", "app"), None);
    }
}
