//! The service's front door. wiremock runs its own hyper server with no timeouts and no
//! connection cap, and keeps a copy of every request it serves (body included) until the mock is
//! compacted, so the public address is served by [`service_kit::serve`] (the workspace's one
//! server: header-read, request and idle timeouts, a connection cap, a shutdown deadline), which
//! answers each request with [`ClerkMock::respond`]: the same handling, nothing kept.

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use clerk_mock::ClerkMock;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Largest request body accepted (Clerk's Backend API bodies are a few hundred bytes); larger
/// ones get 413 before anything reaches the mock.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The mock, served on a public address through [`service_kit::serve`].
pub struct MockService {
    mock: Arc<ClerkMock>,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for MockService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockService")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl MockService {
    /// Serves `mock` on `listener` within `limits`.
    pub fn start(
        mock: ClerkMock,
        listener: TcpListener,
        limits: service_kit::ServerArgs,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let mock = Arc::new(mock);
        let router = Router::new()
            .fallback(answer)
            .with_state(mock.clone())
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(service_kit::serve(listener, router, limits, async {
            let _ = stopped.await;
        }));
        // A wildcard bind is reached on loopback.
        let host = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
            ip if ip.is_unspecified() => "[::1]".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        Ok(Self {
            mock,
            url: format!("http://{host}:{}", addr.port()),
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// The mock itself (seed, machines, keys, counters; its own URLs are those of its in-process
    /// wiremock server, on a private loopback port the service does not use).
    pub fn mock(&self) -> &ClerkMock {
        &self.mock
    }

    /// The public base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The public Backend API base, what `CLERK_API_BASE_URL` is set to.
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    /// The public JWKS URL, what `CLERK_JWKS_URL` is set to.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.url)
    }

    /// Stops accepting, lets requests in flight finish within the shutdown grace period, then
    /// stops the mock.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for MockService {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

async fn answer(
    State(mock): State<Arc<ClerkMock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Only origin-form requests (`GET /v1/…`) are Backend API calls: CONNECT, `OPTIONS *` and
    // the like are not.
    if method == Method::CONNECT || !uri.path().starts_with('/') {
        return (StatusCode::BAD_REQUEST, "clerk-mock: not an API request").into_response();
    }
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let answer = mock.respond(method.as_str(), target, &headers, &body).await;
    // An injected fault may carry a status HTTP cannot send (e.g. 1000).
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, answer.headers, Body::from(answer.body)).into_response()
}
