use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::{Layer, Service};
use tower_http::timeout::TimeoutLayer;

/// Listens on `addr`; the error names `var`, the setting that chose it.
pub async fn bind(var: &str, addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{var}: cannot listen on {addr}: {e}"))
}

/// How every server of the workspace sheds slow and idle clients: one settings group, flattened
/// into each service's configuration, read by [`serve`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServerArgs {
    /// Seconds a client has to send a request's headers (HTTP/1); slower clients are
    /// disconnected.
    #[arg(
        long,
        env = "HTTP_HEADER_READ_TIMEOUT_SECONDS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=30)
    )]
    pub http_header_read_timeout_seconds: u64,
    /// Seconds one request may take, body and handling, until its response starts; past it the
    /// client gets 408 Request Timeout.
    #[arg(
        long,
        env = "HTTP_REQUEST_TIMEOUT_SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub http_request_timeout_seconds: u64,
    /// Seconds a keep-alive connection may sit idle between requests before it is closed.
    #[arg(
        long,
        env = "HTTP_IDLE_TIMEOUT_SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub http_idle_timeout_seconds: u64,
    /// Most connections served at once; further ones wait in the listen backlog (not accepted,
    /// so they hold no file descriptor of this process) until one closes. Keep it well below
    /// `ulimit -n`.
    #[arg(
        long,
        env = "HTTP_MAX_CONNECTIONS",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub http_max_connections: u32,
    /// Seconds after SIGTERM that requests in flight may take to finish; then they are
    /// abandoned and the server returns.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECONDS",
        default_value_t = 20,
        value_parser = clap::value_parser!(u64).range(0..=30)
    )]
    pub shutdown_grace_seconds: u64,
}

impl Default for ServerArgs {
    fn default() -> Self {
        Self {
            http_header_read_timeout_seconds: 10,
            http_request_timeout_seconds: 30,
            http_idle_timeout_seconds: 60,
            http_max_connections: 1024,
            shutdown_grace_seconds: 20,
        }
    }
}

impl ServerArgs {
    fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.http_header_read_timeout_seconds.max(1))
    }
    fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.http_request_timeout_seconds.max(1))
    }
    fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.http_idle_timeout_seconds.max(1))
    }
    fn max_connections(&self) -> usize {
        usize::try_from(self.http_max_connections.max(1)).unwrap_or(usize::MAX)
    }
    fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

/// Serves `router` on `listener` within the bounds of `limits` until `shutdown` resolves; then
/// stops accepting, lets the requests in flight finish for up to the shutdown grace period,
/// abandons what is left and returns.
///
/// - headers must arrive within the header-read timeout (HTTP/1; hyper closes the connection);
/// - each request gets the request timeout until its response starts (`tower_http`'s
///   `TimeoutLayer`: 408 with an empty body);
/// - a connection idle (no request in flight) for the idle timeout is closed (checked four times
///   per period: within a quarter of the timeout after it is due);
/// - at most `http_max_connections` connections are accepted at once; the rest wait in the
///   kernel's listen backlog.
///
/// `app` is an [`axum::Router`] or any service like one (a router inside a `tower` stack built
/// once, so that its layers are not cloned into every route and for every request).
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ServerArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let router =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout())
            .layer(app);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let idle = limits.idle_timeout();
    let permits = Arc::new(Semaphore::new(limits.max_connections()));
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Reap finished connections so the set stays as small as the live ones.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // E.g. EMFILE: back off rather than spin; the client stays in the backlog.
                    tracing::warn!(error = %e, "accept error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            builder.clone(),
            stream,
            router.clone(),
            idle,
            drain_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = drain_tx.send(true);
    let grace = limits.shutdown_grace();
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace_seconds = grace.as_secs(),
            "shutdown grace period over; abandoning requests in flight"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Serves one connection until it ends, closing it gracefully when it has been idle for `idle`
/// or when `drain` turns true.
async fn connection<S>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: tokio::net::TcpStream,
    router: S,
    idle: Duration,
    mut drain: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let busy = activity.clone();
    let service = tower::service_fn(move |request: Request<Incoming>| {
        let busy = InFlight::new(busy.clone());
        let mut router = router.clone();
        async move {
            let response = router.call(request.map(Body::new)).await;
            drop(busy);
            response
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = drain.wait_for(|d| *d), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = idle_for(&activity, idle), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// A connection's requests: in flight now, and finished so far. Counted with atomics only, so a
/// request wakes nothing and reads no clock; [`idle_for`] looks at them a few times per period.
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    finished: AtomicU64,
}

/// How many looks [`idle_for`] takes per idle period: the connection closes between `idle` and
/// `idle × (1 + 1/IDLE_CHECKS)` after its last request finished.
const IDLE_CHECKS: u32 = 4;

/// Resolves once no request has been in flight for `idle` in a row.
async fn idle_for(activity: &Activity, idle: Duration) {
    let step = idle / IDLE_CHECKS;
    let mut quiet = 0;
    let mut seen = activity.finished.load(Ordering::Acquire);
    loop {
        tokio::time::sleep(step).await;
        let finished = activity.finished.load(Ordering::Acquire);
        if activity.in_flight.load(Ordering::Acquire) == 0 && finished == seen {
            quiet += 1;
            if quiet >= IDLE_CHECKS {
                return;
            }
        } else {
            quiet = 0;
            seen = finished;
        }
    }
}

/// Counts a request in flight on its connection while alive.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Finished first: a look in between sees it in flight, or sees it finished.
        self.0.finished.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// How a service's `main` ends: success, or `name: error` on stderr and a failure.
pub fn exit(name: &str, result: Result<(), impl Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
