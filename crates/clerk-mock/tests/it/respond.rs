//! `ClerkMock::respond`, the way in without wiremock's server: the same answers, controls and
//! counters, and nothing kept.

use std::time::Duration;

use clerk_mock::{ClerkMock, Endpoint, Fault};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{call, demo_machines, error_code};

fn bearer(key: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {key}").parse().expect("header value"),
    );
    h
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("JSON body")
}

#[tokio::test]
async fn respond_answers_as_the_server_does() {
    let mock = ClerkMock::start_demo().await;
    let (_, rep, _) = demo_machines(&mock);
    let instance = mock.instance_secret_key();
    let cases: [(Method, &str, Option<&str>, Option<Value>); 8] = [
        (
            Method::POST,
            "/m2m_tokens",
            Some(&rep.secret_key),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/v1/m2m_tokens",
            Some("ak_wrong"),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/m2m_tokens/verify",
            None,
            Some(json!({"token": "x"})),
        ),
        (
            Method::GET,
            "/v1/m2m_tokens?subject=mch_x&limit=10.0",
            Some(&instance),
            None,
        ),
        (Method::GET, "/v1/jwks", Some(&rep.secret_key), None),
        (
            Method::GET,
            "/v1/./machines/../machines",
            Some(&instance),
            None,
        ),
        (Method::DELETE, "/v1/nowhere", None, None),
        (Method::GET, "/healthz", None, None),
    ];
    for (method, target, key, body) in cases {
        let over_http = call(&mock, method.clone(), target, key, body.clone()).await;
        let headers = key.map(bearer).unwrap_or_default();
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let direct = mock
            .respond(method.as_str(), target, &headers, &bytes)
            .await;
        let what = format!("{method} {target}");
        assert_eq!(direct.status, over_http.status.as_u16(), "{what}");
        assert_eq!(direct.headers["content-type"], "application/json", "{what}");
        assert!(direct.headers.contains_key("date"), "{what}");
        let direct = json_of(&direct.body);
        assert_eq!(error_code(&direct), error_code(&over_http.body), "{what}");
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&direct), keys(&over_http.body), "{what}");
    }
    assert_eq!(
        mock.calls(Endpoint::CreateToken),
        4,
        "both ways are counted"
    );
    assert_eq!(
        mock.calls(Endpoint::ListMachines),
        2,
        "dot segments resolved"
    );
}

#[tokio::test]
async fn respond_applies_faults_outage_and_counts() {
    let mock = ClerkMock::start_demo().await;
    let (api, _, _) = demo_machines(&mock);
    let key = bearer(&api.secret_key);
    let verify = || {
        mock.respond(
            "POST",
            "/m2m_tokens/verify",
            &key,
            br#"{"token":"mt_0123456789abcdef0123456789abcdef"}"#,
        )
    };
    mock.inject(Some(Endpoint::VerifyToken), Fault::rate_limited(3), 1);
    mock.inject(None, Fault::status(502), 1);
    let limited = verify().await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers["retry-after"], "3");
    assert_eq!(error_code(&json_of(&limited.body)), "too_many_requests");
    assert_eq!(verify().await.status, 502, "faults queue in order");
    assert_eq!(verify().await.status, 404, "then the normal answer");
    mock.set_outage(Some(503));
    assert_eq!(verify().await.status, 503);
    let health = mock
        .respond("GET", "/healthz", &http::HeaderMap::new(), b"")
        .await;
    assert_eq!(health.status, 200);
    mock.set_outage(None);
    assert_eq!(mock.calls(Endpoint::VerifyToken), 4);
    assert_eq!(mock.calls(Endpoint::Health), 1);
}

#[tokio::test]
async fn respond_waits_out_latency_and_delay_faults() {
    let mock = ClerkMock::start_demo().await;
    // Paused after the server is up: the sleeps below then advance the clock, not the test.
    tokio::time::pause();
    mock.set_latency(Duration::from_secs(2));
    mock.inject(
        Some(Endpoint::Health),
        Fault::Delay(Duration::from_secs(5)),
        1,
    );
    let started = tokio::time::Instant::now();
    let health = mock
        .respond("GET", "/healthz", &http::HeaderMap::new(), b"")
        .await;
    assert_eq!(health.status, 200);
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "latency + delay"
    );
    let started = tokio::time::Instant::now();
    mock.respond("GET", "/healthz", &http::HeaderMap::new(), b"")
        .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(7),
        "latency alone once the fault is used: {took:?}"
    );
}

#[tokio::test]
async fn a_target_that_is_no_path_is_refused_uncounted() {
    let mock = ClerkMock::start_demo().await;
    for target in ["*", "", "v1/jwks", "http://elsewhere/v1/jwks"] {
        let answer = mock
            .respond("GET", target, &http::HeaderMap::new(), b"")
            .await;
        assert_eq!(answer.status, 400, "{target:?}");
        assert_eq!(error_code(&json_of(&answer.body)), "bad_request");
    }
    assert_eq!(mock.total_requests(), 0);
}

#[tokio::test]
async fn only_the_wiremock_server_keeps_requests_and_compaction_frees_them() {
    let mock = ClerkMock::start_demo().await;
    let body = json!({"pad": "x".repeat(1000)});
    let sent = body.to_string().len() as u64;
    for _ in 0..3 {
        call(&mock, Method::POST, "/v1/nowhere", None, Some(body.clone())).await;
    }
    assert_eq!(mock.retained_requests(), 3);
    assert_eq!(mock.retained_body_bytes(), 3 * sent);
    let big = vec![b'x'; 1 << 20];
    for _ in 0..3 {
        let answer = mock
            .respond("POST", "/v1/nowhere", &http::HeaderMap::new(), &big)
            .await;
        assert_eq!(answer.status, 404);
    }
    assert_eq!(mock.retained_requests(), 3, "respond keeps nothing");
    assert_eq!(mock.retained_body_bytes(), 3 * sent);
    assert!(!mock.compact_if_over(3).await, "not over the threshold");
    assert!(mock.compact_if_over(2).await);
    assert_eq!(mock.retained_requests(), 0);
    assert_eq!(mock.retained_body_bytes(), 0);
    assert_eq!(mock.calls(Endpoint::Unknown), 6, "counters survive");
}
