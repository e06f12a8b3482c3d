use std::time::Duration;

use clerk_mock::{ClerkMock, Endpoint};
use m2m_core::clerk::{
    ClerkClient, ClerkError, CreateM2mTokenRequest, ListM2mTokensQuery, RetryPolicy,
};
use m2m_core::clock::ManualClock;
use m2m_core::settings::TokenFormat;
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEY, clerk_error, client, created};

fn key(k: &str) -> SecretString {
    SecretString::from(k.to_owned())
}

#[tokio::test]
async fn create_sends_the_exact_request_clerk_expects() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/m2m_tokens"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("clerk-api-version", "2026-05-12"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"token_format": "jwt", "seconds_until_expiration": 900, "claims": {"team": "a"}, "min_remaining_ttl_seconds": 600})))
        .respond_with(created("mt_SECRETVALUE0000000000000000000001", 'a', 900))
        .expect(1)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let c = client(&format!("{}/v1/", server.uri()), &clock);
    let req = CreateM2mTokenRequest {
        token_format: TokenFormat::Jwt,
        seconds_until_expiration: Some(900),
        claims: Some(json!({"team": "a"})),
        min_remaining_ttl_seconds: Some(600),
    };
    let t = c.create_m2m_token(&key(KEY), &req).await.expect("created");
    assert_eq!(t.info.id, format!("mt_{}", "a".repeat(32)));
    assert_eq!(t.token.expose(), "mt_SECRETVALUE0000000000000000000001");
    assert_eq!(t.info.expiration.expect("exp") - t.info.created_at, 900_000);
}

#[tokio::test]
async fn default_create_body_carries_explicit_nulls_and_no_min_remaining() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/m2m_tokens"))
        .and(body_json(
            json!({"token_format": "opaque", "seconds_until_expiration": null, "claims": null}),
        ))
        .respond_with(created("mt_X", 'b', 60))
        .expect(1)
        .mount(&server)
        .await;
    let c = ClerkClient::new(server.uri()).expect("client");
    c.create_m2m_token(&key(KEY), &CreateM2mTokenRequest::default())
        .await
        .expect("created");
}

#[tokio::test]
async fn round_trip_against_clerk_mock() {
    let mock = ClerkMock::start_demo().await;
    let api = mock.machine_by_name("JobTracker.API").expect("api");
    let rep = mock
        .machine_by_name("CandidateRepresenter.Bot")
        .expect("rep");
    let c = ClerkClient::new(mock.api_url()).expect("client");
    let created = c
        .create_m2m_token(
            &key(&rep.secret_key),
            &CreateM2mTokenRequest {
                seconds_until_expiration: Some(120),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(created.info.subject, rep.id);
    assert_eq!(created.info.scopes, vec![api.id.clone()]);

    let verified = c
        .verify_m2m_token(&key(&api.secret_key), created.token.expose())
        .await
        .expect("verify");
    assert_eq!(verified.id, created.info.id);
    assert!(verified.last_used_at.is_some());

    let list = c
        .list_m2m_tokens(
            &key(&rep.secret_key),
            &ListM2mTokensQuery {
                subject: rep.id.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(list.total_count, 1);

    let revoked = c
        .revoke_m2m_token(&key(&rep.secret_key), &created.info.id, Some("done"))
        .await
        .expect("revoke");
    assert!(revoked.revoked);
    assert_eq!(revoked.revocation_reason.as_deref(), Some("done"));

    // JWKS, with the instance key and from the public URL: through the verifier that uses them.
    #[cfg(feature = "verify")]
    jwks(&mock, &c).await;
}

#[cfg(feature = "verify")]
async fn jwks(mock: &ClerkMock, c: &ClerkClient) {
    use m2m_core::settings::KeySource;
    let mut cfg = crate::verify::config(mock);
    assert_eq!(
        cfg.build(c, m2m_core::clock::system())
            .prefetch_keys()
            .await,
        Ok(1)
    );
    cfg.key_source = Some(KeySource::Url(mock.jwks_url()));
    assert_eq!(
        cfg.build(c, m2m_core::clock::system())
            .prefetch_keys()
            .await,
        Ok(1)
    );
}

#[tokio::test]
async fn clerk_errors_are_typed_and_keep_the_clerk_body() {
    let mock = ClerkMock::start_demo().await;
    let api = mock.machine_by_name("JobTracker.API").expect("api");
    let rep = mock
        .machine_by_name("CandidateRepresenter.Bot")
        .expect("rep");
    let c = ClerkClient::new(mock.api_url()).expect("client");

    let err = c
        .verify_m2m_token(&key(&api.secret_key), "mt_UNKNOWN0000000000000000000000000")
        .await
        .expect_err("unknown");
    assert!(matches!(err, ClerkError::NotFound { .. }), "{err:?}");
    assert_eq!(err.code(), Some("resource_not_found"));

    let err = c
        .verify_m2m_token(&key("ak_wrong"), "mt_x")
        .await
        .expect_err("bad key");
    assert!(matches!(err, ClerkError::Unauthorized { .. }), "{err:?}");
    assert_eq!(err.code(), Some("clerk_key_invalid"));

    let err = c
        .create_m2m_token(
            &key(&rep.secret_key),
            &CreateM2mTokenRequest {
                claims: Some(json!({"sub": "x"})),
                ..Default::default()
            },
        )
        .await
        .expect_err("reserved claim");
    assert!(
        matches!(err, ClerkError::BadRequest { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("machine_token_reserved_claim"));

    let err = c
        .list_m2m_tokens(
            &key(&rep.secret_key),
            &ListM2mTokensQuery {
                subject: api.id.clone(),
                ..Default::default()
            },
        )
        .await
        .expect_err("other subject");
    assert!(matches!(err, ClerkError::Forbidden { .. }), "{err:?}");

    let err = c
        .revoke_m2m_token(&key(&rep.secret_key), "not-an-id", None)
        .await
        .expect_err("bad id");
    assert!(matches!(err, ClerkError::BadRequest { .. }));
    assert_eq!(
        mock.calls(Endpoint::RevokeToken),
        0,
        "a malformed id never reaches Clerk"
    );

    let with_trace = c
        .verify_m2m_token(&key("ak_wrong"), "mt_x")
        .await
        .expect_err("bad key")
        .to_string();
    assert!(with_trace.contains("clerk_trace_id"), "{with_trace}");
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(clerk_error(429, "too_many_requests").insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(created("mt_after_wait", 'c', 60))
        .expect(1)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let c = client(&server.uri(), &clock);
    let t = c
        .create_m2m_token(&key(KEY), &CreateM2mTokenRequest::default())
        .await
        .expect("created after waiting");
    assert_eq!(t.token.expose(), "mt_after_wait");
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(2)],
        "waited exactly Retry-After"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_is_surfaced_not_waited_for() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(clerk_error(429, "too_many_requests").insert_header("retry-after", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let err = client(&server.uri(), &clock)
        .create_m2m_token(&key(KEY), &CreateM2mTokenRequest::default())
        .await
        .expect_err("429");
    assert!(
        matches!(err, ClerkError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(120)),
        "{err:?}"
    );
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_surfaced() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(clerk_error(503, "internal_clerk_error"))
        .expect(3)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let err = client(&server.uri(), &clock)
        .list_m2m_tokens(&key("sk_test_x"), &ListM2mTokensQuery::default())
        .await
        .expect_err("503");
    assert!(matches!(err, ClerkError::Unavailable { .. }), "{err:?}");
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 2, "3 attempts, 2 waits");
    assert!(
        sleeps[0] >= Duration::from_millis(50) && sleeps[0] <= Duration::from_millis(100),
        "{sleeps:?}"
    );
    assert!(
        sleeps[1] >= Duration::from_millis(100) && sleeps[1] <= Duration::from_millis(200),
        "exponential: {sleeps:?}"
    );
}

#[tokio::test]
async fn verify_is_retried_at_most_once_whatever_the_policy() {
    // Each verification is admitted once by the miss budget; more attempts would multiply it.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(clerk_error(503, "internal_clerk_error"))
        .expect(2)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let err = client(&server.uri(), &clock)
        .verify_m2m_token(&key(KEY), "mt_x")
        .await
        .expect_err("503");
    assert!(matches!(err, ClerkError::Unavailable { .. }), "{err:?}");
    assert_eq!(clock.sleeps().len(), 1, "2 attempts, 1 wait");
}

#[tokio::test]
async fn transient_failures_recover_within_the_budget() {
    let mock = ClerkMock::start_demo().await;
    let rep = mock
        .machine_by_name("CandidateRepresenter.Bot")
        .expect("rep");
    mock.inject(
        Some(Endpoint::CreateToken),
        clerk_mock::Fault::status(502),
        2,
    );
    let clock = ManualClock::new();
    let c = client(&mock.api_url(), &clock);
    c.create_m2m_token(&key(&rep.secret_key), &CreateM2mTokenRequest::default())
        .await
        .expect("third attempt succeeds");
    assert_eq!(mock.calls(Endpoint::CreateToken), 3);
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for (status, code) in [
        (400, "bad_request"),
        (401, "clerk_key_invalid"),
        (403, "authorization_invalid"),
        (404, "resource_not_found"),
        (422, "form_param_missing"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(clerk_error(status, code))
            .expect(1)
            .mount(&server)
            .await;
        let clock = ManualClock::new();
        let err = client(&server.uri(), &clock)
            .verify_m2m_token(&key(KEY), "mt_x")
            .await
            .expect_err("error");
        assert!(!err.is_transient(), "{status}");
        assert_eq!(err.code(), Some(code));
        assert!(clock.sleeps().is_empty());
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let c = ClerkClient::builder(server.uri())
        .timeout(Duration::from_millis(200))
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    let err = c
        .verify_m2m_token(&key(KEY), "mt_x")
        .await
        .expect_err("timeout");
    assert!(
        matches!(&err, ClerkError::Unavailable { reason, .. } if reason.contains("timed out")),
        "{err:?}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let c = ClerkClient::builder(format!("http://127.0.0.1:{port}"))
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    let err = c
        .verify_m2m_token(&key(KEY), "mt_x")
        .await
        .expect_err("refused");
    assert!(matches!(err, ClerkError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_2xx_with_an_unexpected_body_is_unexpected_not_a_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("{\"object\":\"something_else\"}", "application/json"),
        )
        .mount(&server)
        .await;
    let err = ClerkClient::new(server.uri())
        .expect("client")
        .verify_m2m_token(&key(KEY), "mt_x")
        .await
        .expect_err("bad body");
    assert!(
        matches!(
            err,
            ClerkError::Unexpected {
                status: Some(200),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn invalid_base_urls_are_rejected() {
    assert!(ClerkClient::new("not a url").is_err());
    assert!(ClerkClient::new("ftp://api.clerk.com").is_err());
    assert!(ClerkClient::new("https://api.clerk.com/v1/").is_ok());
}
