//! In-memory stand-ins for the engine's two seams: [`FakeServer`] (a control plane with
//! programmable answers that records every call) and [`FakeDatabase`] (users with
//! passwords and stored forms, logins, and a failure injectable at each step). Nothing
//! here touches a network or a real database.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::agent::control_plane::ControlPlane;
use crate::agent::engine::Databases;
use crate::api::{ApiError, HeartbeatStatus};
use crate::providers::{
    FailureKind, PasswordMatch, Provider, ProviderError, Refusal, RefusalFacts, StoredCredential,
    Target,
};
use crate::secret::Secret;

/// How the fake server answers every call but the poll (the engine is handed the poll's
/// answer directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// 200s.
    Normally,
    /// 404: the secret is gone.
    Gone,
    /// 503, every time.
    Down,
}

#[derive(Debug)]
struct ServerState {
    answers: Answers,
    /// Calls still to be answered 503 before the answers above apply.
    down_for: usize,
    live: String,
    calls: Vec<String>,
    /// Every text the agent sent (rejection errors), to check that none holds a password.
    sent: Vec<String>,
}

/// A control plane for one secret.
pub struct FakeServer(Mutex<ServerState>);

impl FakeServer {
    pub fn new(answers: Answers, live: &str) -> Arc<Self> {
        Arc::new(FakeServer(Mutex::new(ServerState {
            answers,
            down_for: 0,
            live: live.to_owned(),
            calls: Vec::new(),
            sent: Vec::new(),
        })))
    }

    /// The next `n` calls are answered 503.
    pub fn down_for(&self, n: usize) {
        self.0.lock().unwrap().down_for = n;
    }

    /// The calls so far, one word each: `live`, `confirm`, `reject`, `heartbeat:<status>`.
    pub fn calls(&self) -> String {
        self.0.lock().unwrap().calls.join(" ")
    }

    pub fn sent(&self) -> Vec<String> {
        self.0.lock().unwrap().sent.clone()
    }

    fn answer(&self, call: String) -> Result<(), ApiError> {
        let mut state = self.0.lock().unwrap();
        state.calls.push(call);
        if state.down_for > 0 {
            state.down_for -= 1;
            return Err(ApiError::Status {
                call: "a fake call",
                secret_id: "sk_1".into(),
                status: 503,
                message: "fake".into(),
            });
        }
        let status = match state.answers {
            Answers::Normally => return Ok(()),
            Answers::Gone => 404,
            Answers::Down => 503,
        };
        Err(ApiError::Status {
            call: "a fake call",
            secret_id: "sk_1".into(),
            status,
            message: "fake".into(),
        })
    }
}

impl ControlPlane for FakeServer {
    fn live_value(&self, _secret_id: &str) -> Result<Secret, ApiError> {
        self.answer("live".into())?;
        Ok(Secret::new(self.0.lock().unwrap().live.clone()))
    }

    fn confirm_rotation(&self, _secret_id: &str, _rotation_id: &str) -> Result<(), ApiError> {
        self.answer("confirm".into())
    }

    fn reject_rotation(
        &self,
        _secret_id: &str,
        _rotation_id: &str,
        error: &str,
    ) -> Result<(), ApiError> {
        self.0.lock().unwrap().sent.push(error.to_owned());
        self.answer("reject".into())
    }

    fn heartbeat(&self, _secret_id: &str, status: &HeartbeatStatus) -> Result<(), ApiError> {
        self.0
            .lock()
            .unwrap()
            .sent
            .push(status.message().to_owned());
        self.answer(format!("heartbeat:{}", status.health()))
    }
}

/// What goes wrong in the fake database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Setting a password (create or change) fails.
    Apply,
    /// Every login is refused whatever the password, as for a NOLOGIN role; the admin
    /// sees the obstacle.
    Verify,
    /// Putting a stored credential back, or dropping a user, fails.
    Restore,
    /// Nothing connects.
    Unreachable,
}

#[derive(Debug)]
struct DbState {
    fault: Fault,
    /// The admin cannot read stored forms (as a PostgreSQL CREATEROLE admin).
    stored_hidden: bool,
    /// User → password. The stored form of a password is `hash(<password>)`.
    users: BTreeMap<String, String>,
}

/// A database with users, shared by every connection the engine opens.
#[derive(Clone)]
pub struct FakeDatabase {
    target: Target,
    state: Arc<Mutex<DbState>>,
}

fn stored_form(password: &str) -> String {
    format!("hash({password})")
}

impl FakeDatabase {
    pub fn new(target: Target, fault: Fault, users: &[(&str, &str)]) -> Self {
        FakeDatabase {
            target,
            state: Arc::new(Mutex::new(DbState {
                fault,
                stored_hidden: false,
                users: users
                    .iter()
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .collect(),
            })),
        }
    }

    /// From now on the admin cannot read stored forms.
    pub fn hide_stored(&self) {
        self.state.lock().unwrap().stored_hidden = true;
    }

    /// The user's password, `None` when there is no such user.
    pub fn password(&self, user: &str) -> Option<String> {
        self.state.lock().unwrap().users.get(user).cloned()
    }

    fn fault(&self) -> Fault {
        self.state.lock().unwrap().fault
    }

    fn error(&self, kind: FailureKind, action: &str) -> ProviderError {
        ProviderError::new(&self.target, kind, action, "injected by the test")
    }

    fn connect(&self) -> Result<(), ProviderError> {
        match self.fault() {
            Fault::Unreachable => Err(self.error(FailureKind::Unreachable, "connecting")),
            _ => Ok(()),
        }
    }

    fn set(&self, user: &str, password: &str, fault: Fault) -> Result<(), ProviderError> {
        if self.fault() == fault {
            return Err(self.error(FailureKind::Database, "changing a user"));
        }
        self.state
            .lock()
            .unwrap()
            .users
            .insert(user.to_owned(), password.to_owned());
        Ok(())
    }
}

impl Provider for FakeDatabase {
    fn target(&self) -> &Target {
        &self.target
    }

    fn check_admin(&mut self) -> Result<(), ProviderError> {
        self.connect()
    }

    fn user_exists(&mut self, username: &str) -> Result<bool, ProviderError> {
        Ok(self.password(username).is_some())
    }

    fn read_stored(&mut self, username: &str) -> Result<StoredCredential, ProviderError> {
        let hidden = self.state.lock().unwrap().stored_hidden;
        Ok(match self.password(username) {
            None => StoredCredential::Absent,
            Some(_) if hidden => StoredCredential::Unreadable {
                reason: "the admin cannot read stored forms".into(),
            },
            Some(p) => StoredCredential::Stored(stored_form(&p)),
        })
    }

    fn create_user(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        self.set(username, password.expose(), Fault::Apply)
    }

    fn change_password(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        self.set(username, password.expose(), Fault::Apply)
    }

    fn restore_stored(&mut self, username: &str, stored: &str) -> Result<(), ProviderError> {
        let password = stored
            .strip_prefix("hash(")
            .and_then(|s| s.strip_suffix(')'))
            .expect("a stored form this database wrote");
        self.set(username, password, Fault::Restore)
    }

    fn drop_user(&mut self, username: &str) -> Result<(), ProviderError> {
        if self.fault() == Fault::Restore {
            return Err(self.error(FailureKind::Database, "dropping a user"));
        }
        self.state.lock().unwrap().users.remove(username);
        Ok(())
    }

    fn login(&self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        self.connect()?;
        let refused = |refusal| {
            Err(self
                .error(FailureKind::AuthRejected, "logging in")
                .with_refusal(refusal))
        };
        if self.fault() == Fault::Verify {
            return refused(Refusal::NotPermitted);
        }
        match self.password(username) {
            Some(p) if p == password.expose() => Ok(()),
            _ => refused(Refusal::BadPassword),
        }
    }

    fn explain_refusal(
        &mut self,
        username: &str,
        password: &Secret,
    ) -> Result<RefusalFacts, ProviderError> {
        let obstacle = (self.fault() == Fault::Verify).then(|| "the role is NOLOGIN".to_owned());
        let password = match self.password(username) {
            None => PasswordMatch::Absent,
            Some(p) if p == password.expose() => PasswordMatch::Matches,
            Some(_) => PasswordMatch::Differs,
        };
        Ok(RefusalFacts { password, obstacle })
    }
}

impl Databases for FakeDatabase {
    fn open(&self, _target: &Target) -> Result<Box<dyn Provider>, ProviderError> {
        self.connect()?;
        Ok(Box::new(self.clone()))
    }

    fn verify_only(
        &self,
        _target: &Target,
        username: &str,
        password: &Secret,
    ) -> Result<(), ProviderError> {
        self.verify_login(username, password)
    }
}
