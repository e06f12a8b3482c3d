//! Operations endpoints: liveness, readiness, and metrics in the Prometheus text format.
//!
//! Metrics go through [`prometheus_client`], the Prometheus project's own Rust client: each
//! service owns a [`Registry`] (a value, not a process-global recorder, so several services or
//! instances in one process — the tests — keep their numbers apart), registers its families in
//! it, and [`metrics`] renders it in the text exposition format (0.0.4). [`HttpMetrics`] is the
//! request counter and latency histogram every service serves.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::MatchedPath;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

pub use prometheus_client;

/// The content type of the Prometheus text exposition format (0.0.4).
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Liveness: `200 {"status": "ok"}`.
pub fn alive() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: `200 {"status": "ready"}`, or `503 {"status": <why_not>}`.
pub fn readiness(ready: bool, why_not: &str) -> (StatusCode, Json<Value>) {
    if ready {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": why_not })),
        )
    }
}

/// `registry` in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut text = String::with_capacity(4096);
    // Writing to a String fails only if a collector reports an error; none of ours does.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
        tracing::error!(error = %e, "could not encode the metrics");
    }
    text
}

/// A `/metrics` answer: `registry` in the Prometheus text format.
pub fn metrics(registry: &Registry) -> Response {
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], render(registry)).into_response()
}

/// `GET /healthz` ([`alive`]), for a service whose readiness is its liveness.
pub fn health_router() -> Router {
    Router::new().route("/healthz", get(|| async { alive() }))
}

/// `GET /metrics` (`registry`): served on a listener of its own (`METRICS_BIND`), never on a
/// service's public port, where it would tell anyone what is refused and why.
pub fn metrics_router(registry: Arc<Registry>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move { metrics(&registry) }
        }),
    )
}

/// The method as a metric label: the standard methods by name, anything a client makes up as
/// `other`, so no label value comes from raw client input.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Labels [`method_label`] gives, in the order of [`method_slot`].
const METHODS: usize = 10;

/// Index of a [`method_label`] value, for a route's handles.
fn method_slot(label: &'static str) -> usize {
    match label {
        "GET" => 0,
        "POST" => 1,
        "PUT" => 2,
        "PATCH" => 3,
        "DELETE" => 4,
        "HEAD" => 5,
        "OPTIONS" => 6,
        "TRACE" => 7,
        "CONNECT" => 8,
        _ => 9,
    }
}

/// The route label: the matched route template (`/api/users/{user_id}`), never the raw path, or
/// `unmatched`. Holds axum's `MatchedPath` (a shared string), so labelling a request allocates
/// nothing.
#[derive(Clone, Debug)]
pub struct RouteLabel(Option<MatchedPath>);

impl RouteLabel {
    /// The label text.
    pub fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for RouteLabel {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RouteLabel {}

impl Hash for RouteLabel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: RouteLabel,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: &'static str,
    route: RouteLabel,
}

/// Upper bounds of the latency histogram's buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// `http_requests_total{method,route,status}` and
/// `http_request_duration_seconds{method,route}`. Every label value is bounded: the method by
/// [`method_label`], the route by the router's own templates, the status by HTTP.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl HttpMetrics {
    /// New families, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let me = Self::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            me.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            me.latency.clone(),
        );
        me
    }

    /// Records one request.
    pub fn record(
        &self,
        method: &Method,
        route: Option<MatchedPath>,
        status: StatusCode,
        started: Instant,
    ) {
        self.observe(method_label(method), RouteLabel(route), status, started);
    }

    fn observe(
        &self,
        method: &'static str,
        route: RouteLabel,
        status: StatusCode,
        started: Instant,
    ) {
        self.latency
            .get_or_create(&LatencyLabels {
                method,
                route: route.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: status.as_u16(),
            })
            .inc();
    }

    /// The [`TrackLayer`] that records every request in these metrics.
    pub fn track_layer(&self) -> TrackLayer {
        TrackLayer(self.clone())
    }

    /// `router` with every request recorded ([`TrackLayer`]).
    pub fn layer<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        router.layer(self.track_layer())
    }
}

/// Records every request in [`HttpMetrics`] (method, matched route, status, latency): a `tower`
/// layer, not `middleware::from_fn`, which boxes the rest of the stack for every request. Put it
/// on a `Router` with `Router::layer`, once, outside every route, after the router's state is
/// given (`with_state`, `with_state(())` for a stateless one: axum layers a handler still waiting
/// for its state again on every request): it runs inside routing, where the matched route is
/// known. With traces on (the `server` feature) it also puts the route
/// template on the current span, which was made before routing.
///
/// `Router::layer` wraps each route on its own, so each [`Track`] serves one route template:
/// it keeps that route's series (per method, and per status up to [`STATUS_SLOTS`] of them)
/// once resolved, and records a request with an atomic add and the histogram's update, with no
/// label hashed and no lock of the families taken. A request whose route is not the one it
/// kept (a layer put elsewhere than `Router::layer`) is recorded through the families, as are
/// statuses beyond the slots.
#[derive(Clone, Debug)]
pub struct TrackLayer(HttpMetrics);

impl<S> tower_layer::Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            shared: Arc::new(Tracked {
                metrics: self.0.clone(),
                route: OnceLock::new(),
                methods: Default::default(),
            }),
        }
    }
}

/// Distinct statuses a route keeps handles for, per method (200, 401, 403, 404, 422, … are
/// common); the rest go through the family.
pub const STATUS_SLOTS: usize = 8;

/// The families, and one route's series once resolved.
#[derive(Debug)]
struct Tracked {
    metrics: HttpMetrics,
    /// The route this layer instance serves, from its first request.
    route: OnceLock<RouteLabel>,
    methods: [MethodSeries; METHODS],
}

/// One method's series on one route: its latency histogram and its counters by status.
#[derive(Debug, Default)]
struct MethodSeries {
    latency: OnceLock<Histogram>,
    statuses: [OnceLock<(u16, Counter)>; STATUS_SLOTS],
}

impl Tracked {
    /// Records a request on this instance's own route.
    fn observe_kept(&self, method: &'static str, status: StatusCode, started: Instant) {
        let route = self.route.get().cloned().unwrap_or(RouteLabel(None));
        let series = &self.methods[method_slot(method)];
        series
            .latency
            .get_or_init(|| {
                self.metrics
                    .latency
                    .get_or_create(&LatencyLabels {
                        method,
                        route: route.clone(),
                    })
                    .clone()
            })
            .observe(started.elapsed().as_secs_f64());
        let status = status.as_u16();
        let counter = |route| {
            self.metrics
                .requests
                .get_or_create(&RequestLabels {
                    method,
                    route,
                    status,
                })
                .clone()
        };
        for slot in &series.statuses {
            match slot.get() {
                Some((s, c)) if *s == status => {
                    c.inc();
                    return;
                }
                Some(_) => {}
                None => {
                    // The family's own series: if another thread filled this slot first, the
                    // count still lands in the same series.
                    let c = counter(route);
                    let _ = slot.set((status, c.clone()));
                    c.inc();
                    return;
                }
            }
        }
        counter(route).inc();
    }
}

/// The service [`TrackLayer`] makes.
#[derive(Clone, Debug)]
pub struct Track<S> {
    inner: S,
    shared: Arc<Tracked>,
}

impl<S, B> tower_service::Service<axum::http::Request<B>> for Track<S>
where
    S: tower_service::Service<axum::http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let matched = req.extensions().get::<MatchedPath>();
        let kept = self
            .shared
            .route
            .get_or_init(|| RouteLabel(matched.cloned()));
        // Nothing allocated: the kept route is compared by pointer first (the same shared
        // string), the method is a constant.
        let route = if kept.same_as(matched) {
            None
        } else {
            Some(RouteLabel(matched.cloned()))
        };
        let method = method_label(req.method());
        #[cfg(feature = "server")]
        crate::trace::set_attribute(
            &tracing::Span::current(),
            "route",
            route.as_ref().unwrap_or(kept).as_str(),
        );
        TrackFuture {
            inner: self.inner.call(req),
            shared: Some(self.shared.clone()),
            method,
            route,
            started: Instant::now(),
        }
    }
}

impl RouteLabel {
    /// Whether `matched` is this route.
    fn same_as(&self, matched: Option<&MatchedPath>) -> bool {
        match (&self.0, matched) {
            (None, None) => true,
            (Some(a), Some(b)) => std::ptr::eq(a.as_str(), b.as_str()) || a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Track`]: records the request when its response is ready (`route`:
    /// `None` for the layer's own route).
    #[derive(Debug)]
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        shared: Option<Arc<Tracked>>,
        route: Option<RouteLabel>,
        method: &'static str,
        started: Instant,
    }
}

impl<F, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(shared)) = (&result, this.shared.take()) {
            match this.route.take() {
                None => shared.observe_kept(this.method, response.status(), *this.started),
                Some(route) => {
                    shared
                        .metrics
                        .observe(this.method, route, response.status(), *this.started)
                }
            }
        }
        Poll::Ready(result)
    }
}

/// Counters labelled by two fixed strings (e.g. `operation` and `outcome`): the label values
/// are `&'static str`, so recording allocates nothing.
pub type StaticPairCounters = Family<[(&'static str, &'static str); 2], Counter>;
