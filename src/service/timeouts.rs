//! The systemd unit's `TimeoutStartSec=`, `TimeoutStopSec=` and `WatchdogSec=`, derived
//! from the agent's own timeouts (`defaults.rs`, which the runtime and the HTTP client
//! read too) so that systemd never kills an agent that is doing what it was designed to
//! do, and always kills one that is not.

use std::time::Duration;

use crate::defaults;

/// The agent's defaults this derivation rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentTimeouts {
    pub heartbeat: Duration,
    pub job_deadline: Duration,
    /// HTTP total timeout of one control-plane request.
    pub http_total: Duration,
}

/// The product's defaults.
pub const AGENT_DEFAULTS: AgentTimeouts = AgentTimeouts {
    heartbeat: defaults::HEARTBEAT,
    job_deadline: defaults::JOB_DEADLINE,
    http_total: defaults::HTTP_TOTAL,
};

/// Seconds for the unit's three timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitTimeouts {
    pub start: u64,
    pub stop: u64,
    pub watchdog: u64,
}

/// Slack on top of each sum, for a loaded machine.
const MARGIN: Duration = Duration::from_secs(30);

impl UnitTimeouts {
    pub fn for_defaults() -> UnitTimeouts {
        Self::new(&AGENT_DEFAULTS)
    }

    pub fn new(agent: &AgentTimeouts) -> UnitTimeouts {
        // Start-up until READY=1: one sync-config request (a failing one reports READY
        // itself), the database check (bounded by the job deadline), the first heartbeat.
        let start = agent.http_total + agent.job_deadline + agent.http_total + MARGIN;
        // SIGTERM: the job in flight may run until it is declared hung (twice its
        // deadline); meanwhile the poll and heartbeat threads finish their last request.
        let stop = agent.job_deadline * 2 + agent.http_total * 2 + MARGIN;
        // The heartbeat loop pings every min(heartbeat, WatchdogSec/2) and may then block
        // in one heartbeat request: WatchdogSec must exceed the heartbeat interval plus
        // the HTTP timeout.
        let watchdog = agent.heartbeat + agent.http_total + MARGIN;
        UnitTimeouts {
            start: start.as_secs(),
            stop: stop.as_secs(),
            watchdog: watchdog.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_leave_room_for_what_the_agent_does() {
        let t = UnitTimeouts::for_defaults();
        assert_eq!((t.start, t.stop, t.watchdog), (210, 330, 90));
        assert!(t.stop > (AGENT_DEFAULTS.job_deadline * 2).as_secs());
        assert!(
            t.watchdog / 2 >= 30,
            "ping interval stays at the heartbeat's"
        );
    }
}
