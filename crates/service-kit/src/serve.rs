use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::Service;

/// Streams one HTTP/2 connection may have open at once (hyper's default is 200): each holds a
/// request and its response, so this bounds what one connection can make the server hold.
const MAX_CONCURRENT_STREAMS: u32 = 32;

/// Listens on `addr`; the error names `var`, the setting that chose it.
pub async fn bind(var: &str, addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind {
            var: var.to_owned(),
            addr,
            source,
        })
}

/// Why a service could not start (or stopped serving): the one line its `main` prints through
/// [`exit`]. The message names the setting at fault where there is one, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The listener a setting chose could not be opened (the port is taken, the address is not
    /// this host's).
    #[error("{var}: cannot listen on {addr}: {source}")]
    Bind {
        /// The setting that chose the address.
        var: String,
        /// The address.
        addr: SocketAddr,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },
    /// A setting is missing or malformed; the message names its variable.
    #[error("{0}")]
    Setting(String),
    /// Something the service needs at start (its database, its Clerk client, a seed file) could
    /// not be had; the message says which and why.
    #[error("{0}")]
    Unavailable(String),
}

impl From<String> for StartupError {
    fn from(reason: String) -> Self {
        Self::Unavailable(reason)
    }
}

impl From<&str> for StartupError {
    fn from(reason: &str) -> Self {
        Self::Unavailable(reason.to_owned())
    }
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
    /// Seconds a keep-alive connection may sit idle before it is closed: no request in flight
    /// and no response body being sent (HTTP/2 PINGs and window updates are not activity). An
    /// idle HTTP/1 connection meets the header-read timeout first: hyper times the wait for the
    /// next request's head as header reading.
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
    /// Most connections one client address may hold at once (an IPv6 client: its /64); more
    /// from it are closed as soon as they are accepted. Unset: a quarter of
    /// `HTTP_MAX_CONNECTIONS`. Behind a proxy every client has the proxy's address: set it to
    /// `HTTP_MAX_CONNECTIONS` there.
    #[arg(
        long,
        env = "HTTP_MAX_CONNECTIONS_PER_CLIENT",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub http_max_connections_per_client: Option<u32>,
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
            http_max_connections_per_client: None,
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
    /// The per-client share: as set (never above the cap), else a quarter of the cap.
    fn max_connections_per_client(&self) -> usize {
        let cap = self.max_connections();
        match self.http_max_connections_per_client {
            Some(n) => usize::try_from(n.max(1)).unwrap_or(usize::MAX).min(cap),
            None => (cap / 4).max(1),
        }
    }
    fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

/// Serves `router` on `listener` within the bounds of `limits` until `shutdown` resolves; then
/// stops accepting, lets the requests in flight finish for up to the shutdown grace period,
/// abandons what is left and returns.
///
/// - a connection must start its first request within the header-read timeout, and each
///   request's headers must arrive within it (HTTP/1; hyper closes the connection; on a
///   keep-alive HTTP/1 connection the wait for the next request counts, so this also bounds
///   its idle time);
/// - each request gets the request timeout from its arrival until its response starts (408
///   with an empty body; the timer is armed only for a request not answered at its first
///   poll);
/// - a connection whose socket refuses our writes for the request timeout in a row (a client
///   that stops reading what it asked for) is dropped;
/// - a connection with a response body that has not been taken for the request timeout (the
///   body was not polled, or its polls yielded nothing the client took: an HTTP/2 client that
///   grants no flow-control window never makes a write wait) is dropped, and with it whatever
///   the body held (a download slot);
/// - a connection idle for the idle timeout (no request in flight, no response body being
///   sent: HTTP/2 PINGs and window updates are not activity) is closed gracefully, and
///   dropped if that close has not finished within the header-read timeout (an HTTP/2 peer
///   that never acknowledges GOAWAY);
/// - an HTTP/2 connection has at most `MAX_CONCURRENT_STREAMS` (32) streams open;
/// - at most `http_max_connections` connections are accepted at once; the rest wait in the
///   kernel's listen backlog;
/// - one client address (IPv6: its /64) holds at most its share of them
///   (`http_max_connections_per_client`, a quarter by default); its further connections are
///   closed as soon as they are accepted.
///
/// Every request carries the peer's address as the extension
/// `axum::extract::ConnectInfo<SocketAddr>`.
///
/// The idle and stall watches look at atomic counters a few times per period (a request, a
/// write or a body chunk wakes nothing and reads no clock), so each bound holds within a
/// quarter of its length after it is due.
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
    let router = app;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let builder = Arc::new(builder);
    let conn_limits = ConnectionLimits {
        request: limits.request_timeout(),
        first_request: limits.header_read_timeout(),
        idle: limits.idle_timeout(),
        close: limits.header_read_timeout(),
        write_stall: limits.request_timeout(),
        body_stall: limits.request_timeout(),
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections()));
    let clients = Arc::new(Clients {
        share: limits.max_connections_per_client(),
        held: Mutex::new(HashMap::new()),
    });
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
        let (stream, peer) = tokio::select! {
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
        let Some(share) = clients.admit(peer.ip()) else {
            // Debug only: a client over its share must not buy a log line per connection.
            tracing::debug!("a client address holds its share of connections; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            builder.clone(),
            stream,
            peer,
            router.clone(),
            conn_limits,
            drain_rx.clone(),
            (permit, share),
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

/// Connections held per client address, each at most `share`.
struct Clients {
    share: usize,
    /// At most one entry per connection held, so no larger than the connection cap.
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl Clients {
    /// One more connection of `ip`'s client, unless it holds its share already.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientShare> {
        let key = client_of(ip);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(key).or_insert(0);
        if *count >= self.share {
            return None;
        }
        *count += 1;
        Some(ClientShare {
            clients: self.clone(),
            key,
        })
    }
}

/// Who a connection counts against: its IPv4 address, or the /64 of its IPv6 one (one host
/// commonly has a whole /64 to pick addresses from).
fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
        v4 => v4,
    }
}

/// One connection's place in its client's share, given back when the connection ends.
struct ClientShare {
    clients: Arc<Clients>,
    key: IpAddr,
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        let mut held = self
            .clients
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The bounds one connection is held to (from [`ServerArgs`]).
#[derive(Clone, Copy)]
struct ConnectionLimits {
    /// A request's response has not started this long after the request arrived: 408.
    request: Duration,
    /// No request started this long after accept: closed (a client that connects and sends
    /// nothing, or only the HTTP/2 preface, holds a slot no longer than a slow header would).
    first_request: Duration,
    /// No request in flight and no response body being sent this long: closed gracefully.
    idle: Duration,
    /// A graceful close not finished after this long (an HTTP/2 peer that never acknowledges
    /// GOAWAY's ping): dropped.
    close: Duration,
    /// The socket refused our writes this long in a row (the client does not read what it
    /// asked for): dropped.
    write_stall: Duration,
    /// A response body not taken this long (its client grants no window, or does not read):
    /// dropped.
    body_stall: Duration,
}

/// What one connection is doing, as its watchdogs see it: counters only, so a request, a
/// write or a body chunk costs an atomic add and no clock read; the watches compare them a few
/// times per period ([`CHECKS`]).
#[derive(Default)]
struct Activity {
    /// Requests in flight (from arrival until the handler has answered).
    in_flight: AtomicUsize,
    /// Response bodies being sent (from the answer until hyper drops the body).
    sending: AtomicUsize,
    /// Requests started (the first-request deadline is met once it is non-zero).
    requests: AtomicU64,
    /// Requests finished, response-body chunks taken, bodies finished: what is not idleness.
    /// Bytes read or written alone are not (an HTTP/2 PING or WINDOW_UPDATE moves bytes).
    events: AtomicU64,
    /// Writes that moved bytes.
    writes: AtomicU64,
    /// Whether the last write attempt was refused (the socket's buffer is full).
    blocked: AtomicBool,
    /// The response bodies being sent, for the body-stall watch. Kept short: dead entries are
    /// pruned when it grows (at most 32 streams' bodies are alive at once).
    bodies: Mutex<Vec<Weak<BodyWatch>>>,
}

/// How many looks a watch takes per period: it fires between the period and 1¼ of it after its
/// condition began.
const CHECKS: u32 = 4;

/// The connection's socket, reporting writes and refused writes to its [`Activity`] (reads
/// are not reported: bytes a client sends are not, alone, a reason to keep its connection).
struct Watched {
    io: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Watched {
    fn written<T>(&self, polled: &Poll<std::io::Result<T>>) {
        let a = &self.activity;
        match polled {
            Poll::Ready(Ok(_)) => {
                a.writes.fetch_add(1, Ordering::Relaxed);
                a.blocked.store(false, Ordering::Relaxed);
            }
            Poll::Pending => a.blocked.store(true, Ordering::Relaxed),
            Poll::Ready(Err(_)) => {}
        }
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.written(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.written(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves one connection until it ends, closing it gracefully when it has been idle or when
/// `drain` turns true, and dropping it when a bound of `limits` is crossed.
async fn connection<S>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: S,
    limits: ConnectionLimits,
    mut drain: watch::Receiver<bool>,
    _held: (OwnedSemaphorePermit, ClientShare),
) where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = Connection {
        router,
        activity: activity.clone(),
        timeout: limits.request,
        peer,
    };
    let io = Watched {
        io: stream,
        activity: activity.clone(),
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    let mut close_armed = false;
    let mut close_by = std::pin::pin!(tokio::time::sleep(limits.close));
    let mut first_request = std::pin::pin!(tokio::time::sleep(limits.first_request));
    let mut waiting_for_first = true;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = drain.wait_for(|d| *d), if !closing => {
                // The grace period of `serve` bounds what follows.
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = &mut first_request, if waiting_for_first => {
                waiting_for_first = false;
                if activity.requests.load(Ordering::Relaxed) == 0 {
                    tracing::debug!("no request within the header-read timeout; closing");
                    return;
                }
            }
            () = idle_for(&activity, limits.idle), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                close_armed = true;
                close_by.as_mut().reset(tokio::time::Instant::now() + limits.close);
            }
            () = &mut close_by, if close_armed => {
                tracing::debug!("graceful close not finished in time; dropping the connection");
                return;
            }
            () = write_stalled(&activity, limits.write_stall) => {
                tracing::debug!(
                    stall_seconds = limits.write_stall.as_secs(),
                    "the client has not read for too long; dropping the connection"
                );
                return;
            }
            () = body_stalled(&activity, limits.body_stall) => {
                tracing::debug!(
                    stall_seconds = limits.body_stall.as_secs(),
                    "a response body has not been taken for too long; dropping the connection"
                );
                return;
            }
        }
    }
}

/// One connection's service, as hyper calls it (`&self`): the router, cloned once per request
/// (as tower requires for `call`), inside the request timeout, counted in flight, its answer's
/// body watched while it is sent.
struct Connection<S> {
    router: S,
    activity: Arc<Activity>,
    timeout: Duration,
    /// Put in every request's extensions as axum's `ConnectInfo`: m2m-core's verifier charges
    /// an opaque token's Clerk call to its client's share of the budget.
    peer: SocketAddr,
}

impl<S> hyper::service::Service<Request<Incoming>> for Connection<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response<Sending>;
    type Error = Infallible;
    type Future = Serving<tower::util::Oneshot<S, Request<Body>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        Serving {
            inner: tower::ServiceExt::oneshot(self.router.clone(), request),
            deadline: None,
            arrived: tokio::time::Instant::now(),
            timeout: self.timeout,
            busy: InFlight::new(self.activity.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being served: its answer, or 408 Request Timeout with an empty body once the
    /// request timeout has passed since the request arrived and the answer has not started (the
    /// request is then dropped, without being polled again).
    ///
    /// The timer is armed only when the answer is not ready at the first poll (which hyper
    /// makes as soon as the request head is parsed), so a request answered at once, as most are,
    /// costs a clock read and no timer; one that waits (for its body, a database, Clerk) is
    /// timed from its arrival, as with `tower-http`'s `Timeout`.
    struct Serving<F> {
        #[pin]
        inner: F,
        #[pin]
        deadline: Option<tokio::time::Sleep>,
        arrived: tokio::time::Instant,
        timeout: Duration,
        busy: InFlight,
    }
}

impl<F> Future for Serving<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response<Sending>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let activity = &this.busy.0;
        // Once armed, the deadline is looked at first: past it, the handler is not run again.
        if let Some(deadline) = this.deadline.as_mut().as_pin_mut()
            && deadline.poll(cx).is_ready()
        {
            return Poll::Ready(Ok(sending(request_timeout(), activity)));
        }
        if let Poll::Ready(Ok(answer)) = this.inner.poll(cx) {
            return Poll::Ready(Ok(sending(answer, activity)));
        }
        if this.deadline.is_none() {
            // A timeout too large to add (a setting of ~u64::MAX seconds) never fires, as with
            // `tokio::time::sleep`, rather than panicking here.
            let sleep = match this.arrived.checked_add(*this.timeout) {
                Some(at) => tokio::time::sleep_until(at),
                None => tokio::time::sleep(*this.timeout),
            };
            this.deadline.set(Some(sleep));
            // Polled once so that it wakes this task (a first poll that took the whole timeout
            // answers 408 now).
            if let Some(deadline) = this.deadline.as_pin_mut()
                && deadline.poll(cx).is_ready()
            {
                return Poll::Ready(Ok(sending(request_timeout(), activity)));
            }
        }
        Poll::Pending
    }
}

/// The answer to a request past its timeout: 408, no body.
fn request_timeout() -> Response {
    let mut late = Response::new(Body::empty());
    *late.status_mut() = StatusCode::REQUEST_TIMEOUT;
    late
}

/// `answer` with its body watched (registered before the request stops counting in flight, so
/// the idle watch never sees a gap between the two).
fn sending(answer: Response, activity: &Arc<Activity>) -> Response<Sending> {
    answer.map(|body| Sending::new(body, activity.clone()))
}

/// One response body's progress, as its connection's body-stall watch sees it.
struct BodyWatch {
    /// Polls that yielded a frame or the end: the client took what came before.
    taken: AtomicU64,
    /// Nothing waits on the client: the last poll found the body itself not ready (the
    /// application is slow) or at its end.
    not_on_client: AtomicBool,
    /// The watch's own notes: `taken` at its last look (`u64::MAX` before the first) and how
    /// many looks in a row found no progress.
    seen: AtomicU64,
    stuck: AtomicU32,
}

impl BodyWatch {
    /// One look of the watch: how many looks in a row have now found the body waiting on the
    /// client (the first look only notes where it stands).
    fn look(&self) -> u32 {
        let taken = self.taken.load(Ordering::Acquire);
        let before = self.seen.swap(taken, Ordering::Relaxed);
        if before != taken || self.not_on_client.load(Ordering::Acquire) {
            self.stuck.store(0, Ordering::Relaxed);
            0
        } else {
            self.stuck.fetch_add(1, Ordering::Relaxed) + 1
        }
    }
}

/// A response body, reporting its progress to its connection: each poll that yields counts as
/// activity (and as progress for the body-stall watch); its end, as activity.
struct Sending {
    inner: Body,
    watch: Arc<BodyWatch>,
    activity: Arc<Activity>,
}

impl Sending {
    fn new(inner: Body, activity: Arc<Activity>) -> Self {
        let watch = Arc::new(BodyWatch {
            taken: AtomicU64::new(0),
            not_on_client: AtomicBool::new(false),
            seen: AtomicU64::new(u64::MAX),
            stuck: AtomicU32::new(0),
        });
        activity.sending.fetch_add(1, Ordering::AcqRel);
        {
            let mut bodies = activity
                .bodies
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Pruned as it grows, so a fast keep-alive client leaves no trail between looks.
            if bodies.len() >= 2 * MAX_CONCURRENT_STREAMS as usize {
                bodies.retain(|b| b.strong_count() > 0);
            }
            bodies.push(Arc::downgrade(&watch));
        }
        Self {
            inner,
            watch,
            activity,
        }
    }
}

impl http_body::Body for Sending {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let not_on_client = !matches!(polled, Poll::Ready(Some(Ok(_))));
        if polled.is_ready() {
            self.watch.taken.fetch_add(1, Ordering::AcqRel);
            self.activity.events.fetch_add(1, Ordering::AcqRel);
        }
        self.watch
            .not_on_client
            .store(not_on_client, Ordering::Release);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        // An event first: a look in between sees it sending, or sees it finished.
        self.activity.events.fetch_add(1, Ordering::AcqRel);
        self.activity.sending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves once no request has been in flight, no response body sent and nothing happened
/// for `idle` (give or take a quarter).
async fn idle_for(activity: &Activity, idle: Duration) {
    let step = idle / CHECKS;
    let mut quiet = 0;
    let mut seen = activity.events.load(Ordering::Acquire);
    loop {
        tokio::time::sleep(step).await;
        let events = activity.events.load(Ordering::Acquire);
        if activity.in_flight.load(Ordering::Acquire) == 0
            && activity.sending.load(Ordering::Acquire) == 0
            && events == seen
        {
            quiet += 1;
            if quiet >= CHECKS {
                return;
            }
        } else {
            quiet = 0;
            seen = events;
        }
    }
}

/// Resolves once the socket has refused our writes, with none getting through, for `stall`
/// (give or take a quarter).
async fn write_stalled(activity: &Activity, stall: Duration) {
    let step = stall / CHECKS;
    let mut stuck = 0;
    let mut seen = activity.writes.load(Ordering::Acquire);
    loop {
        tokio::time::sleep(step).await;
        let writes = activity.writes.load(Ordering::Acquire);
        if activity.blocked.load(Ordering::Acquire) && writes == seen {
            stuck += 1;
            if stuck >= CHECKS {
                return;
            }
        } else {
            stuck = 0;
            seen = writes;
        }
    }
}

/// Resolves once one response body has waited on its client, taking nothing, for `stall`
/// (give or take a quarter): not polled at all (an HTTP/2 stream whose window the client keeps
/// at zero), or polled and its last chunk still not taken.
async fn body_stalled(activity: &Activity, stall: Duration) {
    let step = stall / CHECKS;
    loop {
        tokio::time::sleep(step).await;
        let mut bodies = activity
            .bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        bodies.retain(|b| b.strong_count() > 0);
        if bodies
            .iter()
            .filter_map(Weak::upgrade)
            .any(|b| b.look() >= CHECKS)
        {
            return;
        }
    }
}

/// Counts a request in flight on its connection while alive.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.requests.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // An event first: a look in between sees it in flight, or sees it finished.
        self.0.events.fetch_add(1, Ordering::AcqRel);
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

/// How a service's `main` ends: success, or `name: error` on stderr and a failure. Spans still
/// waiting to be exported are sent first (see [`trace`](crate::trace)).
pub fn exit(name: &str, result: Result<(), impl Display>) -> ExitCode {
    crate::trace::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
