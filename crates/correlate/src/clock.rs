//! The correlation runner's notion of "now": event time that keeps moving.
//!
//! The correlator's timers (group wait, fold window, auto-resolve, repeat) must measure the
//! time *of the signals*, not the time the runner happens to read them: a runner catching
//! up after a restart, a backfill of last week's metrics or a simulator replaying a day in
//! two minutes would otherwise squeeze an hour of signals into a few seconds of timers and
//! fold or resolve incidents that were never related.
//!
//! Pure event time has the opposite flaw: when signals stop (the fault is over, the source
//! went quiet), event time stops too and nothing would ever auto-resolve. So
//! [`SignalClock`] reads **the newest signal time seen, advanced by the wall time elapsed
//! since it was seen**, and never runs ahead of the wall clock (a source with a clock in
//! the future cannot resolve everyone's incidents early), nor backwards.
//!
//! Live, signals arrive moments after they happen and the clock is the wall clock minus
//! that delay; in a replay it follows the data.

use serde::{Deserialize, Serialize};

/// Event time advanced by wall time (see the module docs). All times are Unix ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalClock {
    /// The newest signal time seen, and the wall time when it was seen.
    newest: Option<(i64, i64)>,
    /// The last time [`now`](Self::now) returned: the clock never goes back.
    last: i64,
}

impl SignalClock {
    /// A clock that has seen no signal: it reads the wall clock until one arrives.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a signal that happened at `event_ms`, read at wall time `wall_ms`.
    pub fn observe(&mut self, event_ms: i64, wall_ms: i64) {
        let event_ms = event_ms.min(wall_ms);
        if self.newest.is_none_or(|(newest, _)| event_ms > newest) {
            self.newest = Some((event_ms, wall_ms));
        }
    }

    /// The current time at wall time `wall_ms`.
    ///
    /// Before the first signal it is the wall clock, but that reading does not hold the
    /// clock back: a replay of older signals (a backfill, a catch-up) then starts at their
    /// time. Nothing is timed before the first signal (an empty correlator has no timers;
    /// a restored one restores its clock too).
    pub fn now(&mut self, wall_ms: i64) -> i64 {
        let Some((event, seen)) = self.newest else {
            return wall_ms;
        };
        let now = event
            .saturating_add(wall_ms.saturating_sub(seen).max(0))
            .min(wall_ms);
        self.last = self.last.max(now);
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wall_clock_until_a_signal_arrives_then_follows_it_back() {
        let mut c = SignalClock::new();
        assert_eq!(c.now(10_000_000), 10_000_000);
        // A replay of signals from an hour ago starts at their time.
        c.observe(10_000_000 - 3_600_000, 10_000_500);
        assert_eq!(c.now(10_000_500), 10_000_000 - 3_600_000);
    }

    #[test]
    fn follows_replayed_signals_and_advances_with_wall_time_between_them() {
        let mut c = SignalClock::new();
        let wall = 10_000_000;
        c.observe(1_000_000, wall);
        assert_eq!(c.now(wall), 1_000_000);
        // 2 s of wall time later, no newer signal: 2 s of signal time passed.
        assert_eq!(c.now(wall + 2_000), 1_002_000);
        // A replay jumps an hour ahead in 10 ms of wall time.
        c.observe(4_600_000, wall + 2_010);
        assert_eq!(c.now(wall + 2_010), 4_600_000);
        // An older (late) signal does not move it.
        c.observe(1_500_000, wall + 2_020);
        assert_eq!(c.now(wall + 2_020), 4_600_010);
    }

    #[test]
    fn never_runs_ahead_of_the_wall_clock_nor_backwards() {
        let mut c = SignalClock::new();
        c.observe(9_000, 5_000);
        assert_eq!(c.now(5_000), 5_000, "a future timestamp is clamped");
        assert_eq!(
            c.now(4_000),
            5_000,
            "a wall clock step back does not go back"
        );
        assert_eq!(c.now(6_000), 6_000);
    }

    #[test]
    fn survives_a_checkpoint() {
        let mut c = SignalClock::new();
        c.observe(1_000, 50_000);
        let json = serde_json::to_string(&c).unwrap();
        let mut back: SignalClock = serde_json::from_str(&json).unwrap();
        assert_eq!(back.now(51_000), c.now(51_000));
    }
}
