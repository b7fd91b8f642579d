//! Tumbling windows: fixed-size, non-overlapping, aligned to the epoch, so every
//! timestamp is in exactly one window and every node computes the same boundaries.

use super::{Window, align_down};

/// The window of size `size_ms` (> 0) containing `t`.
pub fn assign(t: i64, size_ms: i64) -> Window {
    let start = align_down(t, size_ms);
    Window::new(start, start.saturating_add(size_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aligns_to_multiples_of_the_size() {
        assert_eq!(assign(0, 60_000), Window::new(0, 60_000));
        assert_eq!(assign(59_999, 60_000), Window::new(0, 60_000));
        assert_eq!(assign(60_000, 60_000), Window::new(60_000, 120_000));
        assert_eq!(assign(-1, 60_000), Window::new(-60_000, 0));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let w = assign(i64::MAX, 60_000);
        assert!(w.contains(i64::MAX - 1) && w.end == i64::MAX);
        let w = assign(i64::MIN, 7);
        assert!(w.contains(i64::MIN));
    }

    proptest! {
        #[test]
        fn window_contains_its_timestamp(t in -1_000_000_000_000i64..1_000_000_000_000, size in 1i64..10_000_000) {
            let w = assign(t, size);
            prop_assert!(w.contains(t));
            prop_assert_eq!(w.end - w.start, size);
            prop_assert_eq!(w.start.rem_euclid(size), 0);
        }
    }
}
