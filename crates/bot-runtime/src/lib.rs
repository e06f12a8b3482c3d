//! What both bots share: their common settings ([`BotArgs`]), the polling loop ([`poll_loop`]),
//! [`BotMetrics`], and the way a [`Bot`] is run: polling while it serves `/healthz` (and any
//! routes of its own) on its address and `/metrics` on another (`METRICS_BIND`), until Ctrl-C or
//! SIGTERM.
//!
//! Its own crate, not part of `service-kit`: it builds on `jobtracker-client` (the loop tells
//! transient failures from the rest by `ClientError`) and m2m-core's settings, which `service-kit`
//! (below every other crate) must not know.

mod metrics;
mod poll;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use jobtracker_client::{ClientError, JobTrackerClient};
use m2m_core::TokenSource;
use m2m_core::clerk::{CallObserver, ClerkClient};
use m2m_core::clock::Clock;
use m2m_core::config::{ClerkArgs, ConfigError, TokenArgs, parse};
use service_kit::{LogArgs, ServerArgs};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use metrics::BotMetrics;
pub use poll::{MAX_BACKOFF, poll_loop};

/// Settings every bot has (`#[command(flatten)]` them into the bot's own).
#[derive(Debug, Clone, clap::Args)]
pub struct BotArgs {
    /// The JobTracker API.
    #[arg(
        long,
        env = "JOBTRACKER_API_URL",
        default_value = "http://localhost:5000",
        value_parser = parse::http_url
    )]
    pub jobtracker_api_url: String,
    /// Clerk, and this bot as a machine.
    #[command(flatten)]
    pub clerk: ClerkArgs,
    /// Where this bot's M2M token comes from.
    #[command(flatten)]
    pub token: TokenArgs,
    /// Seconds between polls when idle.
    #[arg(long, env = "POLL_INTERVAL_SECONDS", default_value_t = 5)]
    pub poll_interval_seconds: u64,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Timeouts and limits of the bot's HTTP listener.
    #[command(flatten)]
    pub server: ServerArgs,
}

impl BotArgs {
    /// `POLL_INTERVAL_SECONDS`, at least one second.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_seconds.max(1))
    }

    /// The API client, authenticated as the settings say; logs how it authenticates, never the
    /// token. Errors name the variable.
    pub fn client(&self, clock: Arc<dyn Clock>) -> Result<JobTrackerClient, ConfigError> {
        self.client_observed(clock, None)
    }

    /// As [`client`](Self::client), its Clerk calls reported to `observer` (e.g.
    /// [`BotMetrics::clerk_observer`]).
    pub fn client_observed(
        &self,
        clock: Arc<dyn Clock>,
        observer: Option<CallObserver>,
    ) -> Result<JobTrackerClient, ConfigError> {
        let m2m = self.token.client_config(&self.clerk)?;
        let mut clerk = ClerkClient::builder(&m2m.api_base_url);
        if let Some(observer) = observer {
            clerk = clerk.observer(observer);
        }
        let clerk = clerk
            .build()
            .map_err(|e| ConfigError::new("CLERK_API_BASE_URL", e.to_string()))?;
        let tokens = m2m.token_source(&clerk, clock)?;
        if !matches!(tokens, TokenSource::Disabled) {
            tracing::info!(api = %self.jobtracker_api_url, kind = tokens.kind(), "M2M authentication enabled for JobTracker API");
        }
        JobTrackerClient::new(&self.jobtracker_api_url, tokens)
            .map_err(|e| ConfigError::new("JOBTRACKER_API_URL", e.to_string()))
    }
}

/// A bot: one pass of work at a time, counted.
pub trait Bot: Send + Sync + Sized + 'static {
    /// Its name, in logs.
    const NAME: &'static str;

    /// Its metrics, served on `/metrics` of its metrics listener.
    fn counters(&self) -> &BotMetrics;

    /// One pass. `Ok(true)`: there may be more, poll again at once; `Ok(false)`: wait for the
    /// interval. Errors are [`poll_loop`]'s to handle.
    fn step(&self) -> impl Future<Output = Result<bool, ClientError>> + Send;

    /// Routes it serves besides `/healthz`.
    fn routes(self: &Arc<Self>) -> Router {
        Router::new()
    }

    /// Polls until `stop` turns true; the item in hand is finished first ([`serve`] bounds that
    /// by the shutdown grace period).
    fn run(
        self: Arc<Self>,
        interval: Duration,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send {
        poll_loop(Self::NAME, interval, stop, move || {
            let me = self.clone();
            async move { me.step().await }
        })
    }

    /// `/healthz` and its own [`routes`](Self::routes): the public address.
    fn router(self: Arc<Self>) -> Router {
        let metrics = self.counters();
        // State given before the metrics layer: axum layers a router still waiting for its state
        // again on every request.
        metrics.http().layer(
            self.routes()
                .merge(service_kit::ops::health_router())
                .with_state(()),
        )
    }

    /// `/metrics` alone, for the metrics listener: the public address answers it 404.
    fn metrics_router(&self) -> Router {
        service_kit::ops::metrics_router(self.counters().registry().clone())
    }
}

/// Serves `bot`'s [`router`](Bot::router) on `listener` and its
/// [`metrics_router`](Bot::metrics_router) on `metrics`, and runs it every `interval` until
/// `shutdown` resolves; then tells it to stop, waits for it to finish what it holds, and stops
/// serving (within `limits`' shutdown grace period, like every server here).
pub async fn serve<B: Bot>(
    bot: Arc<B>,
    listener: TcpListener,
    metrics: TcpListener,
    limits: ServerArgs,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(bot.clone().run(interval, stop_rx.clone()));
    if let (Ok(addr), Ok(metrics)) = (listener.local_addr(), metrics.local_addr()) {
        tracing::info!(%addr, %metrics, "{} serving /healthz, and /metrics on its own address", B::NAME);
    }
    let mut http_stop = stop_rx.clone();
    let mut metrics_stop = stop_rx;
    let grace = Duration::from_secs(limits.shutdown_grace_seconds);
    let metrics_server = tokio::spawn(service_kit::serve(
        metrics,
        bot.metrics_router(),
        limits.clone(),
        async move {
            let _ = metrics_stop.wait_for(|s| *s).await;
        },
    ));
    let server = tokio::spawn(service_kit::serve(
        listener,
        bot.router(),
        limits,
        async move {
            let _ = http_stop.wait_for(|s| *s).await;
        },
    ));
    shutdown.await;
    let _ = stop_tx.send(true);
    // The item in hand gets the grace period, like a request in flight; then it is abandoned
    // (its lease expires at the API and another bot takes it up).
    let abort = worker.abort_handle();
    if tokio::time::timeout(grace, worker).await.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "{}: shutdown grace period over; abandoning the item in hand",
            B::NAME
        );
        abort.abort();
    }
    for served in [server.await, metrics_server.await] {
        if let Ok(Err(e)) = served {
            tracing::error!(error = %e, "{} stopped serving", B::NAME);
        }
    }
}
