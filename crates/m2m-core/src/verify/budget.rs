//! The per-process budget for verifications that must ask Clerk (opaque-token cache misses), and
//! a log limiter so a flood produces one line, not one per request.
//!
//! Anyone on the network can present a well-formed random `mt_…` token, and each one not in the
//! cache costs a call to Clerk's Backend API, which Clerk rate-limits per instance. Without a
//! bound, a spray spends the instance's limit and every service's legitimate tokens then fail.
//! The budget is a token bucket (GCRA, from `governor`) running on the crate's injectable
//! [`Clock`], so tests drive it with a manual clock.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::Clock as GovernorClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;

/// How many Clerk verifications this process may start: `burst` at once, refilled at
/// `per_second`. Defaults: burst 50, 10 per second (`M2M_VERIFY_MISS_BURST`,
/// `M2M_VERIFY_MISS_PER_SECOND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissBudget {
    /// Calls that may be made back to back after a quiet period (at least 1).
    pub burst: u32,
    /// Sustained calls per second (at least 1).
    pub per_second: u32,
}

impl Default for MissBudget {
    fn default() -> Self {
        Self {
            burst: 50,
            per_second: 10,
        }
    }
}

/// Longest `Retry-After` from Clerk that is honoured as a pause of all verify calls.
pub const MAX_CLERK_BACKOFF: Duration = Duration::from_secs(60);

/// `governor`'s clock trait over ours.
#[derive(Debug, Clone)]
struct BudgetClock(Arc<dyn Clock>);

impl GovernorClock for BudgetClock {
    type Instant = Instant;

    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// Why a Clerk call was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The bucket is empty.
    Budget,
    /// Clerk answered 429 recently; its `Retry-After` has not passed.
    ClerkBackoff,
}

/// The bucket plus Clerk's own back-off.
pub(crate) struct Budget {
    limiter: RateLimiter<NotKeyed, InMemoryState, BudgetClock>,
    /// A second bucket of the same size for tokens this verifier has seen valid before (a hot
    /// token's refresh, or its miss after the entry lapsed): a spray of random tokens, which can
    /// only drain the first bucket, cannot starve the callers that hold real tokens.
    known: RateLimiter<NotKeyed, InMemoryState, BudgetClock>,
    clock: Arc<dyn Clock>,
    clerk_backoff_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").finish_non_exhaustive()
    }
}

impl Budget {
    pub(crate) fn new(settings: MissBudget, clock: Arc<dyn Clock>) -> Self {
        let burst = NonZeroU32::new(settings.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let rate = NonZeroU32::new(settings.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Self {
            limiter: RateLimiter::direct_with_clock(quota, BudgetClock(clock.clone())),
            known: RateLimiter::direct_with_clock(quota, BudgetClock(clock.clone())),
            clock,
            clerk_backoff_until: Mutex::new(None),
        }
    }

    /// Takes one call from the budget (the reserved one for a token seen valid before), or says
    /// how long until one is available.
    pub(crate) fn admit(&self, known: bool) -> Result<(), (Refusal, Duration)> {
        let now = self.clock.now();
        if let Some(until) = *lock(&self.clerk_backoff_until)
            && now < until
        {
            return Err((Refusal::ClerkBackoff, until - now));
        }
        let limiter = if known { &self.known } else { &self.limiter };
        limiter
            .check()
            .map_err(|not_until| (Refusal::Budget, not_until.wait_time_from(now)))
    }

    /// Clerk answered 429: make no verify call for `retry_after` (capped at
    /// [`MAX_CLERK_BACKOFF`]). Returns the pause applied.
    pub(crate) fn clerk_said_slow_down(&self, retry_after: Duration) -> Duration {
        let pause = retry_after.min(MAX_CLERK_BACKOFF);
        let until = self.clock.now() + pause;
        let mut slot = lock(&self.clerk_backoff_until);
        if slot.is_none_or(|t| t < until) {
            *slot = Some(until);
        }
        pause
    }
}

/// Lets one log line through per `every`, counting the ones held back.
pub(crate) struct LogLimiter {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl std::fmt::Debug for LogLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLimiter")
            .field("every", &self.every)
            .finish()
    }
}

impl LogLimiter {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held back since the last line)` when a line may be written now.
    pub(crate) fn allow(&self, now: Instant) -> Option<u64> {
        let mut s = lock(&self.state);
        match s.0 {
            Some(last) if now < last + self.every => {
                s.1 += 1;
                None
            }
            _ => {
                let held = s.1;
                *s = (Some(now), 0);
                Some(held)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub(crate) fn retry_after_secs(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}
