//! Token budgets: per incident and per UTC day, so a storm of incidents cannot run up an
//! unbounded bill. A call is refused *before* it goes out when its worst case (the prompt
//! estimate plus the completion limit) would exceed either budget; what a call really
//! used is recorded after it.

use std::collections::HashMap;
use std::sync::Mutex;

const DAY_MS: i64 = 86_400_000;

/// Which budget refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BudgetExhausted {
    /// The incident has used its tokens.
    #[error("the per-incident token budget is exhausted")]
    Incident,
    /// Today's tokens are used up.
    #[error("the per-day token budget is exhausted")]
    Day,
}

#[derive(Debug, Default)]
struct Usage {
    day: i64,
    today: u64,
    incidents: HashMap<String, u64>,
}

/// See the module docs. Zero means "no budget" for either limit.
#[derive(Debug)]
pub struct TokenBudget {
    per_incident: u64,
    per_day: u64,
    usage: Mutex<Usage>,
}

impl TokenBudget {
    /// Budgets of `per_incident` and `per_day` tokens (0: unlimited).
    pub fn new(per_incident: u64, per_day: u64) -> Self {
        Self {
            per_incident,
            per_day,
            usage: Mutex::new(Usage::default()),
        }
    }

    fn usage(&self, now_ms: i64) -> std::sync::MutexGuard<'_, Usage> {
        // One-assignment updates: a poisoned lock holds consistent numbers.
        let mut u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let day = now_ms.div_euclid(DAY_MS);
        if u.day != day {
            // A new day: both budgets start over (and the per-incident map stays small).
            *u = Usage {
                day,
                ..Usage::default()
            };
        }
        u
    }

    /// Whether a call of up to `tokens` for `incident` fits both budgets at `now_ms`.
    pub fn check(&self, incident: &str, tokens: u64, now_ms: i64) -> Result<(), BudgetExhausted> {
        let u = self.usage(now_ms);
        let used = u.incidents.get(incident).copied().unwrap_or(0);
        if self.per_incident > 0 && used.saturating_add(tokens) > self.per_incident {
            return Err(BudgetExhausted::Incident);
        }
        if self.per_day > 0 && u.today.saturating_add(tokens) > self.per_day {
            return Err(BudgetExhausted::Day);
        }
        Ok(())
    }

    /// Records `tokens` really used for `incident` at `now_ms`.
    pub fn record(&self, incident: &str, tokens: u64, now_ms: i64) {
        let mut u = self.usage(now_ms);
        u.today = u.today.saturating_add(tokens);
        let e = u.incidents.entry(incident.to_owned()).or_insert(0);
        *e = e.saturating_add(tokens);
    }

    /// Tokens used today (as of `now_ms`).
    pub fn used_today(&self, now_ms: i64) -> u64 {
        self.usage(now_ms).today
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_either_budget_and_resets_daily() {
        let b = TokenBudget::new(1_000, 1_500);
        assert_eq!(b.check("a", 1_000, 0), Ok(()));
        b.record("a", 900, 0);
        assert_eq!(b.check("a", 200, 0), Err(BudgetExhausted::Incident));
        assert_eq!(b.check("b", 700, 0), Err(BudgetExhausted::Day));
        assert_eq!(b.check("b", 600, 0), Ok(()));
        assert_eq!(b.used_today(1), 900);
        assert_eq!(b.check("a", 1_000, DAY_MS), Ok(()), "a new day");
        let unlimited = TokenBudget::new(0, 0);
        assert_eq!(unlimited.check("a", u64::MAX / 2, 0), Ok(()));
    }
}
