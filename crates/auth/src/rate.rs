//! Per-API-key request rate limits: GCRA (`governor`), one limiter per key with the key's
//! own rate, answered with the time until the next request would be allowed.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// One limiter per key id; a changed rate replaces the key's limiter.
#[derive(Debug, Default)]
pub struct KeyRateLimits {
    limiters: Mutex<HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>>,
    clock: DefaultClock,
}

impl KeyRateLimits {
    /// Takes one request from key `id`'s allowance of `per_minute` (burst of the same
    /// size); `Err(wait)` when it is used up.
    pub fn check(&self, id: &str, per_minute: u32) -> Result<(), Duration> {
        let rate = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let limiter = {
            let mut limiters = self
                .limiters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match limiters.get(id) {
                Some((r, l)) if *r == rate.get() => Arc::clone(l),
                _ => {
                    let l = Arc::new(RateLimiter::direct(Quota::per_minute(rate)));
                    limiters.insert(id.to_owned(), (rate.get(), Arc::clone(&l)));
                    l
                }
            }
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets a key (after revocation).
    pub fn forget(&self, id: &str) {
        self.limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits() {
        let limits = KeyRateLimits::default();
        for _ in 0..3 {
            limits.check("k", 3).unwrap();
        }
        let wait = limits.check("k", 3).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        limits.check("other", 3).unwrap();
    }
}
