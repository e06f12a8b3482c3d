//! Operations endpoints (no authentication).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::ApiContext;

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> Json<Value> {
    service_kit::ops::alive()
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready"), (status = 503, description = "Database unreachable")))]
pub async fn readyz(State(ctx): State<ApiContext>) -> (StatusCode, Json<Value>) {
    service_kit::ops::readiness(ctx.db.ping().await, "database unreachable")
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(ctx): State<ApiContext>) -> Response {
    service_kit::ops::metrics(ctx.metrics.registry())
}
