//! Process exit codes, in one place so README.md, the systemd unit's
//! `RestartPreventExitStatus=` and the code agree. The numbers are part of the interface:
//! service managers and scripts act on them, so they never change.

/// Why the process exits, as the number the operating system sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Exit {
    /// Clean stop: a signal, or the secret was deleted / access revoked while running.
    Ok = 0,
    /// Any other runtime failure.
    Failure = 1,
    /// The command line is wrong.
    Usage = 2,
    /// Identity, local config or provider configuration is unusable (fix files, then restart).
    Config = 3,
    /// Another machine holds the agent lock for this secret (HTTP 409).
    Locked = 4,
    /// At start-up the secret does not exist or this machine has no access (HTTP 404/403).
    SecretGone = 5,
    /// At start-up the database could not be reached or the admin lacks privileges.
    Database = 6,
    /// `test` found a failing check.
    CheckFailed = 7,
    /// The rotation worker crashed or hung; a restart finishes any journaled rotation.
    WorkerCrashed = 70,
    /// A second SIGINT/SIGTERM arrived while the first clean stop was under way (128 + 2).
    Interrupted = 130,
}

impl Exit {
    /// Every exit code, in numeric order.
    pub const ALL: [Exit; 10] = [
        Exit::Ok,
        Exit::Failure,
        Exit::Usage,
        Exit::Config,
        Exit::Locked,
        Exit::SecretGone,
        Exit::Database,
        Exit::CheckFailed,
        Exit::WorkerCrashed,
        Exit::Interrupted,
    ];

    /// The number the process exits with.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// What the code means, in a few words (the top-level `--help` lists them).
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "stopped cleanly, or nothing to do",
            Exit::Failure => "another runtime failure",
            Exit::Usage => "bad command line or setting",
            Exit::Config => "unusable identity, key, local config or provider",
            Exit::Locked => "another machine holds the agent lock (HTTP 409)",
            Exit::SecretGone => "the secret does not exist or this machine has no access",
            Exit::Database => {
                "at start-up the database is unreachable or the admin lacks privileges"
            }
            Exit::CheckFailed => "`test` found a failing check",
            Exit::WorkerCrashed => "a thread crashed or a database job hung; a restart finishes it",
            Exit::Interrupted => "a second SIGINT/SIGTERM, or Ctrl+C at the password prompt",
        }
    }

    /// Whether restarting the service cannot help: the cause is in the files or on the
    /// server, and a restart loop would only hide it.
    pub const fn restart_is_futile(self) -> bool {
        matches!(
            self,
            Exit::Usage | Exit::Config | Exit::Locked | Exit::SecretGone
        )
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        // Every code is below 256, so the conversion to u8 is exact.
        std::process::ExitCode::from(e.code() as u8)
    }
}

/// Exit codes after which restarting the service cannot help (`RestartPreventExitStatus=`).
pub const DO_NOT_RESTART: [Exit; 4] = {
    let mut out = [Exit::Ok; 4];
    let mut n = 0;
    let mut i = 0;
    while i < Exit::ALL.len() {
        if Exit::ALL[i].restart_is_futile() {
            out[n] = Exit::ALL[i];
            n += 1;
        }
        i += 1;
    }
    assert!(n == out.len(), "DO_NOT_RESTART has the wrong length");
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_numbers() {
        let codes: Vec<i32> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 70, 130]);
        let readme = include_str!("../README.md");
        for e in Exit::ALL {
            assert!(
                readme.contains(&format!("\n| {} |", e.code())),
                "README.md's exit-code table lacks {e:?}"
            );
        }
        assert_eq!(
            DO_NOT_RESTART,
            [Exit::Usage, Exit::Config, Exit::Locked, Exit::SecretGone]
        );
    }
}
