//! The sending side for gRPC: M2M tokens on a tonic channel.
//!
//! tonic's interceptors are synchronous, and getting a token may have to wait for Clerk, so this
//! is a tower layer around the channel rather than an interceptor:
//!
//! ```no_run
//! # async fn f(tokens: m2m_core::TokenSource) -> Result<(), Box<dyn std::error::Error>> {
//! use m2m_core::grpc::BearerLayer;
//! use tower::ServiceBuilder;
//!
//! let channel = tonic::transport::Endpoint::from_static("http://[::1]:50051").connect().await?;
//! let channel = ServiceBuilder::new().layer(BearerLayer::new(tokens)).service(channel);
//! // let mut client = EchoClient::new(channel); every call now carries a token.
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use tonic::Status;
use tonic::body::Body;
use tower_layer::Layer;
use tower_service::Service;

use crate::secret::BearerToken;
use crate::token_source::TokenSource;

/// Largest request body kept for a retry: tonic's default largest message (4 MiB).
const MAX_REPLAY_BYTES: usize = 4 << 20;

/// Adds `authorization: Bearer <token>` from a [`TokenSource`] to every call on a tonic channel
/// (or any tower service taking `http::Request<tonic::body::Body>`).
///
/// When the server answers `UNAUTHENTICATED` (or HTTP 401), exactly the token that was sent is
/// invalidated, so the next call gets a fresh one; and when the request can be replayed, the
/// call is sent once more with a fresh token, never more. A rejected call did not run on the
/// server, so replaying it is safe whether or not the method is idempotent.
///
/// Which calls are replayed: those whose request body is complete when the call starts (every
/// unary and server-streaming call, and a client stream that is already finished), up to 4 MiB.
/// A client-streaming or bidirectional call whose stream is still open is sent as it goes and is
/// not retried; its caller sees the `UNAUTHENTICATED` status, and the next call carries a fresh
/// token. Only a rejection in the response headers (a trailers-only answer, which is how
/// authentication layers answer, this crate's [`AuthLayer`](crate::AuthLayer) included) is seen;
/// an `UNAUTHENTICATED` in the trailers after streamed messages is passed on as is.
///
/// If no token can be had, the call fails with `UNAVAILABLE` (Clerk unreachable, worth retrying)
/// or `INTERNAL` (e.g. the machine key was refused), without reaching the server.
#[derive(Debug, Clone)]
pub struct BearerLayer {
    tokens: TokenSource,
}

impl BearerLayer {
    /// Tokens from `tokens`.
    pub fn new(tokens: TokenSource) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// The service [`BearerLayer`] wraps around a channel.
#[derive(Debug, Clone)]
pub struct BearerService<S> {
    inner: S,
    tokens: TokenSource,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, ResBody> Service<Request<Body>> for BearerService<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let token = tokens.token().await.map_err(token_status)?;
            let (first, replay) = match buffer(body) {
                Buffered::Whole(whole) => (whole.body(), Some(whole)),
                Buffered::Streaming(body) => (body, None),
            };
            let mut request = Request::from_parts(copy(&parts), first);
            authorize(request.headers_mut(), token.as_ref())?;
            let response = inner.call(request).await.map_err(Into::into)?;
            if !rejected(&response) {
                return Ok(response);
            }
            let Some(sent) = token else {
                return Ok(response);
            };
            if !tokens.replace(&sent) {
                return Ok(response);
            }
            let Some(replay) = replay else {
                tracing::info!(
                    "gRPC call answered UNAUTHENTICATED; its request stream cannot be replayed, the next call gets a fresh M2M token"
                );
                return Ok(response);
            };
            tracing::info!(
                "gRPC call answered UNAUTHENTICATED; retrying once with a fresh M2M token"
            );
            let fresh = tokens.token().await.map_err(token_status)?;
            let mut retry = Request::from_parts(parts, replay.body());
            authorize(retry.headers_mut(), fresh.as_ref())?;
            // The clone was not driven to readiness: wait for it, as tower's contract asks.
            let mut again = inner.clone();
            std::future::poll_fn(|cx| again.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            again.call(retry).await.map_err(Into::into)
        })
    }
}

/// The request line, headers and extensions again, for a retry.
fn copy(parts: &http::request::Parts) -> http::request::Parts {
    let mut request = Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    *request.extensions_mut() = parts.extensions.clone();
    request.into_parts().0
}

/// `UNAUTHENTICATED` in a trailers-only answer, or an HTTP 401 (e.g. from a proxy).
fn rejected<B>(response: &Response<B>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response
            .headers()
            .get("grpc-status")
            .is_some_and(|v| v.as_bytes() == b"16")
}

fn authorize(headers: &mut HeaderMap, token: Option<&BearerToken>) -> Result<(), BoxError> {
    let Some(token) = token else {
        return Ok(());
    };
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| Status::internal("the M2M token is not a valid header value"))?;
    value.set_sensitive(true);
    headers.insert(header::AUTHORIZATION, value);
    Ok(())
}

fn token_status(e: crate::TokenError) -> BoxError {
    let message = format!("no M2M token: {e}");
    Box::new(if e.is_transient() {
        Status::unavailable(message)
    } else {
        Status::internal(message)
    })
}

/// A request body read to its end, to be sent again.
struct Whole {
    data: Bytes,
    trailers: Option<HeaderMap>,
}

impl Whole {
    fn body(&self) -> Body {
        let mut frames = vec![Ok::<_, std::convert::Infallible>(http_body::Frame::data(
            self.data.clone(),
        ))];
        if let Some(t) = &self.trailers {
            frames.push(Ok(http_body::Frame::trailers(t.clone())));
        }
        Body::new(StreamBody::new(futures::stream::iter(frames)))
    }
}

enum Buffered {
    Whole(Whole),
    /// The frames read so far, then the rest of the body as it comes.
    Streaming(Body),
}

/// Reads the frames that are ready now. A body that ends without waiting (a unary request is
/// one encoded message) is kept whole for a retry; one that would wait for more (an open client
/// stream), errs or exceeds [`MAX_REPLAY_BYTES`] is passed on as a stream, its read frames first.
fn buffer(mut body: Body) -> Buffered {
    let mut data = BytesMut::new();
    let mut trailers = None;
    let mut error = None;
    loop {
        if data.len() > MAX_REPLAY_BYTES {
            break;
        }
        // A noop waker: if the body is not ready, the real task polls it again below and
        // registers its own waker then.
        match body.frame().now_or_never() {
            Some(None) => {
                return Buffered::Whole(Whole {
                    data: data.freeze(),
                    trailers,
                });
            }
            Some(Some(Ok(frame))) => match frame.into_data() {
                Ok(d) => data.extend_from_slice(&d),
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers = Some(t);
                    }
                }
            },
            Some(Some(Err(status))) => {
                error = Some(status);
                break;
            }
            None => break,
        }
    }
    let mut head: Vec<Result<http_body::Frame<Bytes>, Status>> = Vec::new();
    if !data.is_empty() {
        head.push(Ok(http_body::Frame::data(data.freeze())));
    }
    if let Some(t) = trailers {
        head.push(Ok(http_body::Frame::trailers(t)));
    }
    let rest = match error {
        Some(status) => {
            head.push(Err(status));
            None
        }
        None => Some(BodyStream::new(body)),
    };
    let stream = futures::stream::iter(head).chain(futures::stream::iter(rest).flatten());
    Buffered::Streaming(Body::new(StreamBody::new(stream)))
}
