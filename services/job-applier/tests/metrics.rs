//! `/metrics` parses as Prometheus text and counts what the bot does: its own work, its HTTP
//! requests, its Clerk calls and token mints.

use std::sync::Arc;

use bot_runtime::{Bot, BotArgs};
use clerk_mock::ClerkMock;
use m2m_core::config::{ClerkArgs, TokenArgs};
use test_support::metrics::Metrics;
use tower::ServiceExt;

async fn get(router: &axum::Router, path: &str) -> (u16, String) {
    let request = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
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
    let outbox = tempfile::tempdir().expect("dir");
    let config = job_applier::Config {
        common: BotArgs {
            // Nothing listens there: the pass mints a token, then cannot reach the API.
            jobtracker_api_url: "http://127.0.0.1:9".into(),
            clerk: ClerkArgs {
                clerk_api_base_url: mock.api_url(),
                clerk_machine_secret_key_file: None,
                clerk_machine_secret_key: mock
                    .machine_by_name("JobApplier.Bot")
                    .map(|m| m.secret_key.into()),
            },
            token: TokenArgs::default(),
            poll_interval_seconds: 1,
            log: Default::default(),
            server: Default::default(),
        },
        bind: "127.0.0.1:0".parse().expect("addr"),
        metrics_bind: "127.0.0.1:0".parse().expect("addr"),
        outbox_dir: outbox.path().to_owned(),
        submit_url: None,
        lease_seconds: 30,
        max_attempts: 3,
    };
    let applier = Arc::new(job_applier::Applier::from_config(&config).expect("config"));
    let err = applier
        .run_once()
        .await
        .expect_err("the API is unreachable");
    assert!(err.is_transient(), "{err}");
    let router = applier.clone().router();
    assert_eq!(get(&router, "/healthz").await.0, 200);
    // The public address does not serve /metrics; the metrics listener's router does.
    assert_eq!(get(&router, "/metrics").await.0, 404);
    let (status, text) = get(&applier.metrics_router(), "/metrics").await;
    assert_eq!(status, 200);
    Metrics::parse(&text).assert_bot_pass(
        "applier",
        &[
            "claimed",
            "submitted",
            "resubmissions_avoided",
            "failed",
            "released",
            "lost_claims",
        ],
        "job-applier",
        ("GET", "/healthz", "200"),
    );
}
