//! The database families the agent knows, by their wire names (`providerType`), and
//! what each is like before any connection: its display name, default port, and whether
//! this build has its driver.

use std::fmt;
use std::str::FromStr;

/// A database family, as named by the sync config's `providerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Postgresql,
    PostgresqlSupabase,
    Mysql,
    Redis,
    Mongodb,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::Postgresql,
        ProviderKind::PostgresqlSupabase,
        ProviderKind::Mysql,
        ProviderKind::Redis,
        ProviderKind::Mongodb,
    ];

    /// The wire name (`providerType`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Postgresql => "postgresql",
            ProviderKind::PostgresqlSupabase => "postgresql_supabase",
            ProviderKind::Mysql => "mysql",
            ProviderKind::Redis => "redis",
            ProviderKind::Mongodb => "mongodb",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            ProviderKind::Postgresql => "PostgreSQL",
            ProviderKind::PostgresqlSupabase => "PostgreSQL (Supabase)",
            ProviderKind::Mysql => "MySQL",
            ProviderKind::Redis => "Redis",
            ProviderKind::Mongodb => "MongoDB",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            ProviderKind::Postgresql | ProviderKind::PostgresqlSupabase => 5432,
            ProviderKind::Mysql => 3306,
            ProviderKind::Redis => 6379,
            ProviderKind::Mongodb => 27017,
        }
    }

    /// The user a secret means when neither its value nor the sync config names one:
    /// Redis authenticates `default` when no name is given; the others have no such user.
    pub fn implicit_user(self) -> Option<&'static str> {
        match self {
            ProviderKind::Redis => Some("default"),
            _ => None,
        }
    }

    /// Whether this binary was built with the driver for this kind.
    pub fn is_compiled_in(self) -> bool {
        match self {
            ProviderKind::Postgresql | ProviderKind::PostgresqlSupabase => {
                cfg!(feature = "postgres")
            }
            ProviderKind::Mysql => cfg!(feature = "mysql"),
            ProviderKind::Redis => cfg!(feature = "redis"),
            ProviderKind::Mongodb => cfg!(feature = "mongodb"),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `providerType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProvider(pub String);

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
        write!(
            f,
            "unknown provider type \"{}\"{}; known types: {}",
            self.0,
            crate::suggest::did_you_mean(&self.0, known.iter().copied()),
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownProvider {}

impl FromStr for ProviderKind {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_kinds_round_trip_and_unknown_lists_known() {
        for k in ProviderKind::ALL {
            assert_eq!(k.as_str().parse::<ProviderKind>().unwrap(), k);
        }
        let e = "oracle".parse::<ProviderKind>().unwrap_err().to_string();
        assert!(
            e.contains("oracle") && e.contains("postgresql_supabase") && e.contains("mongodb"),
            "{e}"
        );
    }
}
