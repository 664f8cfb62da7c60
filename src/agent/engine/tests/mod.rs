//! Unit tests of the engine against in-memory fakes (`fakes.rs`): no network, no database;
//! the real journal, on a temporary directory. `table.rs` runs every journal phase against
//! every server answer and every database outcome, as `table.txt` lists them; `cases.rs`
//! holds the cases a table cannot show (a user the rotation created, a live value naming
//! another user, retries).

mod cases;
mod fakes;
mod table;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::agent::journal::Journal;
use crate::agent::shutdown::Shutdown;
use crate::agent::status::{StateFile, StatusBoard};
use crate::api::SyncConfig;
use crate::providers::{DbTimeouts, ProviderKind, Target};
use crate::secret::{FieldNames, Secret};

use super::{DriftPolicy, Engine, EngineSettings};
use fakes::{Answers, FakeDatabase, FakeServer, Fault};

pub const SECRET: &str = "sk_1";
pub const USER: &str = "app";
pub const ROTATION: &str = "rot_1";
pub const OLD: &str = "old-pw-1";
pub const NEW: &str = "new-pw-2";
/// What a drifted database holds: set by hand, neither value the server knows.
pub const WRONG: &str = "drifted-pw-3";

pub fn target() -> Target {
    Target {
        kind: ProviderKind::Postgresql,
        host: "db.test".into(),
        port: 5432,
        database: "app".into(),
        admin_user: "admin".into(),
        admin_pass: Secret::new("admin-pw"),
        project_reference: String::new(),
        timeouts: DbTimeouts::default(),
        tls: Default::default(),
    }
}

/// A secret value naming `user` and `password`.
pub fn value(user: &str, password: &str) -> String {
    serde_json::json!({"username": user, "password": password}).to_string()
}

/// A sync config; `pending` is a rotation of `USER` to that password.
pub fn sync(pending: Option<&str>) -> SyncConfig {
    SyncConfig {
        provider_type: "postgresql".into(),
        managed_username: USER.into(),
        pending_rotation_id: pending.map(|_| ROTATION.to_owned()),
        pending_value: pending.map(|p| Secret::new(value(USER, p))),
        ..SyncConfig::default()
    }
}

/// A directory of its own for one test's journal, removed afterwards.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ska-engine-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An engine wired to a fake server and a fake database, with its journal and board.
pub struct Rig {
    pub engine: Engine,
    pub server: Arc<FakeServer>,
    pub db: FakeDatabase,
    pub journal: Journal,
    pub board: Arc<StatusBoard>,
    pub shutdown: Arc<Shutdown>,
    pub dir: TempDir,
}

impl Rig {
    /// `live` is the secret's live value on the server; `users` what the database holds.
    pub fn new(answers: Answers, live: &str, fault: Fault, users: &[(&str, &str)]) -> Rig {
        let dir = TempDir::new();
        let journal = Journal::new(dir.0.join(format!("{SECRET}.journal")));
        let server = FakeServer::new(answers, live);
        let db = FakeDatabase::new(target(), fault, users);
        let board = Arc::new(StatusBoard::new(
            None,
            Duration::from_secs(60),
            StateFile::default(),
        ));
        let shutdown = Arc::new(Shutdown::new());
        let engine = Engine::new(EngineSettings {
            cp: server.clone(),
            databases: Box::new(db.clone()),
            secret_id: SECRET.into(),
            board: board.clone(),
            shutdown: shutdown.clone(),
            target: target(),
            fields: FieldNames::default(),
            journal: journal.clone(),
            source: None,
            // A check is due at every idle job.
            drift: DriftPolicy {
                interval: Some(Duration::ZERO),
                ..DriftPolicy::default()
            },
            ack_backoff: Duration::from_millis(1),
        });
        Rig {
            engine,
            server,
            db,
            journal,
            board,
            shutdown,
            dir,
        }
    }

    /// The set-aside copies of a damaged journal.
    pub fn damaged_copies(&self) -> usize {
        std::fs::read_dir(&self.dir.0)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".damaged-"))
            .count()
    }
}
