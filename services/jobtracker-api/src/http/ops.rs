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

/// Readiness: the database answers (asked at most once a second, however many ask).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready"), (status = 503, description = "Database unreachable")))]
pub async fn readyz(State(ctx): State<ApiContext>) -> (StatusCode, Json<Value>) {
    service_kit::ops::readiness(ctx.db.ready().await, "database unreachable")
}

/// Prometheus metrics: on the metrics listener only (`METRICS_BIND`), so not in the OpenAPI
/// document of the public port.
pub async fn metrics(State(ctx): State<ApiContext>) -> Response {
    service_kit::ops::metrics(ctx.metrics.registry())
}
