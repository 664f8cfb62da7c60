//! How the engine reaches a database, as a trait: the real drivers ([`Drivers`], through
//! `providers`) or, in the engine's unit tests, an in-memory fake with injectable
//! failures (`tests/fakes.rs`).

use crate::providers::{self, Provider, ProviderError, RefusalFacts, Target};
use crate::secret::Secret;

/// Opens databases for one job at a time. Every method connects afresh: nothing is kept
/// between jobs.
pub trait Databases: Send {
    /// Connects as the admin to the target's database.
    fn open(&self, target: &Target) -> Result<Box<dyn Provider>, ProviderError>;

    /// One login as `username`, as cheaply as the database allows (the drift check).
    fn verify_only(
        &self,
        target: &Target,
        username: &str,
        password: &Secret,
    ) -> Result<(), ProviderError>;

    /// After a refused login: what the admin sees about the user
    /// ([`Provider::explain_refusal`]), on an admin session of its own. The error never
    /// carries the password.
    fn explain_refusal(
        &self,
        target: &Target,
        username: &str,
        password: &Secret,
    ) -> Result<RefusalFacts, ProviderError> {
        self.open(target)?
            .explain_refusal(username, password)
            .map_err(|e| e.redacted(&[password]))
    }
}

/// The databases this binary has drivers for.
pub struct Drivers;

impl Databases for Drivers {
    fn open(&self, target: &Target) -> Result<Box<dyn Provider>, ProviderError> {
        providers::open(target)
    }

    fn verify_only(
        &self,
        target: &Target,
        username: &str,
        password: &Secret,
    ) -> Result<(), ProviderError> {
        providers::verify_only(target, username, password)
    }
}
