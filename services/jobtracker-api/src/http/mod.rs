//! Routes, state and middleware.

mod applications;
mod extract;
mod ops;
mod responses;
pub mod transfers;
mod users;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use m2m_core::Verifier;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use extract::Caller;
pub use users::{DOCX, content_disposition, sniff};

use crate::db::Db;
use crate::metrics::Metrics;
use crate::policy::Role;
use crate::store::ResumeLimits;

/// Shared state of every handler: one reference count, so handing it to a request costs one
/// atomic increment (axum clones the state for every request, more than once).
#[derive(Clone, Debug)]
pub struct ApiContext(Arc<ApiState>);

impl ApiContext {
    /// The state, shared.
    pub fn new(state: ApiState) -> Self {
        Self(Arc::new(state))
    }
}

impl std::ops::Deref for ApiContext {
    type Target = ApiState;
    fn deref(&self) -> &ApiState {
        &self.0
    }
}

/// What [`ApiContext`] shares.
#[derive(Debug)]
pub struct ApiState {
    pub db: Db,
    pub verifier: Arc<Verifier>,
    /// Machine id → role.
    pub roles: Arc<Vec<(String, Role)>>,
    pub metrics: Arc<Metrics>,
    pub resume_max_bytes: usize,
    /// Per user: `RESUME_MAX_FILES`, `RESUME_QUOTA_BYTES`.
    pub resume_limits: ResumeLimits,
    /// Resume bodies in memory at once (uploads, downloads), and each user's share.
    pub transfers: Arc<transfers::Transfers>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "JobTracker API", description = "Users authenticate with a Clerk session JWT; the candidate-representer and job-applier bots with Clerk M2M tokens. Use the Authorize button with either."),
    modifiers(&BearerAuth),
    components(schemas(jobtracker_types::Problem)),
    tags(
        (name = "identity", description = "Who is calling"),
        (name = "users", description = "Candidate profiles"),
        (name = "resumes", description = "Resume files"),
        (name = "applications", description = "Job applications, their status and leases"),
        (name = "questions", description = "Screening questions"),
        (name = "operations", description = "Health and readiness (metrics are on a listener of their own, METRICS_BIND)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("Clerk session JWT or M2M token (mt_… or JWT)")
                    .description(Some(
                        "Paste a Clerk session JWT (users) or an M2M token (bots).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The routes and their OpenAPI document. Every API route is added through `routes!`, so none
/// can exist without being documented.
pub fn api() -> (Router<ApiContext>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(users::whoami))
        .routes(routes!(users::upsert_profile))
        .routes(routes!(users::me))
        .routes(routes!(users::get_user))
        .routes(routes!(users::upload_resume, users::list_resumes))
        .routes(routes!(users::delete_resume))
        .routes(routes!(users::download_resume))
        .routes(routes!(applications::create, applications::list))
        .routes(routes!(applications::claim))
        .routes(routes!(applications::get))
        .routes(routes!(applications::events))
        .routes(routes!(applications::update_status))
        .routes(routes!(
            applications::renew_lease,
            applications::release_lease
        ))
        .routes(routes!(applications::questions))
        .routes(routes!(applications::answer))
        .split_for_parts()
}

/// `/metrics` alone, for its own listener (`METRICS_BIND`): the public port answers it 404.
pub fn metrics_router(ctx: &ApiContext) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(ops::metrics))
        .with_state(ctx.clone())
}

#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        // `req_` + a new id's tail, formatted on the stack: one copy, into the header.
        let mut id = [0u8; 28];
        id[..4].copy_from_slice(b"req_");
        id[4..].copy_from_slice(&crate::db::id_tail());
        HeaderValue::from_bytes(&id).ok().map(RequestId::new)
    }
}

pub use service_kit::ops::method_label;

/// The Content-Security-Policy of every response. Swagger UI loads its scripts, styles and the
/// OpenAPI document from this origin only (no inline scripts: its initializer is a file); it
/// needs inline styles and `data:` images. Nothing may frame a page where people paste tokens.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Sets the security headers every response carries: `X-Frame-Options: DENY` and
/// `X-Content-Type-Options: nosniff` always, the [`CONTENT_SECURITY_POLICY`] unless the route
/// set its own.
fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    response
}

/// Longest path a log line carries, bytes: a client chooses the path.
const LOGGED_PATH_MAX: usize = 256;

/// `path`, cut at [`LOGGED_PATH_MAX`] bytes (on a character boundary).
fn bounded(path: &str) -> &str {
    if path.len() <= LOGGED_PATH_MAX {
        return path;
    }
    let mut end = LOGGED_PATH_MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// What `TraceLayer` does with a 5xx or a failed response body. A 503 is a refusal the client is
/// told to retry (verification budget spent, Clerk or the database unavailable, uploads full):
/// its cause is logged, rate-limited, where it is known, so here it is DEBUG. Anything else is a
/// fault the operator must see: ERROR, at most [`service_kit::LogThrottle`]'s rate, each line
/// counting the ones held back.
fn on_failure(
    class: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _: &tracing::Span,
) {
    use std::sync::LazyLock;
    use tower_http::classify::ServerErrorsFailureClass;
    static FAILURES: LazyLock<service_kit::LogThrottle> =
        LazyLock::new(service_kit::LogThrottle::default);
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    match class {
        ServerErrorsFailureClass::StatusCode(status)
            if status == axum::http::StatusCode::SERVICE_UNAVAILABLE =>
        {
            tracing::debug!(status = status.as_u16(), latency_ms, "refused for now");
        }
        class => {
            if let Some(suppressed) = FAILURES.admit() {
                tracing::error!(%class, latency_ms, suppressed, "response failed");
            }
        }
    }
}

/// The whole application: API routes, `/openapi.json`, `/swagger`, middleware.
pub fn app(
    ctx: ApiContext,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    app_with(ctx, Router::new())
}

/// [`app`] plus `extra` routes behind the same middleware (benchmarks compare a route with
/// and without authentication this way; the service itself adds none).
///
/// The router holds the routes and the metrics (which need the matched route);
/// the rest of the middleware wraps the router once, outside it: `Router::layer` would put a
/// copy of the whole stack in every route and clone it for every request.
pub fn app_with(
    ctx: ApiContext,
    extra: Router<ApiContext>,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    let request_id = HeaderName::from_static("x-request-id");
    let (api, openapi) = api();
    let http_metrics = ctx.metrics.http.clone();
    let router = Router::new()
        .merge(api.merge(extra).with_state(ctx))
        .merge(SwaggerUi::new("/swagger").url("/openapi.json", openapi))
        // Swagger UI's handlers get their (empty) state now: axum layers a handler still
        // waiting for its state again on every request.
        .with_state(())
        // The one layer inside: each `Router::layer` wraps every route in another boxed service,
        // cloned for every request.
        .layer(http_metrics.track_layer());
    tower::ServiceBuilder::new()
        // Outermost, so every response carries them (404s and caught panics too); one layer
        // for the three, where three `SetResponseHeaderLayer`s would nest three futures.
        .map_response(|r: axum::http::Response<_>| security_headers(r.map(axum::body::Body::new)))
        // A client's id only when short and plain (`service_kit::request_id`); otherwise ours.
        .map_request(|mut req: Request| {
            service_kit::request_id::drop_unacceptable(req.headers_mut());
            req
        })
        .layer(SetRequestIdLayer::new(request_id.clone(), RandomRequestId))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The path only: never headers (tokens) or the query. With traces on, a server
                    // span whose parent is the caller's span named by `traceparent`.
                    // The route template is set on the exported span once routing has matched it
                    // (`Track`).
                    let span = tracing::info_span!("request", otel.kind = "server", request_id = %id, method = method_label(req.method()), path = %bounded(req.uri().path()));
                    service_kit::trace::set_parent_from(&span, req.headers());
                    span
                })
                .on_failure(on_failure),
        )
        .layer(CatchPanicLayer::custom(|_| {
            service_kit::problem(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
        }))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .service(router)
}
