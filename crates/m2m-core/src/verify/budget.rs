//! The per-process budget for verifications that must ask Clerk (opaque-token cache misses), and
//! a log limiter so a flood produces one line, not one per request.
//!
//! Anyone on the network can present a well-formed random `mt_…` token, and each one not in the
//! cache costs a call to Clerk's Backend API, which Clerk rate-limits per instance. Without a
//! bound, a spray spends the instance's limit and every service's legitimate tokens then fail.
//! The budget is a token bucket (GCRA, from `governor`) running on the crate's injectable
//! [`Clock`], so tests drive it with a manual clock.
//!
//! Each client address (IPv4, or IPv6 /64) also has a share: a smaller bucket checked first, so
//! one client spraying random tokens spends at most its share of the budget and every other
//! client still finds calls left. A refusal by the share spends nothing of the budget.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::Clock as GovernorClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::client::ClientKey;
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

impl MissBudget {
    /// One client address's default share (`M2M_VERIFY_MISS_PER_CLIENT_BURST`,
    /// `M2M_VERIFY_MISS_PER_CLIENT_PER_SECOND`): 10 at once, 2 per second, a fifth of the
    /// default budget, so a spray from one address leaves 40 + 8/s for everyone else.
    pub const PER_CLIENT: Self = Self {
        burst: 10,
        per_second: 2,
    };

    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let rate = NonZeroU32::new(self.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(rate).allow_burst(burst)
    }

    /// How long an empty bucket takes to fill up again.
    fn refill(self) -> Duration {
        Duration::from_secs_f64(f64::from(self.burst.max(1)) / f64::from(self.per_second.max(1)))
    }
}

/// Client addresses whose share is tracked at once, at most (a few hundred bytes each). Past it,
/// moka's admission keeps the busiest; a bucket dropped early only lets its client start full.
pub const MAX_TRACKED_CLIENTS: u64 = 10_000;

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
    /// This client address spent its share of the bucket.
    ClientShare,
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, BudgetClock>;

/// The bucket plus Clerk's own back-off.
pub(crate) struct Budget {
    limiter: Bucket,
    /// A second bucket of the same size for tokens this verifier has seen valid before (a hot
    /// token's refresh, or its miss after the entry lapsed): a spray of random tokens, which can
    /// only drain the first bucket, cannot starve the callers that hold real tokens.
    known: Bucket,
    /// Each client address's share of `limiter`, checked before it; dropped once idle for as
    /// long as a bucket takes to fill (it would be full again by then anyway).
    shares: moka::sync::Cache<ClientKey, Arc<Bucket>>,
    share: Quota,
    clock: Arc<dyn Clock>,
    clerk_backoff_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").finish_non_exhaustive()
    }
}

impl Budget {
    pub(crate) fn new(settings: MissBudget, per_client: MissBudget, clock: Arc<dyn Clock>) -> Self {
        let quota = settings.quota();
        Self {
            limiter: RateLimiter::direct_with_clock(quota, BudgetClock(clock.clone())),
            known: RateLimiter::direct_with_clock(quota, BudgetClock(clock.clone())),
            shares: moka::sync::Cache::builder()
                .max_capacity(MAX_TRACKED_CLIENTS)
                .time_to_idle(per_client.refill().max(Duration::from_secs(1)))
                .build(),
            share: per_client.quota(),
            clock,
            clerk_backoff_until: Mutex::new(None),
        }
    }

    /// Takes one call from the budget (the reserved one for a token seen valid before), or says
    /// how long until one is available. An unknown token from a known `client` first takes one
    /// from that client's share; without a client (a direct caller that names none) only the
    /// budget applies.
    pub(crate) fn admit(
        &self,
        known: bool,
        client: Option<ClientKey>,
    ) -> Result<(), (Refusal, Duration)> {
        let now = self.clock.now();
        if let Some(until) = *lock(&self.clerk_backoff_until)
            && now < until
        {
            return Err((Refusal::ClerkBackoff, until - now));
        }
        if known {
            return self
                .known
                .check()
                .map_err(|not_until| (Refusal::Budget, not_until.wait_time_from(now)));
        }
        if let Some(client) = client {
            let share = self.shares.get_with(client, || {
                Arc::new(RateLimiter::direct_with_clock(
                    self.share,
                    BudgetClock(self.clock.clone()),
                ))
            });
            share
                .check()
                .map_err(|not_until| (Refusal::ClientShare, not_until.wait_time_from(now)))?;
        }
        self.limiter
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
