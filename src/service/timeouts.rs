//! The systemd unit's `TimeoutStartSec=`, `TimeoutStopSec=` and `WatchdogSec=`, derived
//! from the agent's own timeouts so that systemd never kills an agent that is doing what
//! it was designed to do, and always kills one that is not.

use std::time::Duration;

use crate::agent::Timing;
use crate::api::HttpTimeouts;

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
        Self::new(&Timing::default(), &HttpTimeouts::default())
    }

    pub fn new(timing: &Timing, http: &HttpTimeouts) -> UnitTimeouts {
        // Start-up until READY=1: one sync-config request (a failing one reports READY
        // itself), the database check (bounded by the job deadline), the first heartbeat.
        let start = http.total + timing.job_deadline + http.total + MARGIN;
        // SIGTERM: the job in flight may run until it is declared hung (twice its
        // deadline); meanwhile the poll and heartbeat threads finish their last request.
        let stop = timing.job_deadline * 2 + http.total * 2 + MARGIN;
        // The heartbeat loop pings every min(heartbeat, WatchdogSec/2) and may then block
        // in one heartbeat request: WatchdogSec must exceed the heartbeat interval plus
        // the HTTP timeout.
        let watchdog = timing.heartbeat + http.total + MARGIN;
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
        let timing = Timing::default();
        assert!(t.stop > (timing.job_deadline * 2).as_secs());
        assert!(
            t.watchdog / 2 >= 30,
            "ping interval stays at the heartbeat's"
        );
    }
}
