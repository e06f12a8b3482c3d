//! Routes, state and middleware.

mod applications;
mod extract;
mod ops;
mod responses;
pub mod transfers;
mod users;
pub mod validate;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware;
use m2m_core::Verifier;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
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
use service_kit::ops::HttpMetrics;

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct ApiContext {
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
        (name = "operations", description = "Health, readiness and metrics"),
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
        .routes(routes!(ops::metrics))
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

#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = crate::db::new_id("req");
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

pub use service_kit::ops::method_label;

/// The Content-Security-Policy of every response. Swagger UI loads its scripts, styles and the
/// OpenAPI document from this origin only (no inline scripts: its initializer is a file); it
/// needs inline styles and `data:` images. Nothing may frame a page where people paste tokens.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The whole application: API routes, `/openapi.json`, `/swagger`, middleware.
pub fn router(ctx: ApiContext) -> Router {
    router_with(ctx, Router::new())
}

/// [`router`] plus `extra` routes behind the same middleware (benchmarks compare a route with
/// and without authentication this way; the service itself adds none).
pub fn router_with(ctx: ApiContext, extra: Router<ApiContext>) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let (api, openapi) = api();
    let http_metrics = ctx.metrics.http.clone();
    Router::new()
        .merge(api.merge(extra).with_state(ctx))
        .merge(SwaggerUi::new("/swagger").url("/openapi.json", openapi))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn_with_state(http_metrics, HttpMetrics::track))
        .layer(CatchPanicLayer::custom(|_| {
            service_kit::problem(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                // The path only: never headers (tokens) or the query. With traces on, a server
                // span whose parent is the caller's span named by `traceparent`.
                let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
                let span = tracing::info_span!("request", otel.kind = "server", request_id = %id, method = method_label(req.method()), route, path = %req.uri().path());
                service_kit::trace::set_parent_from(&span, req.headers());
                span
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, RandomRequestId))
        // Outermost, so every response carries them (404s and caught panics too).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}
