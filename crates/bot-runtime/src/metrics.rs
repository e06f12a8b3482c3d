//! A bot's metrics: its own named counters, its HTTP requests, its Clerk calls and token mints,
//! in a `prometheus-client` registry served at `/metrics`. docs/operations.md, *Metrics*.

use std::sync::Arc;

use m2m_core::clerk::{CallObserver, Operation};
use service_kit::ops::prometheus_client::metrics::counter::Counter;
use service_kit::ops::prometheus_client::metrics::family::Family;
use service_kit::ops::prometheus_client::registry::Registry;
use service_kit::ops::{HttpMetrics, StaticPairCounters};

/// The registry, and handles to what the bot records.
#[derive(Debug)]
pub struct BotMetrics {
    registry: Arc<Registry>,
    names: &'static [(&'static str, &'static str)],
    counters: Vec<Counter>,
    http: HttpMetrics,
    clerk_calls: StaticPairCounters,
    mints: Family<[(&'static str, &'static str); 1], Counter>,
    refresh_failures: Family<[(&'static str, &'static str); 1], Counter>,
    bot: &'static str,
}

impl BotMetrics {
    /// Counters `<prefix>_<name>_total` (with their help texts) for bot `bot`, beside
    /// `http_requests_total`, `http_request_duration_seconds`, `clerk_calls_total`,
    /// `m2m_token_mints_total{bot}` and `m2m_token_refresh_failures_total{bot}`.
    pub fn new(
        bot: &'static str,
        prefix: &'static str,
        names: &'static [(&'static str, &'static str)],
    ) -> Self {
        let mut registry = Registry::default();
        let counters = names
            .iter()
            .map(|(name, help)| {
                let c = Counter::default();
                // The registry ends every help text with a period.
                registry.register(
                    format!("{prefix}_{name}"),
                    help.trim_end_matches('.'),
                    c.clone(),
                );
                c
            })
            .collect();
        let http = HttpMetrics::register(&mut registry);
        let clerk_calls = StaticPairCounters::default();
        registry.register(
            "clerk_calls",
            "Calls to Clerk by operation and outcome (after retries)",
            clerk_calls.clone(),
        );
        let mints = Family::default();
        registry.register(
            "m2m_token_mints",
            "M2M tokens this bot minted at Clerk (expected: about one per token lifetime)",
            mints.clone(),
        );
        let refresh_failures = Family::default();
        registry.register(
            "m2m_token_refresh_failures",
            "Failed attempts to mint an M2M token (the current token, if still valid, stays in use)",
            refresh_failures.clone(),
        );
        Self {
            registry: Arc::new(registry),
            names,
            counters,
            http,
            clerk_calls,
            mints,
            refresh_failures,
            bot,
        }
    }

    /// Adds one to `name` (unknown names are ignored).
    pub fn inc(&self, name: &str) {
        if let Some(i) = self.names.iter().position(|(n, _)| *n == name) {
            self.counters[i].inc();
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> u64 {
        self.names
            .iter()
            .position(|(n, _)| *n == name)
            .map_or(0, |i| self.counters[i].get())
    }

    /// The observer for the bot's `ClerkClient`: counts every call, and mints by outcome.
    pub fn clerk_observer(&self) -> CallObserver {
        let (calls, mints, failures, bot) = (
            self.clerk_calls.clone(),
            self.mints.clone(),
            self.refresh_failures.clone(),
            self.bot,
        );
        Arc::new(move |op: Operation, outcome: &'static str| {
            calls
                .get_or_create(&[("operation", op.as_str()), ("outcome", outcome)])
                .inc();
            if op == Operation::CreateToken {
                let family = if outcome == "ok" { &mints } else { &failures };
                family.get_or_create(&[("bot", bot)]).inc();
            }
        })
    }

    /// The HTTP request metrics of the bot's listener.
    pub fn http(&self) -> &HttpMetrics {
        &self.http
    }

    /// The registry `/metrics` serves.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        service_kit::ops::render(&self.registry)
    }
}
