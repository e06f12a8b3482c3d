//! Operations endpoints: liveness, readiness and metrics in the Prometheus text format.

use std::fmt::{Display, Write};

use axum::Json;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

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

/// A `/metrics` answer with `text` (see [`Exposition`]).
pub fn metrics(text: String) -> Response {
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response()
}

/// `GET /healthz` ([`alive`]) and `GET /metrics` (what `render` returns), for a service whose
/// readiness is its liveness.
pub fn router<F>(render: F) -> Router
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/healthz", get(|| async { alive() }))
        .route("/metrics", get(move || async move { metrics(render()) }))
}

/// Writes the Prometheus text exposition format: a family's `# HELP` and `# TYPE` lines, then its
/// samples.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts the family `name` of `kind` (`counter`, `histogram`, …).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample: `name{label="value",…} value`. Label values are escaped.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Display,
    ) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.text.push_str("\\\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
        self
    }

    /// A counter family with one unlabelled sample.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.family(name, "counter", help).sample(name, &[], value)
    }

    /// The text.
    pub fn finish(self) -> String {
        self.text
    }
}
