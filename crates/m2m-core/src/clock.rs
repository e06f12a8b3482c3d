//! Time as an injectable dependency, so expiry, refresh and backoff are testable without sleeping.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A boxed, sendable future returned by [`Clock::sleep`].
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Monotonic time, wall-clock time and sleeping, behind one trait.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Monotonic "now", used for cache expiry and refresh deadlines.
    fn now(&self) -> Instant;
    /// Wall-clock time since the Unix epoch, used for JWT `exp`/`nbf`/`iat`.
    fn unix_now(&self) -> Duration;
    /// Waits for `duration` (backoff between retries).
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

/// The real clock: `tokio::time` for monotonic time and sleeping (so paused tokio tests work too),
/// the system clock for wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn unix_now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that only moves when told to. `sleep` advances it instantly and records the duration,
/// so tests can assert on backoff without waiting.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
}

struct ManualState {
    base: Instant,
    base_unix: Duration,
    offset: Duration,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A manual clock starting at the current system time.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(ManualState {
                base: Instant::now(),
                base_unix: SystemClock.unix_now(),
                offset: Duration::ZERO,
                sleeps: Vec::new(),
            })),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.lock().offset += by;
    }

    /// Every duration passed to [`Clock::sleep`] so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A poisoned lock only means another test thread panicked; the state is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("offset", &self.lock().offset)
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let s = self.lock();
        s.base + s.offset
    }

    fn unix_now(&self) -> Duration {
        let s = self.lock();
        s.base_unix + s.offset
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        {
            let mut s = self.lock();
            s.offset += duration;
            s.sleeps.push(duration);
        }
        Box::pin(tokio::task::yield_now())
    }
}

/// The default shared clock.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
