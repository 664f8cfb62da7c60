//! Valkey 8 and 9 and Redis 8 (Redis 7 is the base server, tests/it/redis.rs). As for the
//! base Redis, each test starts a server of its own from the version's binary: with an
//! ACL file for the shared scenarios, in memory for the timeouts, TLS-only (and a
//! plaintext-only one) for the TLS checks, and without ACLs for the "legacy" path
//! (`CONFIG SET requirepass`).

use crate::support::db::redis::{Mode, RedisServer};

pub fn start(var: &str, mode: Mode) -> Option<RedisServer> {
    RedisServer::start_from(var, &format!("the matrix server binary {var}"), mode)
}

macro_rules! redis_version {
    ($module:ident, $var:literal) => {
        pub mod $module {
            use crate::support::db::db_test;
            use crate::support::db::redis::Mode;

            crate::scenarios::shared_scenarios!(
                $crate::matrix::redis::start($var, Mode::AclFile),
                verify_fails_rolls_back
            );
            crate::scenarios::timeout_scenarios!($crate::matrix::redis::start(
                $var,
                Mode::MemoryOnly
            ));
            crate::tls_tests!(crate::tls::redis::from_bin_env($var, $var));

            db_test!(
                a_server_without_acls_rotates_requirepass,
                $crate::matrix::redis::start($var, Mode::NoAcl),
                |r| { crate::redis::rotates_requirepass_without_acls(r) }
            );
            db_test!(
                requirepass_survives_a_restart_with_a_config_file,
                $crate::matrix::redis::start($var, Mode::NoAclConfigFile),
                crate::redis::requirepass_is_kept_in_the_config_file
            );
        }
    };
}
