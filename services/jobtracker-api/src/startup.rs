//! Building and running the service: bind first (port 0 in tests), then serve.

use service_kit::StartupError;
use std::future::Future;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

use m2m_core::clerk::ClerkClient;
use m2m_core::clock::{self, Clock};
use m2m_core::config::ConfigError;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::db::Db;
use crate::http::transfers::Transfers;
use crate::http::{ApiContext, ApiState, app_with};
use crate::metrics::{ClerkCalls, Metrics};
use crate::store::ResumeLimits;

/// A bound, ready-to-serve API.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    /// `/metrics`, apart from the public port.
    metrics_listener: TcpListener,
    ctx: ApiContext,
    limits: service_kit::ServerArgs,
}

impl Server {
    /// Validates the config, connects and migrates the database, builds the verifier and binds.
    /// Errors are one line naming what is wrong.
    pub async fn build(config: &Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, clock::system()).await
    }

    /// As [`build`](Self::build), with the clock the verifier and the leases use.
    pub async fn build_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let verifier_config = config.verifier().map_err(|e| e.to_string())?;
        let roles = config.roles().map_err(|e| e.to_string())?;
        let at_least_one = |var: &str| ConfigError::new(var, "must be at least 1").to_string();
        let resume_limits = ResumeLimits {
            max_files: NonZeroU32::new(config.resume_max_files)
                .ok_or_else(|| at_least_one("RESUME_MAX_FILES"))?,
            quota_bytes: NonZeroU64::new(config.resume_quota_bytes)
                .ok_or_else(|| at_least_one("RESUME_QUOTA_BYTES"))?,
        };
        if roles.is_empty() {
            tracing::warn!(
                "no machine has a role (CANDIDATE_REPRESENTER_MACHINE_ID, JOB_APPLIER_MACHINE_ID): every M2M caller will get 403"
            );
        }
        let clerk_calls = ClerkCalls::default();
        let client = ClerkClient::builder(&verifier_config.api_base_url)
            .observer(clerk_calls.observer())
            .build()
            .map_err(|e| format!("CLERK_API_BASE_URL: {e}"))?;
        let verifier = Arc::new(verifier_config.build(&client, clock.clone()));
        if let Err(e) = verifier.prefetch_keys().await {
            tracing::warn!(error = %e, "could not load Clerk's JWT keys at start; will retry on demand");
        }
        let db = Db::connect(config.database_url.expose_secret())
            .await?
            .with_clock(clock.clone());
        let metrics = Arc::new(Metrics::new(
            verifier.clone(),
            &clerk_calls,
            &db.transitions,
        ));
        let listener = service_kit::bind("JOBTRACKER_BIND", config.bind).await?;
        let metrics_listener = service_kit::bind("METRICS_BIND", config.metrics_bind).await?;
        let ctx = ApiContext::new(ApiState {
            db,
            verifier,
            roles: Arc::new(roles),
            metrics,
            resume_max_bytes: config.resume_max_bytes,
            resume_limits,
            transfers: Arc::new(Transfers::new(usize::from(config.resume_uploads_per_user))),
        });
        Ok(Self {
            listener,
            metrics_listener,
            ctx,
            limits: config.server.clone(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The bound address of `/metrics`.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The database, for tests.
    pub fn db(&self) -> &Db {
        &self.ctx.db
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests (for up to
    /// `SHUTDOWN_GRACE_SECONDS`).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.run_with(axum::Router::new(), shutdown).await
    }

    /// As [`run_until`](Self::run_until), with `extra` routes behind the same middleware.
    pub async fn run_with(
        self,
        extra: axum::Router<ApiContext>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), metrics = %self.metrics_addr(), "jobtracker-api listening; Swagger UI at /swagger, /metrics on its own address");
        let metrics = crate::http::metrics_router(&self.ctx);
        let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
        let metrics = tokio::spawn(service_kit::serve(
            self.metrics_listener,
            metrics,
            self.limits.clone(),
            async move {
                let mut stopped = metrics_stopped;
                let _ = stopped.wait_for(|s| *s).await;
            },
        ));
        let app = app_with(self.ctx, extra);
        let served = service_kit::serve(self.listener, app, self.limits, shutdown).await;
        // The metrics listener lives as long as the public one: a last scrape sees the drain.
        let _ = stop_metrics.send(true);
        match metrics.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the metrics listener stopped"),
            Err(e) => tracing::error!(error = %e, "the metrics listener failed"),
            Ok(Ok(())) => {}
        }
        served
    }
}
