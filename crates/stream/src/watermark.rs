//! Event-time progress: how far the engine believes the input has got, per source
//! partition and overall.
//!
//! Records arrive out of order, so a window cannot be finished the moment a later record
//! shows up. Each partition's watermark is its highest event time minus the configured
//! *bounded out-of-orderness*; the overall watermark is the minimum over the partitions
//! that have seen data, because a slow partition may still deliver older records. It
//! never moves backwards.
//!
//! A partition that stops receiving data would hold the minimum back forever, so with an
//! idle timeout a partition that saw nothing for that long (in processing time, as told by
//! [`Watermarks::tick`]) is left out until it delivers again. When every partition is
//! idle the watermark advances to the most advanced partition's, so the last windows of a
//! quiet stream still close.
//!
//! Processing time enters only through `tick(now)`, never from a clock read here, so the
//! whole state is a deterministic function of the calls made, and checkpoints restore it
//! exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Watermark settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WatermarkConfig {
    /// How far behind the newest event time a record may arrive and still be on time, ms.
    pub max_out_of_orderness_ms: i64,
    /// Leave a partition out of the minimum after this long without data (processing time,
    /// ms); `None` waits for every partition forever.
    pub idle_timeout_ms: Option<i64>,
}

impl Default for WatermarkConfig {
    /// 5 seconds of out-of-orderness, partitions idle after 30 seconds.
    fn default() -> Self {
        Self {
            max_out_of_orderness_ms: 5_000,
            idle_timeout_ms: Some(30_000),
        }
    }
}

impl WatermarkConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_out_of_orderness_ms < 0 {
            return Err(format!(
                "max out-of-orderness must not be negative, got {} ms",
                self.max_out_of_orderness_ms
            ));
        }
        if let Some(t) = self.idle_timeout_ms
            && t <= 0
        {
            return Err(format!("idle timeout must be positive, got {t} ms"));
        }
        Ok(())
    }
}

/// `max_event_time` of an expected partition that has delivered nothing yet.
const NO_DATA: i64 = i64::MIN;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PartitionClock {
    max_event_time: i64,
    /// Processing time of the last tick at which this partition had delivered data.
    last_active_ms: Option<i64>,
    seen_since_tick: bool,
    idle: bool,
}

/// Per-partition event-time progress and the overall watermark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermarks {
    config: WatermarkConfig,
    partitions: BTreeMap<u32, PartitionClock>,
    current: Option<i64>,
}

impl Watermarks {
    /// No partition has seen data yet: no watermark.
    pub fn new(config: WatermarkConfig) -> Self {
        Self {
            config,
            partitions: BTreeMap::new(),
            current: None,
        }
    }

    /// The overall watermark: every record with an event time at or below it is assumed
    /// to have arrived. `None` until some partition has seen data.
    pub fn current(&self) -> Option<i64> {
        self.current
    }

    /// The settings.
    pub fn config(&self) -> &WatermarkConfig {
        &self.config
    }

    /// A partition's own watermark, when it has seen data.
    pub fn partition(&self, partition: u32) -> Option<i64> {
        self.partitions
            .get(&partition)
            .filter(|p| p.max_event_time != NO_DATA)
            .map(|p| {
                p.max_event_time
                    .saturating_sub(self.config.max_out_of_orderness_ms)
            })
    }

    /// Declares partitions the source has before they deliver anything: until each has
    /// delivered a record (or gone idle), it holds the watermark back. Without this, the
    /// first partition read would set the watermark alone and the others' older records
    /// would find their windows closed — the result would depend on read order.
    pub fn expect_partitions(&mut self, partitions: impl IntoIterator<Item = u32>) {
        for partition in partitions {
            self.partitions.entry(partition).or_insert(PartitionClock {
                max_event_time: NO_DATA,
                last_active_ms: None,
                seen_since_tick: false,
                idle: false,
            });
        }
    }

    /// Records that `partition` delivered a record with `event_time`; returns the new
    /// overall watermark if it advanced.
    pub fn observe(&mut self, partition: u32, event_time: i64) -> Option<i64> {
        let mut recompute = false;
        match self.partitions.get_mut(&partition) {
            Some(p) => {
                p.seen_since_tick = true;
                if p.idle {
                    p.idle = false;
                    recompute = true;
                }
                if event_time > p.max_event_time {
                    p.max_event_time = event_time;
                    recompute = true;
                }
            }
            None => {
                self.partitions.insert(
                    partition,
                    PartitionClock {
                        max_event_time: event_time,
                        last_active_ms: None,
                        seen_since_tick: true,
                        idle: false,
                    },
                );
                recompute = true;
            }
        }
        if recompute { self.recompute() } else { None }
    }

    /// Tells the watermark the processing time; partitions silent for longer than the
    /// idle timeout stop holding it back. Returns the new watermark if it advanced.
    pub fn tick(&mut self, now_ms: i64) -> Option<i64> {
        let timeout = self.config.idle_timeout_ms;
        let mut changed = false;
        for p in self.partitions.values_mut() {
            if p.seen_since_tick {
                p.seen_since_tick = false;
                p.last_active_ms = Some(now_ms);
            } else if let Some(timeout) = timeout {
                let since = *p.last_active_ms.get_or_insert(now_ms);
                if !p.idle && now_ms.saturating_sub(since) >= timeout {
                    p.idle = true;
                    changed = true;
                }
            }
        }
        if changed { self.recompute() } else { None }
    }

    fn recompute(&mut self) -> Option<i64> {
        let lag = self.config.max_out_of_orderness_ms;
        let active = self
            .partitions
            .values()
            .filter(|p| !p.idle)
            .map(|p| p.max_event_time)
            .min();
        let basis = match active {
            Some(t) => t,
            None => self.partitions.values().map(|p| p.max_event_time).max()?,
        };
        // An expected partition that has delivered nothing yet: no watermark so far.
        if basis == NO_DATA {
            return None;
        }
        let candidate = basis.saturating_sub(lag);
        if self.current.is_none_or(|c| candidate > c) {
            self.current = Some(candidate);
            Some(candidate)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lag: i64, idle: Option<i64>) -> WatermarkConfig {
        WatermarkConfig {
            max_out_of_orderness_ms: lag,
            idle_timeout_ms: idle,
        }
    }

    #[test]
    fn expected_partitions_hold_the_watermark_until_they_deliver_or_idle() {
        let mut w = Watermarks::new(config(100, Some(1_000)));
        w.expect_partitions([0, 1]);
        assert_eq!(w.observe(0, 5_000), None, "partition 1 has not delivered");
        assert_eq!(w.partition(1), None);
        assert_eq!(w.observe(1, 2_000), Some(1_900));
        assert_eq!(w.observe(1, 6_000), Some(4_900));

        let mut w = Watermarks::new(config(100, Some(1_000)));
        w.expect_partitions([0, 1]);
        assert_eq!(w.observe(0, 5_000), None);
        assert_eq!(w.tick(10), None);
        assert_eq!(w.observe(0, 5_001), None);
        assert_eq!(w.tick(1_010), Some(4_901), "partition 1 went idle");
    }

    #[test]
    fn trails_the_newest_event_by_the_out_of_orderness() {
        let mut w = Watermarks::new(config(100, None));
        assert_eq!(w.current(), None);
        assert_eq!(w.observe(0, 1_000), Some(900));
        assert_eq!(w.observe(0, 950), None, "older record does not move it");
        assert_eq!(w.observe(0, 1_500), Some(1_400));
        assert_eq!(w.current(), Some(1_400));
    }

    #[test]
    fn is_the_minimum_over_partitions_and_never_regresses() {
        let mut w = Watermarks::new(config(0, None));
        w.observe(0, 1_000);
        w.observe(1, 2_000);
        assert_eq!(w.current(), Some(1_000));
        // A partition seen for the first time behind the watermark cannot pull it back.
        w.observe(2, 10);
        assert_eq!(w.current(), Some(1_000));
        w.observe(0, 5_000);
        w.observe(2, 3_000);
        assert_eq!(w.current(), Some(2_000));
    }

    #[test]
    fn idle_partition_stops_holding_the_watermark_back() {
        let mut w = Watermarks::new(config(0, Some(1_000)));
        w.observe(0, 100);
        w.observe(1, 5_000);
        w.tick(0);
        assert_eq!(w.current(), Some(100));
        // Partition 1 keeps delivering, partition 0 is silent.
        w.observe(1, 6_000);
        assert_eq!(w.tick(500), None);
        w.observe(1, 7_000);
        assert_eq!(w.tick(1_000), Some(7_000));
        // Partition 0 wakes up: it holds nothing back below the current watermark.
        w.observe(0, 200);
        assert_eq!(w.current(), Some(7_000));
    }

    #[test]
    fn all_idle_advances_to_the_most_advanced_partition() {
        let mut w = Watermarks::new(config(10, Some(100)));
        w.observe(0, 1_000);
        w.observe(1, 3_000);
        w.tick(0);
        assert_eq!(w.current(), Some(990));
        assert_eq!(w.tick(100), Some(2_990));
    }

    #[test]
    fn without_idle_timeout_a_silent_partition_holds_forever() {
        let mut w = Watermarks::new(config(0, None));
        w.observe(0, 100);
        w.observe(1, 5_000);
        for now in 0..10 {
            w.tick(now * 1_000_000);
        }
        assert_eq!(w.current(), Some(100));
    }

    #[test]
    fn rejects_negative_settings() {
        assert!(config(-1, None).validate().is_err());
        assert!(config(0, Some(0)).validate().is_err());
        assert!(WatermarkConfig::default().validate().is_ok());
    }
}
