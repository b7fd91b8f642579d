//! Session windows: per key, a burst of activity is one window, and a gap of at least
//! `gap` ms with no events ends it. An event at `t` on its own spans `[t, t + gap)`; an
//! event whose span overlaps existing sessions of its key merges them all into one, which
//! is why session aggregates must be mergeable.
//!
//! This module only finds *which* sessions merge; the operator owns the state.

use std::ops::Range;

use super::Window;

/// The span of a single event at `t`: `[t, t + gap)`.
pub fn span(t: i64, gap_ms: i64) -> Window {
    Window::new(t, t.saturating_add(gap_ms))
}

/// Given one key's sessions sorted by start and pairwise disjoint, returns the window an
/// event at `t` ends up in and the index range of the sessions it merges with (empty
/// when it starts a new session at index `range.start`).
/// `window_of` reads the window out of whatever the caller stores per session.
pub fn merge_target<T>(
    sessions: &[T],
    window_of: impl Fn(&T) -> Window,
    t: i64,
    gap_ms: i64,
) -> (Window, Range<usize>) {
    let own = span(t, gap_ms);
    // Sessions are sorted and disjoint, so those overlapping `own` are contiguous.
    let first = sessions.partition_point(|s| window_of(s).end <= own.start);
    let mut last = first;
    let mut merged = own;
    while let Some(w) = sessions.get(last).map(&window_of)
        && w.start < own.end
    {
        merged.start = merged.start.min(w.start);
        merged.end = merged.end.max(w.end);
        last += 1;
    }
    (merged, first..last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_event_spans_one_gap() {
        assert_eq!(
            merge_target(&[] as &[Window], |w| *w, 100, 30),
            (Window::new(100, 130), 0..0)
        );
    }

    #[test]
    fn event_within_gap_extends_the_session() {
        let s = [Window::new(100, 130)];
        assert_eq!(
            merge_target(&s, |w| *w, 120, 30),
            (Window::new(100, 150), 0..1)
        );
        // Exactly one gap later: no overlap, a new session after it.
        assert_eq!(
            merge_target(&s, |w| *w, 130, 30),
            (Window::new(130, 160), 1..1)
        );
        // Out of order, before the session but within the gap.
        assert_eq!(
            merge_target(&s, |w| *w, 80, 30),
            (Window::new(80, 130), 0..1)
        );
        assert_eq!(
            merge_target(&s, |w| *w, 70, 30),
            (Window::new(70, 100), 0..0)
        );
    }

    #[test]
    fn late_event_bridges_two_sessions() {
        let s = [
            Window::new(0, 30),
            Window::new(50, 80),
            Window::new(200, 230),
        ];
        assert_eq!(merge_target(&s, |w| *w, 25, 30), (Window::new(0, 80), 0..2));
        assert_eq!(
            merge_target(&s, |w| *w, 100, 30),
            (Window::new(100, 130), 2..2)
        );
    }
}
