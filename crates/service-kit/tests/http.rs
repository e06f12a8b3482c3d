//! The HTTP answers every service shares.

use axum::http::{StatusCode, header};
use service_kit::ops::{Exposition, PROMETHEUS_TEXT, router};
use service_kit::problem;

#[tokio::test]
async fn the_body_is_rfc_9457_with_an_optional_field() {
    let r = problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "too long",
        Some("company"),
    );
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let bytes = axum::body::to_bytes(r.into_body(), 1024)
        .await
        .expect("body");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!({"type": "about:blank", "title": "Unprocessable Entity", "status": 422, "detail": "too long", "field": "company"})
    );
    let r = problem(StatusCode::FORBIDDEN, "no", None);
    let bytes = axum::body::to_bytes(r.into_body(), 1024)
        .await
        .expect("body");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    assert!(v.get("field").is_none(), "{v}");
}

#[test]
fn families_and_samples_in_the_text_format() {
    let mut e = Exposition::default();
    e.family("http_requests_total", "counter", "Requests.")
        .sample(
            "http_requests_total",
            &[("route", "/a"), ("odd", "x\"y\\z\n")],
            3,
        );
    e.counter("bot_asks_total", "Asks.", 2);
    assert_eq!(
        e.finish(),
        "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n\
         http_requests_total{route=\"/a\",odd=\"x\\\"y\\\\z\\n\"} 3\n\
         # HELP bot_asks_total Asks.\n# TYPE bot_asks_total counter\nbot_asks_total 2\n"
    );
}

#[tokio::test]
async fn the_router_serves_liveness_and_metrics() {
    use tower::ServiceExt;
    let app = router(|| "up 1\n".to_owned());
    let get = |path: &str| {
        axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let r = app.clone().oneshot(get("/healthz")).await.expect("answer");
    assert_eq!(r.status(), 200);
    let r = app.oneshot(get("/metrics")).await.expect("answer");
    assert_eq!(r.headers()[header::CONTENT_TYPE], PROMETHEUS_TEXT);
    let body = axum::body::to_bytes(r.into_body(), 1024)
        .await
        .expect("body");
    assert_eq!(&body[..], b"up 1\n");
}
