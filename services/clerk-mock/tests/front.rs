//! The public port answers through `ClerkMock::respond`: it keeps nothing of the requests it
//! serves, and the mock's controls (faults, outage) apply there as on wiremock's own server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clerk_mock::{ClerkMock, Endpoint, Fault, Seed};
use clerk_mock_service::MockService;

async fn service() -> MockService {
    let mock = ClerkMock::try_start(Seed::demo(), None, None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    MockService::start(mock, listener, service_kit::ServerArgs::default()).unwrap()
}

#[tokio::test]
async fn large_unauthenticated_bodies_on_the_public_port_are_not_kept() {
    let service = service().await;
    let http = reqwest::Client::new();
    let body = vec![b'x'; 512 * 1024];
    for _ in 0..200 {
        let answer = http
            .post(format!("{}/v1/no_such_route", service.url()))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404);
    }
    let mock = service.mock();
    assert_eq!(
        mock.calls(Endpoint::Unknown),
        200,
        "every request was served"
    );
    // wiremock's server keeps a copy of every request it serves until compacted: the public
    // port must not go through it.
    assert_eq!(mock.retained_requests(), 0);
    assert_eq!(mock.retained_body_bytes(), 0);
}

#[tokio::test]
async fn faults_and_outages_apply_on_the_public_port() {
    let service = service().await;
    let http = reqwest::Client::new();
    let mock = service.mock();
    let api = mock.machine_by_name("JobTracker.API").unwrap();
    let verify = || {
        http.post(format!("{}/v1/m2m_tokens/verify", service.url()))
            .bearer_auth(&api.secret_key)
            .json(&serde_json::json!({ "token": "mt_0123456789abcdef0123456789abcdef" }))
            .send()
    };

    mock.inject(Some(Endpoint::VerifyToken), Fault::rate_limited(7), 1);
    let limited = verify().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    assert_eq!(limited.headers()["content-type"], "application/json");
    assert!(limited.headers().contains_key("date"));
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "too_many_requests");
    assert_eq!(
        verify().await.unwrap().status(),
        404,
        "the fault was used up"
    );

    mock.set_outage(Some(503));
    assert_eq!(verify().await.unwrap().status(), 503);
    let health = http
        .get(format!("{}/healthz", service.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "health answers through an outage");
    mock.set_outage(None);
    assert_eq!(mock.calls(Endpoint::VerifyToken), 3);
    assert_eq!(mock.retained_requests(), 0);
}
