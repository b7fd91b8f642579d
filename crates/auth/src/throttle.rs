//! Slows down password guessing: after `max_failures` consecutive failed logins for a user
//! name or from a client address, further attempts are refused for a wait that doubles with
//! each further failure (capped at 15 minutes). A success clears the user name's count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest wait.
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Entries kept before idle ones are pruned.
const PRUNE_ABOVE: usize = 100_000;
/// An entry idle this long is forgotten.
const IDLE: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

/// Failed-login bookkeeping keyed by user name and by client address.
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    base: Duration,
    state: Mutex<HashMap<String, Failures>>,
}

impl LoginThrottle {
    /// A throttle that locks after `max_failures` failures, first for `base`.
    pub fn new(max_failures: u32, base: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            base,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long the caller must still wait, if any of `keys` is locked.
    pub fn locked(&self, keys: &[&str], now: Instant) -> Option<Duration> {
        let state = self.state();
        keys.iter()
            .filter_map(|k| state.get(*k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Records a failure for each of `keys`; returns the wait now imposed, if any.
    pub fn failed(&self, keys: &[&str], now: Instant) -> Option<Duration> {
        let mut state = self.state();
        if state.len() > PRUNE_ABOVE {
            state.retain(|_, f| now.duration_since(f.last) < IDLE);
        }
        let mut wait = None;
        for key in keys {
            let f = state.entry((*key).to_owned()).or_insert(Failures {
                count: 0,
                locked_until: None,
                last: now,
            });
            f.count = f.count.saturating_add(1);
            f.last = now;
            if f.count >= self.max_failures {
                let doublings = (f.count - self.max_failures).min(20);
                let lock = self.base.saturating_mul(1 << doublings).min(MAX_LOCKOUT);
                f.locked_until = Some(now + lock);
                wait = wait.max(Some(lock));
            }
        }
        wait
    }

    /// Clears the count of `key` after a successful login.
    pub fn succeeded(&self, key: &str) {
        self.state().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_doubles() {
        let t = LoginThrottle::new(3, Duration::from_secs(1));
        let now = Instant::now();
        assert_eq!(t.failed(&["user:a", "ip:1"], now), None);
        assert_eq!(t.failed(&["user:a", "ip:1"], now), None);
        assert_eq!(
            t.failed(&["user:a", "ip:1"], now),
            Some(Duration::from_secs(1))
        );
        assert!(t.locked(&["user:a"], now).is_some());
        assert!(t.locked(&["ip:1"], now + Duration::from_secs(2)).is_none());
        assert_eq!(
            t.failed(&["user:a"], now + Duration::from_secs(2)),
            Some(Duration::from_secs(2))
        );
        t.succeeded("user:a");
        assert!(
            t.locked(&["user:a"], now + Duration::from_secs(2))
                .is_none()
        );
        assert!(t.locked(&["user:b"], now).is_none());
    }
}
