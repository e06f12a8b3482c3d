//! What both bots share: their common settings ([`BotArgs`]), the polling loop ([`poll_loop`]),
//! [`Counters`], and the way a [`Bot`] is run: polling while it serves `/healthz` and `/metrics`
//! (and any routes of its own), until Ctrl-C or SIGTERM.
//!
//! Its own crate, not part of `service-kit`: it builds on `jobtracker-client` (the loop tells
//! transient failures from the rest by `ClientError`) and m2m-core's settings, which `service-kit`
//! (below every other crate) must not know.

mod counters;
mod poll;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use jobtracker_client::ClientError;
use m2m_core::config::Env;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use counters::Counters;
pub use poll::{MAX_BACKOFF, poll_loop};

/// Settings every bot has (`#[command(flatten)]` them into the bot's own).
#[derive(Clone, clap::Args)]
pub struct BotArgs {
    /// The JobTracker API.
    #[arg(
        long,
        env = "JOBTRACKER_API_URL",
        default_value = "http://localhost:5000"
    )]
    pub jobtracker_api_url: String,
    /// Clerk Backend API base URL.
    #[arg(
        long,
        env = "CLERK_API_BASE_URL",
        default_value = "https://api.clerk.com/v1"
    )]
    pub clerk_api_base_url: String,
    /// This bot's machine secret key (`ak_…`): mints its M2M tokens.
    #[arg(long, env = "CLERK_MACHINE_SECRET_KEY", hide_env_values = true)]
    pub clerk_machine_secret_key: Option<String>,
    /// A pre-created M2M token (no minting when set).
    #[arg(long, env = "CLERK_M2M_TOKEN", hide_env_values = true)]
    pub clerk_m2m_token: Option<String>,
    /// `false` sends no token (testing only).
    #[arg(long, env = "ENABLE_M2M_AUTH", default_value = "true")]
    pub enable_m2m_auth: String,
    /// Requested token lifetime, seconds [default: 3600 for opaque tokens, 300 for JWTs, which
    /// cannot be revoked and so are kept short]. Unset or empty: the default (compose passes an
    /// empty value for an unset variable); validated with the other token settings.
    #[arg(long, env = "M2M_TOKEN_LIFETIME_SECONDS")]
    pub m2m_token_lifetime_seconds: Option<String>,
    /// Refresh this long before expiry, seconds [default: 300 for opaque tokens, 60 for JWTs].
    /// Unset or empty: the default.
    #[arg(long, env = "M2M_TOKEN_REFRESH_BUFFER_SECONDS")]
    pub m2m_token_refresh_buffer_seconds: Option<String>,
    /// `opaque` or `jwt`.
    #[arg(long, env = "M2M_TOKEN_FORMAT", default_value = "opaque")]
    pub m2m_token_format: String,
    /// Up to this many extra seconds of buffer, random per token, so a fleet does not refresh in
    /// lockstep.
    #[arg(long, env = "M2M_TOKEN_REFRESH_JITTER_SECONDS", default_value_t = 0)]
    pub m2m_token_refresh_jitter_seconds: u64,
    /// Ask Clerk to reuse a live token with at least this many seconds left (must exceed the
    /// buffer); unset or empty: never.
    #[arg(long, env = "M2M_TOKEN_MIN_REMAINING_TTL_SECONDS")]
    pub m2m_token_min_remaining_ttl_seconds: Option<String>,
    /// Seconds between polls when idle.
    #[arg(long, env = "POLL_INTERVAL_SECONDS", default_value_t = 5)]
    pub poll_interval_seconds: u64,
    /// Logging.
    #[command(flatten)]
    pub log: service_kit::LogArgs,
}

impl std::fmt::Debug for BotArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotArgs")
            .field("jobtracker_api_url", &self.jobtracker_api_url)
            .finish_non_exhaustive()
    }
}

impl BotArgs {
    /// The settings as m2m-core's `Env` (so validation and its messages are shared), with
    /// `extra` for the bot's own variables.
    pub fn env<'a>(&'a self, extra: impl Fn(&str) -> Option<String> + 'a) -> Env<'a> {
        Env::from_fn(move |k| match k {
            "JOBTRACKER_API_URL" => Some(self.jobtracker_api_url.clone()),
            "CLERK_API_BASE_URL" => Some(self.clerk_api_base_url.clone()),
            "CLERK_MACHINE_SECRET_KEY" => self.clerk_machine_secret_key.clone(),
            "CLERK_M2M_TOKEN" => self.clerk_m2m_token.clone(),
            "ENABLE_M2M_AUTH" => Some(self.enable_m2m_auth.clone()),
            "M2M_TOKEN_LIFETIME_SECONDS" => self.m2m_token_lifetime_seconds.clone(),
            "M2M_TOKEN_REFRESH_BUFFER_SECONDS" => self.m2m_token_refresh_buffer_seconds.clone(),
            "M2M_TOKEN_FORMAT" => Some(self.m2m_token_format.clone()),
            "M2M_TOKEN_REFRESH_JITTER_SECONDS" => {
                Some(self.m2m_token_refresh_jitter_seconds.to_string())
            }
            "M2M_TOKEN_MIN_REMAINING_TTL_SECONDS" => {
                self.m2m_token_min_remaining_ttl_seconds.clone()
            }
            other => extra(other),
        })
    }
}

impl BotArgs {
    /// `POLL_INTERVAL_SECONDS`, at least one second.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_seconds.max(1))
    }
}

/// A bot: one pass of work at a time, counted.
pub trait Bot: Send + Sync + Sized + 'static {
    /// Its name, in logs.
    const NAME: &'static str;

    /// Its counters, served on `/metrics`.
    fn counters(&self) -> &Counters;

    /// One pass. `Ok(true)`: there may be more, poll again at once; `Ok(false)`: wait for the
    /// interval. Errors are [`poll_loop`]'s to handle.
    fn step(&self) -> impl Future<Output = Result<bool, ClientError>> + Send;

    /// Routes it serves besides `/healthz` and `/metrics`.
    fn routes(self: &Arc<Self>) -> Router {
        Router::new()
    }

    /// Polls until `stop` turns true; the item in hand is finished first.
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

    /// `/healthz`, `/metrics` and its own [`routes`](Self::routes).
    fn router(self: Arc<Self>) -> Router {
        let me = self.clone();
        self.routes()
            .merge(service_kit::ops::router(move || me.counters().render()))
    }
}

/// Serves `bot`'s [`router`](Bot::router) on `listener` and runs it every `interval` until
/// `shutdown` resolves; then tells it to stop, waits for it to finish what it holds, and stops
/// serving.
pub async fn serve<B: Bot>(
    bot: Arc<B>,
    listener: TcpListener,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(bot.clone().run(interval, stop_rx.clone()));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "{} serving /healthz and /metrics", B::NAME);
    }
    let mut http_stop = stop_rx;
    let server = tokio::spawn(service_kit::serve(listener, bot.router(), async move {
        let _ = http_stop.wait_for(|s| *s).await;
    }));
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = worker.await;
    if let Ok(Err(e)) = server.await {
        tracing::error!(error = %e, "{} stopped serving", B::NAME);
    }
}
