//! The SQL the MySQL provider sends, built as plain strings by pure functions so unit
//! tests can check every statement in both dialects (MySQL 8 and MariaDB) and both
//! string-escaping modes, including the statement that puts a [`Snapshot`] back.
//!
//! Statements that carry a password come back as [`Secret`], so a stray `{:?}` cannot
//! print them.

use super::hash;
use super::snapshot::Snapshot;
use crate::hex;
use crate::secret::Secret;

/// Which server family speaks on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Mysql,
    Mariadb,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Mysql => "MySQL",
            Flavor::Mariadb => "MariaDB",
        }
    }
}

/// What the admin session's SQL looks like: server family, version, whether a backslash
/// escapes inside string literals (it does not under `NO_BACKSLASH_ESCAPES`), and the
/// round count of the caching_sha2_password hashes the server stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub flavor: Flavor,
    pub version: (u16, u16, u16),
    pub backslash_escapes: bool,
    pub sha2_rounds: u32,
}

/// The round count a MySQL server (8.0.24 and later) hashes caching_sha2_password with.
pub const SHA2_ROUNDS_QUERY: &str = "SELECT @@GLOBAL.caching_sha2_password_digest_rounds";

/// Where `CREATE USER` puts a user that has no account yet.
pub const NEW_ACCOUNT_HOST: &str = "%";

impl Dialect {
    /// The dialect of a session, from `SELECT VERSION()` and `@@SESSION.sql_mode`.
    pub fn from_server(version: &str, sql_mode: &str) -> Dialect {
        let mariadb = version.to_ascii_lowercase().contains("mariadb");
        // MariaDB once prefixed its version with "5.5.5-" for old replication clients.
        let numbers = if mariadb {
            version.strip_prefix("5.5.5-").unwrap_or(version)
        } else {
            version
        };
        let mut parts = numbers
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u16>().unwrap_or(0));
        let version = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        let backslash_escapes = !sql_mode
            .split(',')
            .any(|m| m.trim().eq_ignore_ascii_case("NO_BACKSLASH_ESCAPES"));
        Dialect {
            flavor: if mariadb {
                Flavor::Mariadb
            } else {
                Flavor::Mysql
            },
            version,
            backslash_escapes,
            sha2_rounds: hash::SHA2_DEFAULT_ROUNDS,
        }
    }

    /// Whether the server can say how many rounds its caching_sha2_password hashes have
    /// ([`SHA2_ROUNDS_QUERY`]); older ones all use 5000.
    pub fn reads_sha2_rounds(&self) -> bool {
        self.flavor == Flavor::Mysql && self.version >= (8, 0, 24)
    }

    /// This dialect with the server's caching_sha2_password round count, when it said one.
    pub fn with_sha2_rounds(mut self, rounds: Option<u32>) -> Dialect {
        if let Some(rounds) = rounds {
            self.sha2_rounds = rounds;
        }
        self
    }

    /// A string literal holding exactly `text` under this session's sql_mode: quotes are
    /// doubled, and backslashes doubled too unless `NO_BACKSLASH_ESCAPES` makes them literal.
    /// The session's character set is utf8mb4, so every other byte stands for itself.
    pub fn string(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('\'');
        for c in text.chars() {
            match c {
                '\'' => out.push_str("''"),
                '\\' if self.backslash_escapes => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    }

    /// `'user'@'host'`.
    pub fn account(&self, user: &str, host: &str) -> String {
        format!("{}@{}", self.string(user), self.string(host))
    }

    /// One `ALTER USER` that gives every listed account of `user` the new password, so no
    /// host keeps the old one. Each account is given a hash the server stores as is (see
    /// [`Dialect::password_clause`]); `plugins` holds each host's current plugin, `None`
    /// where it could not be read. Also returns why any account got the plaintext.
    pub fn alter_password(
        &self,
        user: &str,
        accounts: &[(String, Option<String>)],
        password: &Secret,
        salt: &[u8; hash::SHA2_SALT_LEN],
    ) -> (Secret, Vec<String>) {
        let mut notes = Vec::new();
        let clauses: Vec<String> = accounts
            .iter()
            .map(|(host, plugin)| {
                let (clause, note) = self.password_clause(plugin.as_deref(), password, salt);
                if let Some(note) = note {
                    notes.push(format!("account @\"{host}\": {note}"));
                }
                format!("{} {clause}", self.account(user, host))
            })
            .collect();
        (
            Secret::new(format!("ALTER USER {}", clauses.join(", "))),
            notes,
        )
    }

    /// How one account gets the new password, so the plaintext never reaches the server's
    /// statement logs: MariaDB keeps ed25519 accounts on ed25519 and gives every other
    /// account mysql_native_password (what `IDENTIFIED BY` does there); MySQL keeps the
    /// account's plugin. Only a MySQL plugin whose stored form the agent cannot compute (or
    /// an unknown one) gets `IDENTIFIED BY` with the plaintext, and the note says why.
    pub fn password_clause(
        &self,
        plugin: Option<&str>,
        password: &Secret,
        salt: &[u8; hash::SHA2_SALT_LEN],
    ) -> (String, Option<String>) {
        let with_as = |plugin: &str, hash: String| {
            format!(
                "IDENTIFIED WITH {} AS {}",
                self.string(plugin),
                self.string(&hash)
            )
        };
        match (self.flavor, plugin) {
            (Flavor::Mariadb, Some("ed25519")) => (
                format!(
                    "IDENTIFIED VIA {} USING {}",
                    self.string("ed25519"),
                    self.string(&hash::ed25519(password))
                ),
                None,
            ),
            (Flavor::Mariadb, _) => (
                format!(
                    "IDENTIFIED BY PASSWORD {}",
                    self.string(&hash::native(password))
                ),
                None,
            ),
            (Flavor::Mysql, Some(p @ "mysql_native_password")) => {
                (with_as(p, hash::native(password)), None)
            }
            (Flavor::Mysql, Some(p @ "caching_sha2_password")) => (
                with_as(p, hash::caching_sha2(password, salt, self.sha2_rounds)),
                None,
            ),
            (Flavor::Mysql, other) => (
                format!("IDENTIFIED BY {}", self.string(password.expose())),
                Some(match other {
                    Some(p) => format!(
                        "plugin {p} has no stored form the agent can compute, so the password was sent as text"
                    ),
                    None => "its plugin could not be read, so the password was sent as text".into(),
                }),
            ),
        }
    }

    /// The plugin [`Dialect::create_user`] gives a new account: mysql_native_password on
    /// MariaDB and MySQL before 8.0, caching_sha2_password (MySQL's default) from 8.0.
    pub fn new_user_plugin(&self) -> &'static str {
        match self.flavor {
            Flavor::Mysql if self.version >= (8, 0, 0) => "caching_sha2_password",
            _ => "mysql_native_password",
        }
    }

    /// `CREATE USER 'user'@'%'` with the password as a hash of
    /// [`Dialect::new_user_plugin`].
    pub fn create_user(
        &self,
        user: &str,
        password: &Secret,
        salt: &[u8; hash::SHA2_SALT_LEN],
    ) -> Secret {
        let (clause, _) = self.password_clause(Some(self.new_user_plugin()), password, salt);
        Secret::new(format!(
            "CREATE USER {} {clause}",
            self.account(user, NEW_ACCOUNT_HOST),
        ))
    }

    /// Drops the account [`Dialect::create_user`] makes, and no other.
    pub fn drop_user(&self, user: &str) -> String {
        format!(
            "DROP USER IF EXISTS {}",
            self.account(user, NEW_ACCOUNT_HOST)
        )
    }

    /// Whether `IDENTIFIED WITH ... AS` takes a hex literal (MySQL 8.0.17 and later), which
    /// binary hashes such as caching_sha2_password's need.
    pub fn takes_hex_hashes(&self) -> bool {
        self.flavor == Flavor::Mysql && self.version >= (8, 0, 17)
    }

    /// Whether this server can take `hash` back in a restore statement.
    pub fn can_restore_hash(&self, hash: &[u8]) -> bool {
        match self.flavor {
            Flavor::Mariadb => std::str::from_utf8(hash).is_ok(),
            Flavor::Mysql => is_plain(hash) || self.takes_hex_hashes(),
        }
    }

    /// One `ALTER USER` that puts every account of the snapshot back on its stored hash
    /// (never a plaintext): `IDENTIFIED WITH plugin AS hash` on MySQL,
    /// `IDENTIFIED VIA plugin USING hash [OR ...]` on MariaDB.
    pub fn restore(&self, user: &str, snapshot: &Snapshot) -> Result<Secret, String> {
        if snapshot.accounts.is_empty() {
            return Err("the snapshot lists no accounts".into());
        }
        let mut clauses = Vec::with_capacity(snapshot.accounts.len());
        for account in &snapshot.accounts {
            let mut methods = Vec::with_capacity(account.methods.len());
            for m in &account.methods {
                let hash = m.hash()?;
                methods.push((m.plugin.as_str(), self.hash_literal(&hash)?));
            }
            let auth = match (self.flavor, methods.as_slice()) {
                (_, []) => {
                    return Err(format!(
                        "the snapshot of host \"{}\" has no authentication method",
                        account.host
                    ));
                }
                (Flavor::Mysql, [(plugin, hash)]) => {
                    format!("IDENTIFIED WITH {} AS {hash}", self.string(plugin))
                }
                (Flavor::Mysql, _) => {
                    return Err(format!(
                        "host \"{}\" has several authentication methods, which MySQL cannot restore",
                        account.host
                    ));
                }
                (Flavor::Mariadb, methods) => {
                    let alternatives: Vec<String> = methods
                        .iter()
                        .map(|(plugin, hash)| format!("{} USING {hash}", self.string(plugin)))
                        .collect();
                    format!("IDENTIFIED VIA {}", alternatives.join(" OR "))
                }
            };
            clauses.push(format!("{} {auth}", self.account(user, &account.host)));
        }
        Ok(Secret::new(format!("ALTER USER {}", clauses.join(", "))))
    }

    fn hash_literal(&self, hash: &[u8]) -> Result<String, String> {
        if is_plain(hash) || (self.flavor == Flavor::Mariadb && std::str::from_utf8(hash).is_ok()) {
            // Checked just above: valid UTF-8.
            return Ok(self.string(std::str::from_utf8(hash).unwrap_or_default()));
        }
        if self.takes_hex_hashes() {
            return Ok(format!("0x{}", hex::upper(hash)));
        }
        Err("the stored hash is binary and this server version cannot take it back".into())
    }
}

/// Printable ASCII: safe and exact as a quoted literal on every server.
fn is_plain(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x20..0x7f).contains(b))
}

/// The privileges a `SHOW GRANTS` line grants on `*.*`, upper-cased; empty for grants on
/// anything narrower.
pub fn global_privileges(grant_line: &str) -> Vec<String> {
    let Some(rest) = grant_line.strip_prefix("GRANT ") else {
        return Vec::new();
    };
    let Some((privileges, _)) = rest.split_once(" ON *.* TO ") else {
        return Vec::new();
    };
    privileges
        .split(',')
        .map(|p| p.trim().to_ascii_uppercase())
        .collect()
}

/// Whether a user name reaches the server unchanged. The `User` column is utf8mb3 CHAR:
/// characters beyond the Basic Multilingual Plane become `?` and trailing spaces are cut,
/// either of which would hand the password to a different account.
pub fn user_name_problem(name: &str) -> Option<&'static str> {
    if name.chars().any(|c| c as u32 > 0xFFFF) {
        return Some(
            "the user name contains characters outside the Basic Multilingual Plane (such as emoji), which MySQL stores as \"?\"",
        );
    }
    if name.ends_with(' ') {
        return Some("the user name ends in a space, which MySQL drops");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE_NAME: &str = r#"app'"; DROP USER root; -- \'"#;
    const HOSTILE_PW: &str = "p'\"\\$ø`;\\'--\\\\";

    fn mariadb(backslash_escapes: bool) -> Dialect {
        Dialect {
            flavor: Flavor::Mariadb,
            version: (10, 11, 6),
            backslash_escapes,
            sha2_rounds: hash::SHA2_DEFAULT_ROUNDS,
        }
    }

    fn mysql8(backslash_escapes: bool) -> Dialect {
        Dialect {
            flavor: Flavor::Mysql,
            version: (8, 0, 36),
            backslash_escapes,
            sha2_rounds: hash::SHA2_DEFAULT_ROUNDS,
        }
    }

    /// Reads a single-quoted literal the way the server does in the given mode, returning
    /// the text and what follows it.
    fn unquote(sql: &str, backslash_escapes: bool) -> (String, &str) {
        let mut chars = sql.char_indices();
        assert_eq!(
            chars.next().map(|(_, c)| c),
            Some('\''),
            "not a literal: {sql}"
        );
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if backslash_escapes => out.push(chars.next().expect("dangling backslash").1),
                '\'' => {
                    if sql[i + 1..].starts_with('\'') {
                        chars.next();
                        out.push('\'');
                    } else {
                        return (out, &sql[i + 1..]);
                    }
                }
                c => out.push(c),
            }
        }
        panic!("unterminated literal: {sql}");
    }

    #[test]
    fn version_and_sql_mode_pick_the_dialect() {
        let d = Dialect::from_server(
            "10.11.6-MariaDB-0+deb12u1",
            "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION",
        );
        assert_eq!(d, mariadb(true));
        let d = Dialect::from_server("5.5.5-10.4.32-MariaDB", "NO_BACKSLASH_ESCAPES");
        assert_eq!(
            (d.flavor, d.version, d.backslash_escapes),
            (Flavor::Mariadb, (10, 4, 32), false)
        );
        let d = Dialect::from_server(
            "8.0.36",
            "ONLY_FULL_GROUP_BY,no_backslash_escapes,ANSI_QUOTES",
        );
        assert_eq!(d, mysql8(false));
        assert!(d.takes_hex_hashes());
        assert!(!Dialect::from_server("8.0.16", "").takes_hex_hashes());
        assert!(!mariadb(true).takes_hex_hashes());
        // Only MySQL 8.0.24 and later can be asked for their round count.
        assert!(d.reads_sha2_rounds() && !mariadb(true).reads_sha2_rounds());
        assert!(!Dialect::from_server("8.0.23", "").reads_sha2_rounds());
        assert_eq!(d.with_sha2_rounds(None).sha2_rounds, 5000);
        assert_eq!(d.with_sha2_rounds(Some(10_000)).sha2_rounds, 10_000);
    }

    #[test]
    fn literals_are_exact_in_both_escaping_modes() {
        for text in [
            HOSTILE_NAME,
            HOSTILE_PW,
            "",
            "\\",
            "'",
            "ø€\u{1F600}",
            "a\\'b",
            "\\\\'",
        ] {
            for backslash_escapes in [true, false] {
                let d = mariadb(backslash_escapes);
                let quoted = d.string(text);
                let (back, rest) = unquote(&quoted, backslash_escapes);
                assert_eq!(
                    back, text,
                    "mode backslash_escapes={backslash_escapes}: {quoted}"
                );
                assert_eq!(rest, "", "the literal ended early: {quoted}");
            }
        }
        assert_eq!(mariadb(true).string(r"a\'b"), r"'a\\''b'");
        assert_eq!(mariadb(false).string(r"a\'b"), r"'a\''b'");
    }

    #[test]
    fn a_literal_quoted_for_one_mode_is_never_read_differently_in_it() {
        // Under NO_BACKSLASH_ESCAPES "\'" must not be read as an escaped quote: the
        // backslash stays, the quote is doubled.
        let q = mariadb(false).string("x\\");
        assert_eq!(q, "'x\\'");
        assert_eq!(unquote(&q, false), ("x\\".to_owned(), ""));
    }

    const SALT: &[u8; hash::SHA2_SALT_LEN] = b"abcdefghij0123456789";

    #[test]
    fn alter_rotates_every_host_in_one_statement_with_hashes_only() {
        let pw = Secret::new("pw");
        let native = hash::native(&pw);
        let ed = hash::ed25519(&pw);
        let accounts = [
            ("%".to_owned(), Some("mysql_native_password".to_owned())),
            ("localhost".to_owned(), Some("ed25519".to_owned())),
            ("10.0.0.%".to_owned(), None),
        ];
        let (sql, notes) = mariadb(true).alter_password("app", &accounts, &pw, SALT);
        assert_eq!(
            sql.expose(),
            format!(
                "ALTER USER 'app'@'%' IDENTIFIED BY PASSWORD '{native}', \
                 'app'@'localhost' IDENTIFIED VIA 'ed25519' USING '{ed}', \
                 'app'@'10.0.0.%' IDENTIFIED BY PASSWORD '{native}'"
            )
        );
        assert!(notes.is_empty());
        assert!(!sql.expose().contains("'pw'"));
        assert!(
            !format!("{sql:?}").contains(&native),
            "statements with password hashes are redacted in Debug"
        );
    }

    #[test]
    fn mysql_keeps_each_plugin_and_sends_text_only_where_it_must() {
        let pw = Secret::new("s3cret");
        let accounts = [
            ("%".to_owned(), Some("caching_sha2_password".to_owned())),
            ("a".to_owned(), Some("mysql_native_password".to_owned())),
            ("b".to_owned(), Some("sha256_password".to_owned())),
            ("c".to_owned(), None),
        ];
        let (sql, notes) = mysql8(false).alter_password("app", &accounts, &pw, SALT);
        assert_eq!(
            sql.expose(),
            format!(
                "ALTER USER 'app'@'%' IDENTIFIED WITH 'caching_sha2_password' AS '{}', \
                 'app'@'a' IDENTIFIED WITH 'mysql_native_password' AS '{}', \
                 'app'@'b' IDENTIFIED BY 's3cret', 'app'@'c' IDENTIFIED BY 's3cret'",
                hash::caching_sha2(&pw, SALT, 5000),
                hash::native(&pw)
            )
        );
        assert_eq!(notes.len(), 2);
        assert!(notes[0].contains("sha256_password") && notes[1].contains("could not be read"));
        assert!(notes.iter().all(|n| !n.contains("s3cret")));
    }

    #[test]
    fn create_user_uses_the_servers_default_kind_of_hash() {
        let pw = Secret::new("pw");
        assert_eq!(
            mariadb(true).create_user("a", &pw, SALT).expose(),
            format!(
                "CREATE USER 'a'@'%' IDENTIFIED BY PASSWORD '{}'",
                hash::native(&pw)
            )
        );
        assert_eq!(
            mysql8(true).create_user("a", &pw, SALT).expose(),
            format!(
                "CREATE USER 'a'@'%' IDENTIFIED WITH 'caching_sha2_password' AS '{}'",
                hash::caching_sha2(&pw, SALT, 5000)
            )
        );
        let old = Dialect {
            version: (5, 7, 44),
            ..mysql8(true)
        };
        assert!(
            old.create_user("a", &pw, SALT)
                .expose()
                .contains("'mysql_native_password' AS '*")
        );
    }

    #[test]
    fn hostile_names_stay_inside_their_literals() {
        for backslash_escapes in [true, false] {
            let d = mysql8(backslash_escapes);
            let sql = d.create_user(HOSTILE_NAME, &Secret::new(HOSTILE_PW), SALT);
            let rest = sql.expose().strip_prefix("CREATE USER ").unwrap();
            let (name, rest) = unquote(rest, backslash_escapes);
            assert_eq!(name, HOSTILE_NAME);
            let rest = rest.strip_prefix("@").unwrap();
            let (host, rest) = unquote(rest, backslash_escapes);
            assert_eq!(host, "%");
            assert!(!rest.contains(HOSTILE_PW));
            // A plaintext fallback quotes hostile passwords exactly.
            let (clause, _) = d.password_clause(None, &Secret::new(HOSTILE_PW), SALT);
            let (pw, rest) = unquote(
                clause.strip_prefix("IDENTIFIED BY ").unwrap(),
                backslash_escapes,
            );
            assert_eq!((pw.as_str(), rest), (HOSTILE_PW, ""));
        }
    }

    #[test]
    fn drop_touches_only_the_account_a_rotation_creates() {
        assert_eq!(
            mariadb(true).drop_user("it's"),
            "DROP USER IF EXISTS 'it''s'@'%'"
        );
    }

    #[test]
    fn mysql8_restores_with_identified_with_as_and_hex_for_binary_hashes() {
        let native = b"*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9";
        // caching_sha2_password: "$A$005$" + 20 salt bytes (any byte but NUL and '$') + 43 chars.
        let mut sha2 = b"$A$005$".to_vec();
        sha2.extend_from_slice(b"\x01'\\\x7f\x1fabcdefghijklmnop");
        sha2.extend_from_slice(b"0123456789ABCDEFGHIJ0123456789ABCDEFGHIJabc");
        let s = Snapshot::of(&[
            ("%", "mysql_native_password", native),
            ("localhost", "caching_sha2_password", &sha2),
        ]);
        let sql = mysql8(true).restore("app", &s).unwrap();
        assert_eq!(
            sql.expose(),
            format!(
                "ALTER USER 'app'@'%' IDENTIFIED WITH 'mysql_native_password' AS '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9', \
                 'app'@'localhost' IDENTIFIED WITH 'caching_sha2_password' AS 0x{}",
                hex::upper(&sha2)
            )
        );
        assert!(mysql8(true).can_restore_hash(&sha2));
        let old = Dialect {
            version: (8, 0, 16),
            ..mysql8(true)
        };
        assert!(!old.can_restore_hash(&sha2));
        assert!(
            old.restore("app", &s).is_err(),
            "a binary hash must not be sent as a mangled string"
        );
        let two = Snapshot::of(&[("%", "a", b"x"), ("%", "b", b"y")]);
        assert!(mysql8(true).restore("app", &two).is_err());
    }

    #[test]
    fn mysql8_restores_an_empty_hash_as_an_empty_literal() {
        let s = Snapshot::of(&[("%", "mysql_native_password", b"")]);
        assert_eq!(
            mysql8(false).restore("a'b", &s).unwrap().expose(),
            "ALTER USER 'a''b'@'%' IDENTIFIED WITH 'mysql_native_password' AS ''"
        );
    }

    #[test]
    fn mariadb_restores_with_via_using_and_keeps_or_chains() {
        let s = Snapshot::of(&[
            (
                "%",
                "ed25519",
                b"Gv2JI8Env2fd5YGonZ082tX3UAW+yJYldOlj4R1bfK4",
            ),
            ("%", "unix_socket", b""),
            (
                "localhost",
                "mysql_native_password",
                b"*667F407DE7C6AD07358FA38DAED7828A72014B4E",
            ),
        ]);
        assert_eq!(
            mariadb(false).restore("app\\", &s).unwrap().expose(),
            "ALTER USER 'app\\'@'%' IDENTIFIED VIA 'ed25519' USING 'Gv2JI8Env2fd5YGonZ082tX3UAW+yJYldOlj4R1bfK4' OR 'unix_socket' USING '', \
             'app\\'@'localhost' IDENTIFIED VIA 'mysql_native_password' USING '*667F407DE7C6AD07358FA38DAED7828A72014B4E'"
        );
        assert!(
            mariadb(true)
                .restore("app\\", &s)
                .unwrap()
                .expose()
                .starts_with("ALTER USER 'app\\\\'@'%'")
        );
        assert!(
            mariadb(true)
                .restore("x", &Snapshot { accounts: vec![] })
                .is_err()
        );
    }

    #[test]
    fn global_grants_are_read_from_show_grants_lines() {
        assert_eq!(
            global_privileges(
                "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"
            ),
            vec!["ALL PRIVILEGES"]
        );
        assert_eq!(
            global_privileges("GRANT SELECT, CREATE USER ON *.* TO `a`@`%`"),
            vec!["SELECT", "CREATE USER"]
        );
        assert!(global_privileges("GRANT SELECT ON `mysql`.`user` TO `a`@`%`").is_empty());
        assert!(global_privileges("GRANT CREATE USER ON `db`.* TO `a`@`%`").is_empty());
    }

    #[test]
    fn names_the_user_column_would_change_are_refused() {
        assert!(user_name_problem("app\u{1F600}").is_some());
        assert!(user_name_problem("app ").is_some());
        assert!(user_name_problem(" app").is_none());
        assert!(user_name_problem(HOSTILE_NAME).is_none());
        assert!(user_name_problem("øæå€").is_none());
    }
}
