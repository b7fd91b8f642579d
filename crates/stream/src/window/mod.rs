//! Which window(s) an event-time timestamp belongs to.
//!
//! A window is the half-open interval `[start, end)` of event time in milliseconds. The
//! engine supports the three kinds ksqlDB and Kafka Streams have — [tumbling]
//! (fixed, non-overlapping), [hopping] (fixed size, overlapping, advancing by a
//! step) and [session] (per key, grown by activity and closed by a gap of
//! inactivity) — plus [`WindowSpec::Unwindowed`] for a plain `GROUP BY` table whose rows
//! never close. Assignment is pure arithmetic on the timestamp, total for every `i64`
//! (bounds saturate instead of overflowing).

pub mod hopping;
pub mod session;
pub mod tumbling;

use serde::{Deserialize, Serialize};

/// One window: event times `start <= t < end`, in epoch milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// First millisecond in the window.
    pub start: i64,
    /// First millisecond after the window.
    pub end: i64,
}

impl Window {
    /// The window `[start, end)`.
    pub fn new(start: i64, end: i64) -> Self {
        Self { start, end }
    }

    /// Whether `t` falls inside.
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// The watermark at which the window closes: `end + grace` (saturating).
    pub fn close_time(&self, grace_ms: i64) -> i64 {
        self.end.saturating_add(grace_ms)
    }

    /// Whether the window is closed under `watermark`: `end + grace <= watermark`.
    pub fn is_closed(&self, grace_ms: i64, watermark: Option<i64>) -> bool {
        watermark.is_some_and(|wm| self.close_time(grace_ms) <= wm)
    }
}

/// How records are grouped in time: a plain data structure the SQL compiler builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
// Externally tagged: the checkpoint encoding (postcard) cannot read internally tagged enums.
#[serde(rename_all = "snake_case")]
pub enum WindowSpec {
    /// `WINDOW TUMBLING (SIZE n)`: windows `[k·size, (k+1)·size)`.
    Tumbling {
        /// Window length, ms (> 0).
        size_ms: i64,
    },
    /// `WINDOW HOPPING (SIZE n, ADVANCE BY m)`: windows `[k·advance, k·advance + size)`;
    /// each timestamp is in `size / advance` (rounded up) windows.
    Hopping {
        /// Window length, ms (> 0).
        size_ms: i64,
        /// Distance between window starts, ms (0 < advance <= size).
        advance_ms: i64,
    },
    /// `WINDOW SESSION (gap)`: per key, events less than `gap` apart share a window; an
    /// event at `t` alone makes the window `[t, t + gap)`.
    Session {
        /// Inactivity gap, ms (> 0).
        gap_ms: i64,
    },
    /// No `WINDOW` clause: one row per key that is updated forever (a ksqlDB table
    /// aggregate such as `session_stats`). Only `EMIT CHANGES` makes sense for it.
    Unwindowed,
}

impl WindowSpec {
    /// Checks the sizes; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            WindowSpec::Tumbling { size_ms } if size_ms <= 0 => Err(format!(
                "tumbling window size must be positive, got {size_ms} ms"
            )),
            WindowSpec::Hopping {
                size_ms,
                advance_ms,
            } if size_ms <= 0 || advance_ms <= 0 => Err(format!(
                "hopping window size and advance must be positive, got size {size_ms} ms, advance {advance_ms} ms"
            )),
            WindowSpec::Hopping {
                size_ms,
                advance_ms,
            } if advance_ms > size_ms => Err(format!(
                "hopping window advance ({advance_ms} ms) must not exceed its size ({size_ms} ms)"
            )),
            WindowSpec::Session { gap_ms } if gap_ms <= 0 => {
                Err(format!("session gap must be positive, got {gap_ms} ms"))
            }
            _ => Ok(()),
        }
    }

    /// The fixed-grid windows containing `t` (tumbling and hopping), in ascending start
    /// order, appended to `out`. Sessions and unwindowed specs append nothing: their
    /// windows depend on state.
    pub fn assign_aligned(&self, t: i64, out: &mut Vec<Window>) {
        match *self {
            WindowSpec::Tumbling { size_ms } => out.push(tumbling::assign(t, size_ms)),
            WindowSpec::Hopping {
                size_ms,
                advance_ms,
            } => hopping::assign(t, size_ms, advance_ms, out),
            WindowSpec::Session { .. } | WindowSpec::Unwindowed => {}
        }
    }
}

/// `floor(t / step) * step`, saturating at `i64::MIN`.
pub(crate) fn align_down(t: i64, step: i64) -> i64 {
    t.div_euclid(step).saturating_mul(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        assert!(WindowSpec::Tumbling { size_ms: 0 }.validate().is_err());
        let err = WindowSpec::Hopping {
            size_ms: 10,
            advance_ms: 20,
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("must not exceed"), "{err}");
        assert!(WindowSpec::Session { gap_ms: -1 }.validate().is_err());
        assert!(WindowSpec::Unwindowed.validate().is_ok());
    }

    #[test]
    fn closes_at_end_plus_grace() {
        let w = Window::new(0, 10);
        assert!(!w.is_closed(5, None));
        assert!(!w.is_closed(5, Some(14)));
        assert!(w.is_closed(5, Some(15)));
        assert!(Window::new(0, i64::MAX).close_time(5) == i64::MAX);
    }

    #[test]
    fn spec_serializes_as_tagged_data() {
        let spec = WindowSpec::Hopping {
            size_ms: 60_000,
            advance_ms: 10_000,
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(json, r#"{"hopping":{"size_ms":60000,"advance_ms":10000}}"#);
        assert_eq!(serde_json::from_str::<WindowSpec>(&json).unwrap(), spec);
    }
}
