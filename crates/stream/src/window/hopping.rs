//! Hopping windows: fixed size, starting every `advance` ms, so they overlap and one
//! timestamp belongs to several windows (a 5-minute window advancing by 1 minute gives a
//! "last 5 minutes" value every minute).

use super::{Window, align_down};

/// Appends every window of size `size_ms` starting at a multiple of `advance_ms` that
/// contains `t`, in ascending start order. Needs `0 < advance_ms <= size_ms`.
pub fn assign(t: i64, size_ms: i64, advance_ms: i64, out: &mut Vec<Window>) {
    let last_start = align_down(t, advance_ms);
    // Starts s with s <= t < s + size, i.e. s > t - size.
    let lowest = t.saturating_sub(size_ms);
    let first = out.len();
    let mut start = last_start;
    while start > lowest {
        out.push(Window::new(start, start.saturating_add(size_ms)));
        match start.checked_sub(advance_ms) {
            Some(s) => start = s,
            None => break,
        }
    }
    out[first..].reverse();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn five_minutes_advancing_by_one_gives_five_windows() {
        let mut out = Vec::new();
        assign(125_000, 300_000, 60_000, &mut out);
        let starts: Vec<i64> = out.iter().map(|w| w.start).collect();
        assert_eq!(starts, vec![-120_000, -60_000, 0, 60_000, 120_000]);
        assert!(out.iter().all(|w| w.contains(125_000)));
    }

    #[test]
    fn advance_equal_to_size_is_tumbling() {
        let mut out = Vec::new();
        assign(61_000, 60_000, 60_000, &mut out);
        assert_eq!(out, vec![Window::new(60_000, 120_000)]);
    }

    proptest! {
        #[test]
        fn assigns_exactly_the_containing_windows(
            t in -10_000_000i64..10_000_000,
            advance in 1i64..5_000,
            factor in 1i64..6,
            extra in 0i64..5_000,
        ) {
            let size = (advance * factor + extra % advance.max(1)).max(advance);
            let mut out = Vec::new();
            assign(t, size, advance, &mut out);
            // Brute force: every multiple of advance in (t - size, t].
            let mut expected = Vec::new();
            let mut s = (t - size).div_euclid(advance) * advance;
            while s <= t {
                if s > t - size {
                    expected.push(Window::new(s, s + size));
                }
                s += advance;
            }
            prop_assert_eq!(out, expected);
        }
    }
}
