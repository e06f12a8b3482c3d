//! Log lines a client can cause, held to a rate the code chose: a flood of bad requests then
//! writes a few lines a minute, each saying how many like it were held back, instead of one line
//! per request.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Lets a burst of lines through, then one per period (governor's GCRA), and counts the ones it
/// holds back. One per call site: `static T: LazyLock<LogThrottle> = LazyLock::new(LogThrottle::default);`
/// then `if let Some(suppressed) = T.admit() { tracing::error!(suppressed, "…") }`.
pub struct LogThrottle<C: Clock = DefaultClock> {
    limiter: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
    suppressed: AtomicU64,
}

impl<C: Clock> std::fmt::Debug for LogThrottle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogThrottle")
            .field("suppressed", &self.suppressed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl LogThrottle {
    /// Lines let through at once.
    pub const BURST: u32 = 10;
    /// Then one per this long (ten a minute).
    pub const PERIOD: Duration = Duration::from_secs(6);

    /// [`BURST`](Self::BURST) at once, then one per `period`.
    pub fn new(burst: NonZeroU32, period: Duration) -> Self {
        Self::with_clock(burst, period, DefaultClock::default())
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new(
            NonZeroU32::new(Self::BURST).unwrap_or(NonZeroU32::MIN),
            Self::PERIOD,
        )
    }
}

impl<C: Clock> LogThrottle<C> {
    /// As [`new`](LogThrottle::new), on `clock` (tests move a fake one).
    pub fn with_clock(burst: NonZeroU32, period: Duration, clock: C) -> Self {
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one let through)` when a line may be written now;
    /// `None` (and one more held back) when not.
    pub fn admit(&self) -> Option<u64> {
        match self.limiter.check() {
            Ok(()) => Some(self.suppressed.swap(0, Ordering::Relaxed)),
            Err(_) => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn a_burst_then_one_per_period_each_with_the_count_held_back() {
        let clock = FakeRelativeClock::default();
        let t = LogThrottle::with_clock(
            NonZeroU32::new(3).expect("3"),
            Duration::from_secs(6),
            clock.clone(),
        );
        let admitted: Vec<_> = (0..1_000).map(|_| t.admit()).collect();
        assert_eq!(&admitted[..3], &[Some(0), Some(0), Some(0)]);
        assert!(admitted[3..].iter().all(Option::is_none));
        clock.advance(Duration::from_secs(5));
        assert_eq!(t.admit(), None);
        clock.advance(Duration::from_secs(1));
        // 997 + the one just above were held back.
        assert_eq!(t.admit(), Some(998));
        assert_eq!(t.admit(), None);
        clock.advance(Duration::from_secs(6));
        assert_eq!(t.admit(), Some(1));
    }
}
