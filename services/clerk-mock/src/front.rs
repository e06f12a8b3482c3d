//! The service's front door. wiremock runs its own hyper server with no timeouts and no
//! connection cap, so the service keeps it on a private loopback port and serves the public
//! address with [`service_kit::serve`] (the workspace's one server: header-read, request and idle
//! timeouts, a connection cap, a shutdown deadline), forwarding each request to it.

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use clerk_mock::ClerkMock;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Largest request body forwarded (Clerk's Backend API bodies are a few hundred bytes); larger
/// ones get 413 before anything reaches the mock.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus `host`: never
/// forwarded in either direction.
const HOP_BY_HOP: [header::HeaderName; 8] = [
    header::CONNECTION,
    header::HOST,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

struct Upstream {
    /// wiremock's base URL, e.g. `http://127.0.0.1:41234`.
    base: String,
    http: reqwest::Client,
}

/// The mock, served on a public address through [`service_kit::serve`].
pub struct MockService {
    mock: ClerkMock,
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
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(io::Error::other)?;
        let upstream = Arc::new(Upstream {
            base: mock.uri(),
            http,
        });
        let router = Router::new()
            .fallback(forward)
            .with_state(upstream)
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

    /// The mock itself (seed, machines, keys; its own URLs are the private loopback ones).
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

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Names listed in `Connection` are hop-by-hop too.
    let listed: Vec<header::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| header::HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(listed.iter()) {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

async fn forward(
    State(upstream): State<Arc<Upstream>>,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Only origin-form requests (`GET /v1/…`) go on: CONNECT, `OPTIONS *` and the like are no
    // Backend API call, and wiremock cannot take them.
    if method == Method::CONNECT || !uri.path().starts_with('/') {
        return (StatusCode::BAD_REQUEST, "clerk-mock: not an API request").into_response();
    }
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let sent = upstream
        .http
        .request(method, format!("{}{path}", upstream.base))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "clerk-mock: the mock behind the front door did not answer");
            return StatusCode::BAD_GATEWAY.into_response();
        }
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    match answer.bytes().await {
        Ok(bytes) => (status, headers, Body::from(bytes)).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "clerk-mock: the mock's answer broke off");
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}
