//! The API's metrics: families in a `prometheus-client` registry, rendered at `/metrics`.
//! docs/operations.md, *Metrics*, lists them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use jobtracker_types::ApplicationStatus;
use m2m_core::clerk::{CallObserver, Operation};
use m2m_core::{AuthRejection, Verifier, VerifyError};
use service_kit::ops::prometheus_client::collector::Collector;
use service_kit::ops::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use service_kit::ops::prometheus_client::metrics::counter::ConstCounter;
use service_kit::ops::prometheus_client::metrics::gauge::ConstGauge;
use service_kit::ops::prometheus_client::registry::Registry;
use service_kit::ops::{HttpMetrics, StaticPairCounters};

/// Status changes of applications, `{from, to}` (`from="none"` for a new application).
#[derive(Clone, Debug, Default)]
pub struct Transitions(StaticPairCounters);

impl Transitions {
    /// Records one change (after it was committed).
    pub fn record(&self, from: Option<ApplicationStatus>, to: ApplicationStatus) {
        self.0
            .get_or_create(&[
                ("from", from.map_or("none", ApplicationStatus::name)),
                ("to", to.name()),
            ])
            .inc();
    }
}

/// Calls to Clerk, `{operation, outcome}`: the `ClerkClient` observer feeds it.
#[derive(Clone, Debug, Default)]
pub struct ClerkCalls(StaticPairCounters);

impl ClerkCalls {
    /// The observer to give the `ClerkClient`.
    pub fn observer(&self) -> CallObserver {
        let calls = self.0.clone();
        Arc::new(move |op: Operation, outcome: &'static str| {
            calls
                .get_or_create(&[("operation", op.as_str()), ("outcome", outcome)])
                .inc();
        })
    }
}

/// The registry and what the request path records into.
#[derive(Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Requests by method, route template and status, and their latency.
    pub http: HttpMetrics,
    auth_failures: StaticPairCounters,
}

impl Metrics {
    /// Every family, registered: `clerk` and `transitions` are recorded elsewhere (the Clerk
    /// client, the store); the verifier's caches are read at each scrape.
    pub fn new(verifier: Arc<Verifier>, clerk: &ClerkCalls, transitions: &Transitions) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        registry.register(
            "clerk_calls",
            "Calls to Clerk by operation and outcome (after retries)",
            clerk.0.clone(),
        );
        let auth_failures = StaticPairCounters::default();
        registry.register(
            "auth_failures",
            "Requests refused by authentication: kind (missing, malformed, invalid, unavailable, misconfigured) and reason (the RFC 6750 error_description, or none)",
            auth_failures.clone(),
        );
        registry.register(
            "application_transitions",
            "Application status changes by from and to status (from=\"none\": created)",
            transitions.0.clone(),
        );
        registry.register_collector(Box::new(VerifierStats(verifier)));
        Self {
            registry: Arc::new(registry),
            http,
            auth_failures,
        }
    }

    /// Records a refused authentication.
    pub fn auth_failure(&self, rejection: &AuthRejection) {
        let AuthRejection::Verify(e) = rejection else {
            return;
        };
        let kind = match e {
            VerifyError::Missing => "missing",
            VerifyError::Malformed(_) => "malformed",
            VerifyError::Invalid(_) => "invalid",
            VerifyError::Unavailable { .. } => "unavailable",
            VerifyError::Misconfigured(_) => "misconfigured",
            _ => "other",
        };
        let reason = e.description().unwrap_or("none");
        self.auth_failures
            .get_or_create(&[("kind", kind), ("reason", reason)])
            .inc();
    }

    /// The registry `/metrics` renders.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        service_kit::ops::render(&self.registry)
    }
}

/// The verifier's own counters (m2m-core keeps them as atomics), read at each scrape.
#[derive(Debug)]
struct VerifierStats(Arc<Verifier>);

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &AtomicU64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value.load(Relaxed));
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

impl Collector for VerifierStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(s) = self.0.opaque_stats() {
            let e = &mut encoder;
            counter(
                e,
                "m2m_verify_cache_hits",
                "Opaque M2M tokens answered from the cache.",
                &s.cache_hits,
            )?;
            counter(
                e,
                "m2m_verify_cache_misses",
                "Opaque M2M tokens that needed Clerk.",
                &s.cache_misses,
            )?;
            counter(
                e,
                "m2m_verify_cache_evictions",
                "Opaque-token cache entries evicted to stay within their bound.",
                &s.evictions,
            )?;
            counter(
                e,
                "m2m_verify_refreshed_ahead",
                "Hot opaque-token cache entries re-verified in the background before they lapsed.",
                &s.refreshed_ahead,
            )?;
            counter(
                e,
                "m2m_verify_budget_refusals",
                "Opaque M2M tokens refused with 503 without asking Clerk: the miss budget (M2M_VERIFY_MISS_BURST, M2M_VERIFY_MISS_PER_SECOND) was spent.",
                &s.budget_refusals,
            )?;
            counter(
                e,
                "m2m_verify_client_share_refusals",
                "Opaque M2M tokens refused with 503 without asking Clerk: their client address had spent its share of the miss budget (M2M_VERIFY_MISS_PER_CLIENT_BURST, M2M_VERIFY_MISS_PER_CLIENT_PER_SECOND).",
                &s.client_share_refusals,
            )?;
            counter(
                e,
                "m2m_verify_clerk_rate_limited",
                "Opaque M2M tokens refused with 503 because Clerk answered 429 (or its Retry-After was running).",
                &s.clerk_rate_limited,
            )?;
        }
        if let Some(cache) = self.0.jwt_cache() {
            let s = cache.stats();
            let e = &mut encoder;
            counter(
                e,
                "m2m_jwt_cache_hits",
                "JWTs (session and M2M) answered from the verified-token cache.",
                &s.hits,
            )?;
            counter(
                e,
                "m2m_jwt_cache_misses",
                "JWTs whose signature had to be checked.",
                &s.misses,
            )?;
            counter(
                e,
                "m2m_jwt_cache_dropped",
                "JWT cache entries dropped on use: the key was unpublished or the token expired.",
                &s.dropped,
            )?;
            counter(
                e,
                "m2m_jwt_cache_evictions",
                "JWT cache entries evicted to stay within its size bounds.",
                &s.evictions,
            )?;
            let g = ConstGauge::new(i64::try_from(cache.entry_count()).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(
                "m2m_jwt_cache_entries",
                "Verified JWTs held in the cache.",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
