//! The HTTP answers every service shares.

use axum::http::{StatusCode, header};
use service_kit::ops::{PROMETHEUS_TEXT, health_router, metrics_router};
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

#[tokio::test]
async fn the_router_serves_liveness_and_metrics_that_parse() {
    use prometheus_parse::Value;
    use service_kit::ops::{HttpMetrics, prometheus_client};
    use tower::ServiceExt;
    let mut registry = prometheus_client::registry::Registry::default();
    let http = HttpMetrics::register(&mut registry);
    let up = prometheus_client::metrics::counter::Counter::<u64>::default();
    registry.register("up_events", "Odd label values are escaped.", up.clone());
    up.inc();
    let app = http.layer(health_router().merge(metrics_router(std::sync::Arc::new(registry))));
    let request = |method: &str, path: &str| {
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let r = app
        .clone()
        .oneshot(request("GET", "/healthz"))
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    let r = app
        .clone()
        .oneshot(request("MADEUP", "/healthz"))
        .await
        .expect("answer");
    assert_eq!(r.status(), 405);
    let r = app
        .clone()
        .oneshot(request("GET", "/nope/123"))
        .await
        .expect("answer");
    assert_eq!(r.status(), 404);
    let r = app
        .oneshot(request("GET", "/metrics"))
        .await
        .expect("answer");
    assert_eq!(r.headers()[header::CONTENT_TYPE], PROMETHEUS_TEXT);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body");
    let text = String::from_utf8(body.to_vec()).expect("UTF-8");
    let scrape = test_support::metrics::Metrics::parse(&text).scrape;
    let value = |metric: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| s.value.clone())
    };
    assert_eq!(
        value(
            "http_requests_total",
            &[("method", "GET"), ("route", "/healthz"), ("status", "200")]
        ),
        Some(Value::Counter(1.0)),
        "{text}"
    );
    // A made-up method is `other`; an unknown path is `unmatched`, never the raw path.
    assert_eq!(
        value(
            "http_requests_total",
            &[("method", "other"), ("status", "405")]
        ),
        Some(Value::Counter(1.0)),
        "{text}"
    );
    assert_eq!(
        value(
            "http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(Value::Counter(1.0)),
        "{text}"
    );
    assert!(
        !text.contains("MADEUP") && !text.contains("/nope/123"),
        "{text}"
    );
    match value(
        "http_request_duration_seconds",
        &[("method", "GET"), ("route", "/healthz")],
    ) {
        Some(Value::Histogram(buckets)) => {
            assert_eq!(buckets.len(), service_kit::ops::LATENCY_BUCKETS.len() + 1);
            assert_eq!(buckets.last().map(|b| b.count), Some(1.0));
        }
        other => panic!("no latency histogram: {other:?}\n{text}"),
    }
    assert_eq!(value("up_events_total", &[]), Some(Value::Counter(1.0)));
}

/// Each route keeps its series once resolved; what does not fit the kept ones (more statuses
/// than the slots, a layer shared by two routes) still lands in the right series.
#[tokio::test]
async fn kept_route_series_count_every_request_in_the_right_series() {
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::get;
    use service_kit::ops::{HttpMetrics, STATUS_SLOTS, prometheus_client};
    use tower::ServiceExt;
    let mut registry = prometheus_client::registry::Registry::default();
    let http = HttpMetrics::register(&mut registry);
    let registry = std::sync::Arc::new(registry);
    // One handler answering the status it is asked for.
    let status = get(|Path(code): Path<u16>| async move {
        StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT)
    });
    // The same layered method router on two routes: one `Track`, two route templates.
    let shared = get(|| async { "ok" }).layer(http.track_layer());
    let app = http
        .layer(axum::Router::new().route("/status/{code}", status))
        .route("/a", shared.clone())
        .route("/b", shared);
    let call = |path: String| {
        let app = app.clone();
        async move {
            let request = axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .expect("request");
            app.oneshot(request).await.expect("answer").status()
        }
    };
    let codes: Vec<u16> = (0..STATUS_SLOTS as u16 + 4).map(|i| 200 + i).collect();
    for round in 1..=3 {
        for code in &codes {
            assert_eq!(call(format!("/status/{code}")).await.as_u16(), *code);
        }
        for path in ["/a", "/b", "/a"] {
            assert_eq!(call(path.into()).await, 200);
        }
        let text = service_kit::ops::render(&registry);
        let m = test_support::metrics::Metrics::parse(&text);
        let count = |route: &str, status: &str| {
            m.value(
                "http_requests_total",
                &[("route", route), ("status", status)],
            )
        };
        let n = f64::from(round);
        for code in &codes {
            assert_eq!(
                count("/status/{code}", &code.to_string()),
                Some(n),
                "status {code}, round {round}: {text}"
            );
        }
        assert_eq!(count("/a", "200"), Some(2.0 * n), "{text}");
        assert_eq!(count("/b", "200"), Some(n), "{text}");
        let observed = |route: &str| match m
            .sample("http_request_duration_seconds", &[("route", route)])
            .map(|s| &s.value)
        {
            Some(prometheus_parse::Value::Histogram(buckets)) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            _ => f64::NAN,
        };
        assert_eq!(observed("/status/{code}"), codes.len() as f64 * n, "{text}");
        assert_eq!(observed("/a"), 2.0 * n, "{text}");
        assert_eq!(observed("/b"), n, "{text}");
    }
}
