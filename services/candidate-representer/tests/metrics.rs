//! `/metrics` parses as Prometheus text and counts what the bot does: its own work, its HTTP
//! requests (`/v1/ask` included), its Clerk calls and token mints.

use std::sync::Arc;

use bot_runtime::{Bot, BotArgs};
use clerk_mock::ClerkMock;
use m2m_core::config::{ClerkArgs, JwtArgs, TokenArgs};
use test_support::metrics::Metrics;
use tower::ServiceExt;

async fn call(router: &axum::Router, method: &str, path: &str) -> (u16, String) {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{}"))
        .expect("request");
    let r = router.clone().oneshot(request).await.expect("answer");
    let status = r.status().as_u16();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn metrics_parse_and_count_mints_clerk_calls_and_requests() {
    let mock = ClerkMock::start_demo().await;
    let config = candidate_representer::Config {
        common: BotArgs {
            // Nothing listens there: the pass mints a token, then cannot reach the API.
            jobtracker_api_url: "http://127.0.0.1:9".into(),
            clerk: ClerkArgs {
                clerk_api_base_url: mock.api_url(),
                clerk_machine_secret_key_file: None,
                clerk_machine_secret_key: mock
                    .machine_by_name("CandidateRepresenter.Bot")
                    .map(|m| m.secret_key.into()),
            },
            token: TokenArgs::default(),
            poll_interval_seconds: 1,
            log: Default::default(),
            server: Default::default(),
        },
        jwt: JwtArgs {
            clerk_jwks_url: Some(mock.jwks_url()),
            clerk_authorized_parties: vec![mock.authorized_party()],
            clerk_issuer: Some(mock.issuer()),
            ..JwtArgs::default()
        },
        allowed_machine_ids: Vec::new(),
        bind: "127.0.0.1:0".parse().expect("addr"),
        metrics_bind: "127.0.0.1:0".parse().expect("addr"),
    };
    let rep = Arc::new(candidate_representer::Representer::from_config(&config).expect("config"));
    let err = rep.run_once().await.expect_err("the API is unreachable");
    assert!(err.is_transient(), "{err}");
    let router = rep.clone().router();
    // Unauthenticated: refused, and counted under its route template.
    assert_eq!(call(&router, "POST", "/v1/ask").await.0, 401);
    // The public address does not serve /metrics; the metrics listener's router does.
    assert_eq!(call(&router, "GET", "/metrics").await.0, 404);
    let (status, text) = call(&rep.metrics_router(), "GET", "/metrics").await;
    assert_eq!(status, 200);
    Metrics::parse(&text).assert_bot_pass(
        "representer",
        &[
            "questions_answered",
            "questions_flagged",
            "questions_skipped",
            "asks",
        ],
        "candidate-representer",
        ("POST", "/v1/ask", "401"),
    );
}
