//! Prometheus metrics, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use m2m_core::OpaqueStats;
use m2m_core::clerk::Operation;
use service_kit::ops::Exposition;

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
        const REQUESTS: &str = "http_requests_total";
        const LATENCY: &str = "http_request_duration_seconds";
        let mut out = Exposition::default();
        out.family(
            REQUESTS,
            "counter",
            "HTTP requests by method, route and status.",
        );
        for ((m, r, s), n) in lock(&self.requests).iter() {
            let status = s.to_string();
            out.sample(
                REQUESTS,
                &[("method", m), ("route", r), ("status", &status)],
                n,
            );
        }
        out.family(LATENCY, "histogram", "HTTP request latency.");
        let bucket = format!("{LATENCY}_bucket");
        for ((m, r), h) in lock(&self.latency).iter() {
            for (b, n) in BUCKETS.iter().zip(h.counts) {
                let le = b.to_string();
                out.sample(&bucket, &[("method", m), ("route", r), ("le", &le)], n);
            }
            out.sample(
                &bucket,
                &[("method", m), ("route", r), ("le", "+Inf")],
                h.count,
            )
            .sample(
                &format!("{LATENCY}_sum"),
                &[("method", m), ("route", r)],
                h.sum,
            )
            .sample(
                &format!("{LATENCY}_count"),
                &[("method", m), ("route", r)],
                h.count,
            );
        }
        out.family(
            "clerk_calls_total",
            "counter",
            "Calls to Clerk by operation and outcome.",
        );
        for ((op, outcome), n) in lock(&self.clerk).iter() {
            out.sample(
                "clerk_calls_total",
                &[("operation", op), ("outcome", outcome)],
                n,
            );
        }
        if let Some(s) = self.verify_stats.get() {
            use std::sync::atomic::Ordering::Relaxed;
            out.counter(
                "m2m_verify_cache_hits_total",
                "Opaque M2M tokens answered from the cache.",
                s.cache_hits.load(Relaxed),
            )
            .counter(
                "m2m_verify_cache_misses_total",
                "Opaque M2M tokens that needed Clerk.",
                s.cache_misses.load(Relaxed),
            )
            .counter(
                "m2m_verify_budget_refusals_total",
                "Opaque M2M tokens refused with 503 without asking Clerk: the miss budget (M2M_VERIFY_MISS_BURST, M2M_VERIFY_MISS_PER_SECOND) was spent.",
                s.budget_refusals.load(Relaxed),
            )
            .counter(
                "m2m_verify_clerk_rate_limited_total",
                "Opaque M2M tokens refused with 503 because Clerk answered 429 (or its Retry-After was running).",
                s.clerk_rate_limited.load(Relaxed),
            );
        }
        out.finish()
    }
}
