//! A tower layer that authenticates any `http::Request`: an axum router (`layer` or
//! `route_layer`), a tonic server (`Server::builder().layer(..)`), a hyper service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use tower_layer::Layer;
use tower_service::Service;

use crate::auth::{Require, authenticate};
use crate::verify::Verifier;

/// The response body of an [`AuthService`]: the inner service's, or a rejection's.
pub type AuthBody<B> = Either<B, Full<Bytes>>;

/// Authenticates every request with a [`Verifier`] before the inner service sees it.
///
/// - The verified [`Principal`](crate::Principal) goes into the request's extensions (axum:
///   `Extension<Principal>` or the `Principal` extractor; tonic: `request.extensions()`).
/// - Each request must meet a [`Require`]ment: the one given for its path (an exact path such as
///   a gRPC method `/pkg.Service/Method`, or a prefix ending in `/` such as `/pkg.Service/`; the
///   longest match wins), else the default ([`Require::authenticated`] unless changed).
/// - Refusals are answered as the axum extractor answers them: 401 / 403 / 503 with
///   `Retry-After` / 500, RFC 6750 `WWW-Authenticate` and a problem+json body; for gRPC requests
///   (`content-type: application/grpc…`) HTTP 200 with `grpc-status` `UNAUTHENTICATED`,
///   `PERMISSION_DENIED`, `UNAVAILABLE` or `INTERNAL` and a fixed `grpc-message`. The token is
///   never part of an answer or a log line.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
    rules: Arc<Rules>,
}

#[derive(Debug, Clone)]
struct Rules {
    default: Require,
    /// (path or prefix ending in `/`, rule); `None` for a public path.
    paths: Vec<(String, Option<Require>)>,
}

impl Rules {
    fn for_path(&self, path: &str) -> Option<&Require> {
        let exact = self.paths.iter().find(|(p, _)| p == path);
        let prefix = || {
            self.paths
                .iter()
                .filter(|(p, _)| p.ends_with('/') && path.starts_with(p.as_str()))
                .max_by_key(|(p, _)| p.len())
        };
        match exact.or_else(prefix) {
            Some((_, rule)) => rule.as_ref(),
            None => Some(&self.default),
        }
    }
}

impl AuthLayer {
    /// Every request must come from an authenticated caller.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            rules: Arc::new(Rules {
                default: Require::authenticated(),
                paths: Vec::new(),
            }),
        }
    }

    /// Every request whose path has no rule of its own must meet `rule`.
    pub fn require(mut self, rule: Require) -> Self {
        Arc::make_mut(&mut self.rules).default = rule;
        self
    }

    /// Requests to `path` (exact, or every path under it when it ends in `/`) must meet `rule`.
    pub fn require_for(mut self, path: impl Into<String>, rule: Require) -> Self {
        Arc::make_mut(&mut self.rules)
            .paths
            .push((path.into(), Some(rule)));
        self
    }

    /// Requests to `path` (exact, or under it when it ends in `/`) pass without credentials and
    /// get no principal: health checks, gRPC reflection.
    pub fn public(mut self, path: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.rules)
            .paths
            .push((path.into(), None));
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B, ResBody> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let Some(rule) = layer.rules.for_path(request.uri().path()) else {
                return inner.call(request).await.map(|r| r.map(Either::Left));
            };
            let (mut parts, body) = request.into_parts();
            let checked =
                match authenticate(&layer.verifier, &parts.headers, &mut parts.extensions).await {
                    Ok(principal) => rule.check(&principal),
                    Err(rejection) => Err(rejection),
                };
            match checked {
                Ok(()) => {
                    let request = Request::from_parts(parts, body);
                    inner.call(request).await.map(|r| r.map(Either::Left))
                }
                Err(rejection) => Ok(rejection.response_for(&parts.headers).map(Either::Right)),
            }
        })
    }
}
