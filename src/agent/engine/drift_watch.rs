//! Drift: the database stops accepting the secret's live value while no rotation is in
//! flight. This file decides what a refused login means and when to look again; the
//! engine's `drift.rs` does the I/O (the login, the admin's view, the repair).
//!
//! Only a wrong password is repaired. A refusal the password does not explain (NOLOGIN, a
//! `pg_hba.conf` reject, a locked or expired account, a disabled Redis user) is reported
//! once and never "repaired": setting the same password again would change nothing, and
//! every failed login it costs can lock the account for everyone (MySQL's
//! FAILED_LOGIN_ATTEMPTS, MariaDB's max_password_errors). So:
//!
//! - a check makes at most one login as the managed user, and a repair sets the password
//!   without logging in; the next check (at the next poll) is what proves it;
//! - after a refused login the admin is asked what it sees (`Provider::explain_refusal`:
//!   does the stored verifier match the live value, is the account NOLOGIN or locked);
//!   while that explains the refusal, later checks ask the admin again instead of logging
//!   in, so a known refusal costs one failed login, not one per poll;
//! - where the admin cannot tell, logins are retried with backoff (the drift interval,
//!   doubling, at most [`MAX_BACKOFF`]);
//! - at most [`MAX_REPAIRS`] repairs in [`REPAIR_WINDOW`]: a password something else keeps
//!   setting back is reported, not fought over.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::providers::{PasswordMatch, Refusal, RefusalFacts};

/// Repairs allowed within one [`REPAIR_WINDOW`] (README: "What happens when things break").
pub const MAX_REPAIRS: usize = 3;
/// The window the repair cap counts in.
pub const REPAIR_WINDOW: Duration = Duration::from_secs(3600);
/// The longest wait between two logins that are expected to fail.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// How the engine watches for drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftPolicy {
    /// How often an idle agent logs in with the live value; `None` turns the check off.
    pub interval: Option<Duration>,
    /// Whether a wrong password found is repaired (set the live value again) or only
    /// reported.
    pub repair: bool,
    /// The window [`MAX_REPAIRS`] counts in (tests shorten it).
    pub repair_window: Duration,
}

impl Default for DriftPolicy {
    fn default() -> Self {
        DriftPolicy {
            interval: Some(Duration::from_secs(60)),
            repair: true,
            repair_window: REPAIR_WINDOW,
        }
    }
}

/// What a refused login means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The password is wrong, or the user is gone: setting the live value fixes it.
    WrongPassword(String),
    /// The database refuses the account for another reason: setting the password again
    /// would fix nothing.
    NotThePassword(String),
}

/// Judges a refused login from what the server's code said, what the admin saw (when the
/// admin could be asked), and whether the agent itself set the live value at the check
/// before. The admin's facts decide when they can; the code only when they cannot.
pub fn judge(code: Refusal, facts: Option<&RefusalFacts>, just_repaired: bool) -> Verdict {
    let facts = facts.cloned().unwrap_or_default();
    if let Some(obstacle) = facts.obstacle {
        return Verdict::NotThePassword(obstacle);
    }
    match facts.password {
        PasswordMatch::Matches => {
            return Verdict::NotThePassword(
                "the database's stored password is the live value's, so it refuses the login for another reason (pg_hba.conf or host rules, a blocked account?)"
                    .into(),
            );
        }
        PasswordMatch::Differs => {
            return Verdict::WrongPassword(
                "the database's stored password is not the live value's".into(),
            );
        }
        PasswordMatch::Absent => {
            return Verdict::WrongPassword("the user does not exist".into());
        }
        PasswordMatch::Unknown => {}
    }
    if just_repaired {
        return Verdict::NotThePassword(
            "the login is refused although the agent set the live value at the check before, so the password is not the problem (NOLOGIN, pg_hba.conf or host rules, a locked account?)"
                .into(),
        );
    }
    match code {
        Refusal::NotPermitted => {
            Verdict::NotThePassword("the server refuses the account whatever the password".into())
        }
        Refusal::BadPassword | Refusal::Unclear => {
            Verdict::WrongPassword("the server refuses the password".into())
        }
    }
}

/// Whether the admin's view shows why logins fail without another login: an obstacle,
/// or a stored password that is not the live value's (or no user at all).
fn admin_sees_it(facts: &RefusalFacts) -> bool {
    facts.obstacle.is_some()
        || matches!(
            facts.password,
            PasswordMatch::Differs | PasswordMatch::Absent
        )
}

/// What the engine is to do after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing new: keep reporting what is reported.
    Nothing,
    /// Set the live value again (journaled); the next check logs in to prove it.
    Repair,
}

/// A refusal being reported.
#[derive(Debug, Clone)]
struct Refused {
    /// What the heartbeat says, and the log said once.
    report: String,
    /// Logins refused in a row: the backoff's exponent.
    failed_logins: u32,
    /// The admin's view explains the refusal: ask it again rather than log in.
    admin_explains: bool,
    /// The agent set the live value at the last check; the next login proves it.
    repaired: bool,
    /// A login was refused after a repair: until a login succeeds (or the admin shows a
    /// wrong password again), a refusal is not the password.
    repair_did_not_help: bool,
}

/// The drift watch of one agent: when the next check is due, what is being reported, and
/// the repairs within the cap's window.
#[derive(Debug)]
pub struct DriftWatch {
    policy: DriftPolicy,
    next_check: Instant,
    refused: Option<Refused>,
    repairs: VecDeque<Instant>,
}

impl DriftWatch {
    pub fn new(policy: DriftPolicy, now: Instant) -> Self {
        DriftWatch {
            policy,
            next_check: now + policy.interval.unwrap_or(Duration::ZERO),
            refused: None,
            repairs: VecDeque::new(),
        }
    }

    pub fn policy(&self) -> DriftPolicy {
        self.policy
    }

    /// Whether a check is due now.
    pub fn due(&self, now: Instant) -> bool {
        self.policy.interval.is_some() && now >= self.next_check
    }

    /// What the heartbeat is to say while a refusal is known.
    pub fn report(&self) -> Option<&str> {
        self.refused.as_ref().map(|r| r.report.as_str())
    }

    /// The agent set the live value since the refusal began: a refusal now is not the
    /// password (unless the admin shows otherwise).
    pub fn just_repaired(&self) -> bool {
        self.refused
            .as_ref()
            .is_some_and(|r| r.repaired || r.repair_did_not_help)
    }

    /// A known refusal the admin can see: the next check asks the admin first and logs
    /// in only when the admin no longer explains it.
    pub fn ask_admin_first(&self) -> bool {
        self.refused.as_ref().is_some_and(|r| r.admin_explains)
    }

    fn interval(&self) -> Duration {
        self.policy.interval.unwrap_or(MAX_BACKOFF)
    }

    /// Whether a repair is allowed now (repair mode, under the cap); drops repairs that
    /// left the window.
    fn may_repair(&mut self, now: Instant) -> bool {
        while self
            .repairs
            .front()
            .is_some_and(|at| now.duration_since(*at) >= self.policy.repair_window)
        {
            self.repairs.pop_front();
        }
        self.policy.repair && self.repairs.len() < MAX_REPAIRS
    }

    /// When the cap lets the next repair happen.
    fn cap_lifts_in(&self, now: Instant) -> Duration {
        self.repairs
            .front()
            .map(|at| (*at + self.policy.repair_window).saturating_duration_since(now))
            .unwrap_or_default()
    }

    /// The live value logged in. Returns what to log when that ends a refusal: whether
    /// the agent repaired it, and the refusal it ends.
    pub fn logged_in(&mut self, now: Instant) -> Option<(bool, String)> {
        self.next_check = now + self.interval();
        self.refused.take().map(|r| (r.repaired, r.report))
    }

    /// The admin's view at a check that asked it first (see [`DriftWatch::ask_admin_first`]).
    /// `Some(step)`: it still explains the refusal (or shows a wrong password the agent
    /// may now repair), so no login is needed; `None`: log in.
    pub fn admin_says(&mut self, facts: &RefusalFacts, now: Instant) -> Option<Step> {
        if !admin_sees_it(facts) {
            return None;
        }
        if facts.obstacle.is_none() && self.may_repair(now) {
            return Some(Step::Repair);
        }
        self.next_check = now + self.interval();
        Some(Step::Nothing)
    }

    /// A login with the live value was refused, judged as `verdict`; `facts` is what the
    /// admin saw (if it could be asked). Returns the report (to log and heartbeat when it
    /// changed: `changed`) and the step to take.
    pub fn refused(
        &mut self,
        verdict: Verdict,
        facts: Option<&RefusalFacts>,
        cause: &str,
        now: Instant,
    ) -> (Step, String, bool) {
        let failed_logins = self.refused.as_ref().map_or(0, |r| r.failed_logins) + 1;
        let repair_did_not_help = self.just_repaired();
        let (step, report) = match &verdict {
            Verdict::NotThePassword(why) => (
                Step::Nothing,
                format!("{cause}; not a wrong password, so the agent does not repair it: {why}"),
            ),
            Verdict::WrongPassword(why) if !self.policy.repair => (
                Step::Nothing,
                format!("{cause}; {why}; detect-only mode, not repairing"),
            ),
            Verdict::WrongPassword(why) if !self.may_repair(now) => (
                Step::Nothing,
                format!(
                    "{cause}; {why}; not repairing: the agent repaired drift {MAX_REPAIRS} times within {} s (the cap), and may again in {} s",
                    self.policy.repair_window.as_secs(),
                    self.cap_lifts_in(now).as_secs().max(1)
                ),
            ),
            Verdict::WrongPassword(why) => (Step::Repair, format!("{cause}; {why}; repairing")),
        };
        let admin_explains = step == Step::Nothing && facts.is_some_and(admin_sees_it);
        let changed = self.report() != Some(report.as_str());
        self.next_check = if admin_explains {
            now + self.interval()
        } else {
            now + backoff(self.interval(), failed_logins)
        };
        self.refused = Some(Refused {
            report: report.clone(),
            failed_logins,
            admin_explains,
            repaired: false,
            repair_did_not_help,
        });
        (step, report, changed)
    }

    /// The live value was set again: counted against the cap, proved by the next check's
    /// login at the next poll.
    pub fn repaired(&mut self, now: Instant) {
        self.repairs.push_back(now);
        self.next_check = now;
        if let Some(r) = &mut self.refused {
            r.repaired = true;
            r.admin_explains = false;
        }
    }

    /// The repair failed before it changed anything the agent knows of; reported, and
    /// tried again with backoff.
    pub fn repair_failed(&mut self, report: String, now: Instant) -> bool {
        let changed = self.report() != Some(report.as_str());
        let failed_logins = self.refused.as_ref().map_or(1, |r| r.failed_logins);
        let repair_did_not_help = self.refused.as_ref().is_some_and(|r| r.repair_did_not_help);
        self.next_check = now + backoff(self.interval(), failed_logins);
        self.refused = Some(Refused {
            report,
            failed_logins,
            admin_explains: false,
            repaired: false,
            repair_did_not_help,
        });
        changed
    }

    /// The check could not be made (the live value or the database out of reach): try
    /// again at the next interval, keeping what is reported.
    pub fn check_skipped(&mut self, now: Instant) {
        self.next_check = now + self.interval();
    }
}

/// The wait before the `n`th login in a row that is expected to fail: the interval,
/// doubling, at most [`MAX_BACKOFF`] (or the interval, when that is longer).
pub fn backoff(interval: Duration, n: u32) -> Duration {
    let doubled = interval.saturating_mul(1u32 << n.saturating_sub(1).min(20));
    doubled.min(MAX_BACKOFF.max(interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(password: PasswordMatch, obstacle: Option<&str>) -> RefusalFacts {
        RefusalFacts {
            password,
            obstacle: obstacle.map(str::to_owned),
        }
    }

    #[test]
    fn only_a_wrong_password_is_judged_repairable() {
        use PasswordMatch::*;
        let wrong = |v: &Verdict| matches!(v, Verdict::WrongPassword(_));
        // The admin's view decides when it can.
        assert!(!wrong(&judge(
            Refusal::BadPassword,
            Some(&facts(Differs, Some("NOLOGIN"))),
            false
        )));
        assert!(!wrong(&judge(
            Refusal::BadPassword,
            Some(&facts(Matches, None)),
            false
        )));
        assert!(wrong(&judge(
            Refusal::NotPermitted,
            Some(&facts(Differs, None)),
            false
        )));
        assert!(wrong(&judge(
            Refusal::Unclear,
            Some(&facts(Absent, None)),
            false
        )));
        // Otherwise the server's code, unless the agent just set the password itself.
        assert!(wrong(&judge(
            Refusal::BadPassword,
            Some(&facts(Unknown, None)),
            false
        )));
        assert!(wrong(&judge(Refusal::Unclear, None, false)));
        assert!(!wrong(&judge(Refusal::NotPermitted, None, false)));
        assert!(!wrong(&judge(Refusal::BadPassword, None, true)));
    }

    #[test]
    fn a_repair_that_did_not_help_is_not_repeated_while_the_login_stays_refused() {
        let t0 = Instant::now();
        let mut w = DriftWatch::new(DriftPolicy::default(), t0);
        let (step, _, _) = w.refused(
            judge(Refusal::Unclear, None, w.just_repaired()),
            None,
            "drift",
            t0,
        );
        assert_eq!(step, Step::Repair);
        w.repaired(t0);
        for n in 1..5u32 {
            let at = t0 + Duration::from_secs(u64::from(n) * 3600);
            let verdict = judge(Refusal::Unclear, None, w.just_repaired());
            assert!(
                matches!(verdict, Verdict::NotThePassword(_)),
                "check {n}: {verdict:?}"
            );
            assert_eq!(w.refused(verdict, None, "drift", at).0, Step::Nothing);
        }
        // The admin shows a wrong password again: that is repaired.
        let differs = facts(PasswordMatch::Differs, None);
        let verdict = judge(Refusal::Unclear, Some(&differs), w.just_repaired());
        assert!(matches!(verdict, Verdict::WrongPassword(_)));
        // A login that works ends it all.
        assert!(w.logged_in(t0).is_some());
        assert!(!w.just_repaired());
    }

    #[test]
    fn repairs_are_capped_within_the_window() {
        let t0 = Instant::now();
        let policy = DriftPolicy {
            interval: Some(Duration::from_secs(1)),
            repair: true,
            repair_window: Duration::from_secs(100),
        };
        let mut w = DriftWatch::new(policy, t0);
        let wrong = || Verdict::WrongPassword("changed".into());
        for i in 0..MAX_REPAIRS as u64 {
            let now = t0 + Duration::from_secs(i * 10);
            let (step, _, _) = w.refused(wrong(), None, "drift", now);
            assert_eq!(step, Step::Repair, "repair {i}");
            w.repaired(now);
            assert!(w.due(now) && w.just_repaired());
            w.logged_in(now);
        }
        let (step, report, changed) =
            w.refused(wrong(), None, "drift", t0 + Duration::from_secs(50));
        assert_eq!(step, Step::Nothing);
        assert!(
            changed && report.contains("the cap") && report.contains("in 50 s"),
            "{report}"
        );
        // Once the first repair leaves the window, the next one may happen.
        let (step, _, _) = w.refused(wrong(), None, "drift", t0 + Duration::from_secs(100));
        assert_eq!(step, Step::Repair);
    }

    #[test]
    fn a_refusal_the_admin_explains_costs_one_login_and_others_back_off() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let policy = DriftPolicy {
            interval: Some(second),
            ..DriftPolicy::default()
        };
        let mut w = DriftWatch::new(policy, t0);
        let nologin = facts(PasswordMatch::Matches, Some("role \"app\" is NOLOGIN"));
        let verdict = judge(Refusal::NotPermitted, Some(&nologin), false);
        let (step, report, changed) = w.refused(verdict.clone(), Some(&nologin), "drift", t0);
        assert_eq!(step, Step::Nothing);
        assert!(changed && report.contains("NOLOGIN"), "{report}");
        assert!(w.ask_admin_first());
        // While the admin still sees it, no login: the admin's answer is the check.
        assert_eq!(w.admin_says(&nologin, t0 + second), Some(Step::Nothing));
        // Fixed: log in again.
        assert_eq!(
            w.admin_says(&facts(PasswordMatch::Matches, None), t0 + second),
            None
        );

        // The admin cannot tell (pg_hba): logins back off, 1 s, 2 s, 4 s ...
        let mut w = DriftWatch::new(policy, t0);
        let hba = facts(PasswordMatch::Matches, None);
        let mut at = t0;
        for n in 1..=4u32 {
            let (step, _, changed) = w.refused(
                judge(Refusal::NotPermitted, Some(&hba), false),
                Some(&hba),
                "drift",
                at,
            );
            assert_eq!(step, Step::Nothing);
            assert_eq!(changed, n == 1, "reported once");
            assert!(!w.ask_admin_first());
            let wait = second * (1 << (n - 1));
            assert!(!w.due(at + wait - Duration::from_millis(1)) && w.due(at + wait));
            at += wait;
        }
        assert_eq!(backoff(second, 40), MAX_BACKOFF);
    }

    #[test]
    fn detect_only_with_a_readable_verifier_asks_the_admin_not_the_login() {
        let t0 = Instant::now();
        let policy = DriftPolicy {
            interval: Some(Duration::from_secs(1)),
            repair: false,
            ..DriftPolicy::default()
        };
        let mut w = DriftWatch::new(policy, t0);
        let differs = facts(PasswordMatch::Differs, None);
        let (step, report, _) = w.refused(
            judge(Refusal::BadPassword, Some(&differs), false),
            Some(&differs),
            "drift",
            t0,
        );
        assert_eq!(step, Step::Nothing);
        assert!(report.contains("detect-only"), "{report}");
        assert!(w.ask_admin_first());
        assert_eq!(w.admin_says(&differs, t0), Some(Step::Nothing));
        // A human put the right password back: log in to see it.
        assert_eq!(w.admin_says(&facts(PasswordMatch::Matches, None), t0), None);
    }
}
