//! Prometheus metrics, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use m2m_core::clerk::Operation;
use m2m_core::verify::OpaqueStats;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The registry.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    clerk: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    verify_stats: OnceLock<Arc<OpaqueStats>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// Records one HTTP request.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests)
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let mut latency = lock(&self.latency);
        let h = latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// Records one Clerk call (the `ClerkClient` observer).
    pub fn clerk_call(&self, op: Operation, outcome: &'static str) {
        *lock(&self.clerk).entry((op.as_str(), outcome)).or_default() += 1;
    }

    /// Where the verification cache counters live.
    pub fn set_verify_stats(&self, stats: Arc<OpaqueStats>) {
        let _ = self.verify_stats.set(stats);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP http_requests_total HTTP requests by method, route and status.\n# TYPE http_requests_total counter\n");
        for ((m, r, s), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}"
            );
        }
        out.push_str("# HELP http_request_duration_seconds HTTP request latency.\n# TYPE http_request_duration_seconds histogram\n");
        for ((m, r), h) in lock(&self.latency).iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{method=\"{m}\",route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{method=\"{m}\",route=\"{r}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP clerk_calls_total Calls to Clerk by operation and outcome.\n# TYPE clerk_calls_total counter\n");
        for ((op, outcome), n) in lock(&self.clerk).iter() {
            let _ = writeln!(
                out,
                "clerk_calls_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        if let Some(s) = self.verify_stats.get() {
            use std::sync::atomic::Ordering::Relaxed;
            out.push_str("# HELP m2m_verify_cache_hits_total Opaque M2M tokens answered from the cache.\n# TYPE m2m_verify_cache_hits_total counter\n");
            let _ = writeln!(
                out,
                "m2m_verify_cache_hits_total {}",
                s.cache_hits.load(Relaxed)
            );
            out.push_str("# HELP m2m_verify_cache_misses_total Opaque M2M tokens that needed Clerk.\n# TYPE m2m_verify_cache_misses_total counter\n");
            let _ = writeln!(
                out,
                "m2m_verify_cache_misses_total {}",
                s.cache_misses.load(Relaxed)
            );
            out.push_str("# HELP m2m_verify_budget_refusals_total Opaque M2M tokens refused with 503 without asking Clerk: the miss budget (M2M_VERIFY_MISS_BURST, M2M_VERIFY_MISS_PER_SECOND) was spent.\n# TYPE m2m_verify_budget_refusals_total counter\n");
            let _ = writeln!(
                out,
                "m2m_verify_budget_refusals_total {}",
                s.budget_refusals.load(Relaxed)
            );
            out.push_str("# HELP m2m_verify_clerk_rate_limited_total Opaque M2M tokens refused with 503 because Clerk answered 429 (or its Retry-After was running).\n# TYPE m2m_verify_clerk_rate_limited_total counter\n");
            let _ = writeln!(
                out,
                "m2m_verify_clerk_rate_limited_total {}",
                s.clerk_rate_limited.load(Relaxed)
            );
        }
        out
    }
}
