//! Verification under attack, outage and key rotation (issue #19): one test per rule, against
//! clerk-mock (fault injection, latency) or a wiremock JWKS, on a manual clock.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clerk_mock::{Endpoint, Fault, Seed, SigningKey};
use m2m_core::VerifierConfig;
use m2m_core::VerifyError;
use m2m_core::clock::{Clock, ManualClock};
use m2m_core::settings::{JwksSettings, KeySource, MissBudget, OpaqueCacheSettings};
use m2m_core::verifier::Reason;
use rand::Rng;
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::client;
use crate::verify::{fixture, fixture_with, invalid, jwks_server, token, verifier_with};

fn random_token() -> String {
    let mut rng = rand::rng();
    let tail: String = (0..32)
        .map(|_| rng.random_range(b'A'..=b'Z') as char)
        .collect();
    format!("mt_{tail}")
}

fn is_unavailable(r: &Result<m2m_core::Principal, VerifyError>) -> Option<Duration> {
    match r {
        Err(VerifyError::Unavailable { retry_after, .. }) => Some(*retry_after),
        _ => None,
    }
}

// ---- the miss budget ----

#[tokio::test]
async fn random_tokens_cost_at_most_the_miss_budget_then_503_with_retry_after() {
    let f = fixture().await;
    let (mut not_found, mut refused) = (0, 0);
    for _ in 0..3_000 {
        match f.verify(&random_token()).await {
            Err(VerifyError::Invalid(Reason::NotFound)) => not_found += 1,
            other => {
                let wait = is_unavailable(&other).expect("only 401 or 503");
                assert!(wait >= Duration::from_secs(1), "Retry-After {wait:?}");
                refused += 1;
            }
        }
    }
    // The manual clock stood still: exactly the burst reached Clerk.
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 50);
    assert_eq!((not_found, refused), (50, 2_950));
    let stats = f.verifier.opaque_stats().expect("stats");
    assert_eq!(stats.budget_refusals.load(Ordering::Relaxed), 2_950);
    // The bucket refills at 10 per second.
    f.clock.advance(Duration::from_secs(1));
    for _ in 0..100 {
        let _ = f.verify(&random_token()).await;
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 60);
}

#[tokio::test]
async fn the_budget_settings_are_honoured() {
    let f = fixture_with(Seed::demo(), |_, c| {
        c.cache.budget = MissBudget {
            burst: 3,
            per_second: 1,
        }
    })
    .await;
    for _ in 0..10 {
        let _ = f.verify(&random_token()).await;
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 3);
    f.clock.advance(Duration::from_secs(2));
    for _ in 0..10 {
        let _ = f.verify(&random_token()).await;
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 5);
}

#[tokio::test]
async fn a_valid_cached_token_survives_a_spray_of_100000_random_tokens_with_no_clerk_call() {
    let f = fixture().await;
    let created = f.mint("JobApplier.Bot", json!({}));
    let valid = created["token"].as_str().expect("token");
    f.verify(valid).await.expect("valid");
    let before = f.mock.calls(Endpoint::VerifyToken);
    for i in 0..100_000u32 {
        let _ = f.verify(&random_token()).await;
        if i % 10_000 == 0 {
            let calls = f.mock.calls(Endpoint::VerifyToken);
            f.verify(valid).await.expect("still valid mid-spray");
            assert_eq!(
                f.mock.calls(Endpoint::VerifyToken),
                calls,
                "served from cache"
            );
        }
    }
    let during = f.mock.calls(Endpoint::VerifyToken) - before;
    assert!(during <= 50, "the spray cost {during} Clerk calls");
    let calls = f.mock.calls(Endpoint::VerifyToken);
    f.verify(valid).await.expect("still valid after the spray");
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), calls);
}

#[tokio::test]
async fn rejected_tokens_never_evict_a_valid_tokens_cached_answer() {
    // A tiny cache and no budget to speak of: the rejected tokens overflow their cache many
    // times over, and the valid one still answers without Clerk.
    let f = fixture_with(Seed::demo(), |_, c| {
        c.cache.max_entries = 20;
        c.cache.budget = MissBudget {
            burst: 100_000,
            per_second: 100_000,
        };
    })
    .await;
    let created = f.mint("JobApplier.Bot", json!({}));
    let valid = created["token"].as_str().expect("token");
    f.verify(valid).await.expect("valid");
    for _ in 0..400 {
        f.rejects(&random_token(), invalid(Reason::NotFound)).await;
    }
    let calls = f.mock.calls(Endpoint::VerifyToken);
    assert_eq!(calls, 401);
    f.verify(valid).await.expect("valid");
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), calls, "not evicted");
}

// ---- Clerk 429 and 400 ----

#[tokio::test]
async fn clerk_429_is_not_retried_and_answers_503_with_clerks_retry_after() {
    let f = fixture().await;
    let mut tokens = Vec::new();
    for _ in 0..10 {
        let c = f.mint("JobApplier.Bot", json!({}));
        tokens.push(c["token"].as_str().expect("token").to_owned());
    }
    f.mock
        .inject(Some(Endpoint::VerifyToken), Fault::rate_limited(7), 100);
    for t in &tokens {
        let r = f.verify(t).await;
        assert_eq!(is_unavailable(&r), Some(Duration::from_secs(7)), "{r:?}");
    }
    let calls = f.mock.calls(Endpoint::VerifyToken);
    assert!(calls <= 10, "at most one call per token, got {calls}");
    assert_eq!(calls, 1, "and none while Clerk's Retry-After runs");
    let stats = f.verifier.opaque_stats().expect("stats");
    assert_eq!(stats.clerk_rate_limited.load(Ordering::Relaxed), 10);
    // Once it has passed, Clerk is asked again.
    f.mock.clear_faults();
    f.clock.advance(Duration::from_secs(7));
    f.verify(&tokens[0]).await.expect("valid");
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 2);
}

#[tokio::test]
async fn the_client_never_retries_a_429_on_verify() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/m2m_tokens/verify"))
        .respond_with(crate::support::clerk_error(429, "too_many_requests"))
        .expect(1)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let err = client(&server.uri(), &clock)
        .verify_m2m_token(
            &SecretString::from("ak_x".to_owned()),
            "mt_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
        )
        .await
        .expect_err("429");
    assert!(matches!(
        err,
        m2m_core::clerk::ClerkError::RateLimited { .. }
    ));
    assert!(clock.sleeps().is_empty(), "no backoff sleep either");
}

#[tokio::test]
async fn a_clerk_400_or_422_for_our_request_is_503_and_never_a_cached_401() {
    for status in [400, 422] {
        let f = fixture().await;
        let c = f.mint("JobApplier.Bot", json!({}));
        let t = c["token"].as_str().expect("t");
        f.mock
            .inject(Some(Endpoint::VerifyToken), Fault::status(status), 1);
        let r = f.verify(t).await;
        assert!(is_unavailable(&r).is_some(), "{status}: {r:?}");
        f.verify(t)
            .await
            .expect("not cached: the next request asks Clerk again");
        assert_eq!(f.mock.calls(Endpoint::VerifyToken), 2);
    }
}

// ---- expiry and late answers ----

/// A verify endpoint that always answers 200 with `expired: false` and this `expiration`.
async fn clerk_saying_unexpired(expiration_ms: i64, delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    let body = json!({
        "object": "machine_to_machine_token", "id": format!("mt_{}", "a".repeat(32)),
        "subject": "mch_2xhFjEI5X2qWRvtV13BzSj8H6Dk", "claims": null, "scopes": [],
        "revoked": false, "revocation_reason": null, "expired": false,
        "expiration": expiration_ms, "last_used_at": null, "created_at": 0, "updated_at": 0
    });
    Mock::given(method("POST"))
        .and(path("/m2m_tokens/verify"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(body.to_string(), "application/json")
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

fn opaque_verifier(base: &str, clock: &ManualClock) -> m2m_core::Verifier {
    VerifierConfig {
        api_base_url: base.into(),
        machine_key_file: None,
        verify_key: Some(SecretString::from("ak_api".to_owned())),
        key_source: None,
        policy: Default::default(),
        cache: OpaqueCacheSettings::default(),
        jwks: Default::default(),
        jwt_cache: Default::default(),
        machine_id: None,
    }
    .build(&client(base, clock), Arc::new(clock.clone()))
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn a_token_clerk_calls_unexpired_is_refused_past_its_expiration() {
    let clock = ManualClock::new();
    let now_ms = clock.unix_now().as_millis() as i64;
    // Expired 2 s ago by Clerk's own `expiration`, though `expired: false`.
    let server = clerk_saying_unexpired(now_ms - 2_000, Duration::ZERO).await;
    let v = opaque_verifier(&server.uri(), &clock);
    let t = "mt_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    assert_eq!(
        v.verify_token(t).await.expect_err("expired"),
        invalid(Reason::Expired)
    );
}

#[tokio::test]
async fn a_cached_answer_is_not_served_past_the_tokens_expiration() {
    let clock = ManualClock::new();
    let now_ms = clock.unix_now().as_millis() as i64;
    let server = clerk_saying_unexpired(now_ms + 10_000, Duration::ZERO).await;
    let v = opaque_verifier(&server.uri(), &clock);
    let t = "mt_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    v.verify_token(t).await.expect("valid for 10 s");
    v.verify_token(t).await.expect("cache hit");
    assert_eq!(requests(&server).await, 1);
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        v.verify_token(t).await.expect_err("past its expiration"),
        invalid(Reason::Expired),
        "Clerk still says expired: false; the cache and the check both refuse"
    );
    assert_eq!(
        requests(&server).await,
        2,
        "the lapsed entry was not served"
    );
}

#[tokio::test]
async fn an_answer_that_arrives_late_is_not_served_past_its_valid_until() {
    let clock = ManualClock::new();
    let now_ms = clock.unix_now().as_millis() as i64;
    let server = clerk_saying_unexpired(now_ms + 3_600_000, Duration::from_millis(400)).await;
    let v = Arc::new(opaque_verifier(&server.uri(), &clock));
    let t = "mt_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let slow = {
        let v = v.clone();
        tokio::spawn(async move { v.verify_token(t).await.is_ok() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While Clerk is answering, the cache TTL (60 s) passes.
    clock.advance(Duration::from_secs(61));
    assert!(
        slow.await.expect("join"),
        "the waiting request gets Clerk's answer"
    );
    v.verify_token(t).await.expect("valid");
    assert_eq!(
        requests(&server).await,
        2,
        "the late insert did not outlive the TTL counted from when Clerk was asked"
    );
}

// ---- JWKS ----

fn settings(f: impl FnOnce(&mut JwksSettings)) -> JwksSettings {
    let mut s = JwksSettings::default();
    f(&mut s);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_key_is_refused_by_every_request_that_meets_the_stale_set() {
    let (a, b) = (SigningKey::generate(), SigningKey::generate());
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let v = Arc::new(verifier_with(
        format!("{}/jwks.json", server.uri()),
        &clock,
        JwksSettings::default(),
    ));
    let now = clock.unix_now().as_secs() as i64;
    v.verify_token(&token(&a, "kid_a", now))
        .await
        .expect("known");
    // Clerk rotates kid_a out; the cached set goes stale.
    jwks.body.lock().expect("lock").1 = json!({"keys": [b.jwk("kid_b")]});
    clock.advance(Duration::from_secs(301));
    let now = clock.unix_now().as_secs() as i64;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (v, t) = (v.clone(), token(&a, "kid_a", now));
            tokio::spawn(async move { v.verify_token(&t).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.expect("join").expect_err("removed key"),
            invalid(Reason::Kid)
        );
    }
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        2,
        "one refresh for all 50"
    );
    v.verify_token(&token(&b, "kid_b", now))
        .await
        .expect("the new key verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_jwks_endpoint_leaves_known_keys_serving_after_a_short_wait() {
    let a = SigningKey::generate();
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let v = Arc::new(verifier_with(
        format!("{}/jwks.json", server.uri()),
        &clock,
        JwksSettings::default(),
    ));
    let now = clock.unix_now().as_secs() as i64;
    v.verify_token(&token(&a, "kid_a", now))
        .await
        .expect("known");
    *jwks.delay.lock().expect("lock") = Duration::from_secs(60);
    clock.advance(Duration::from_secs(301));
    let now = clock.unix_now().as_secs() as i64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (v, t) = (v.clone(), token(&a, "kid_a", now));
            tokio::spawn(async move { v.verify_token(&t).await.is_ok() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.expect("join"), "stale keys serve");
    }
    // The bound is 250 ms; the margin is for a loaded 2-core box (loadbench measures it).
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2, "single flight");
    // With the refresh still hanging, later requests join it and serve again.
    v.verify_token(&token(&a, "kid_a", now))
        .await
        .expect("known");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn after_a_failed_refresh_the_retry_gap_counts_from_its_end() {
    let a = SigningKey::generate();
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let v = verifier_with(
        format!("{}/jwks.json", server.uri()),
        &clock,
        settings(|s| s.fetch_timeout = Duration::from_millis(300)),
    );
    let now = clock.unix_now().as_secs() as i64;
    let t = token(&a, "kid_a", now + 3600);
    v.verify_token(&t).await.expect("known");
    *jwks.delay.lock().expect("lock") = Duration::from_secs(5);
    clock.advance(Duration::from_secs(301));
    v.verify_token(&t).await.expect("stale key serves");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2, "a refresh started");
    // The refresh hangs; 40 s of (manual) time pass before it times out.
    clock.advance(Duration::from_secs(40));
    tokio::time::sleep(Duration::from_millis(600)).await;
    // 60 s after it started but 20 s after it ended: the 30 s gap has not passed.
    clock.advance(Duration::from_secs(20));
    v.verify_token(&t).await.expect("stale key serves");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2, "no new attempt yet");
    clock.advance(Duration::from_secs(11));
    v.verify_token(&t).await.expect("stale key serves");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 3, "30 s after the end");
}

#[tokio::test]
async fn an_unknown_kid_waits_for_at_most_one_bounded_refresh() {
    let a = SigningKey::generate();
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let v = verifier_with(
        format!("{}/jwks.json", server.uri()),
        &clock,
        settings(|s| s.fetch_timeout = Duration::from_millis(300)),
    );
    let now = clock.unix_now().as_secs() as i64;
    v.verify_token(&token(&a, "kid_a", now))
        .await
        .expect("known");
    *jwks.delay.lock().expect("lock") = Duration::from_secs(30);
    clock.advance(Duration::from_secs(2));
    let started = Instant::now();
    assert_eq!(
        v.verify_token(&token(&a, "kid_new", now))
            .await
            .expect_err("unknown"),
        invalid(Reason::Kid)
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "bounded, took {took:?}");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
    // A second unknown kid within the interval does not wait at all, nor fetch.
    let started = Instant::now();
    assert_eq!(
        v.verify_token(&token(&a, "kid_other", now))
            .await
            .expect_err("unknown"),
        invalid(Reason::Kid)
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn keys_older_than_the_maximum_staleness_fail_closed() {
    let a = SigningKey::generate();
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let v = verifier_with(
        format!("{}/jwks.json", server.uri()),
        &clock,
        settings(|s| s.max_staleness = Duration::from_secs(3600)),
    );
    let now = clock.unix_now().as_secs() as i64;
    v.verify_token(&token(&a, "kid_a", now + 7200))
        .await
        .expect("known");
    *jwks.body.lock().expect("lock") = (503, json!({"errors": []}));
    clock.advance(Duration::from_secs(3000));
    v.verify_token(&token(&a, "kid_a", now + 7200))
        .await
        .expect("stale but within the bound");
    clock.advance(Duration::from_secs(601));
    let r = v.verify_token(&token(&a, "kid_a", now + 7200)).await;
    assert!(is_unavailable(&r).is_some(), "{r:?}");
    // Clerk back: a refresh restores service.
    *jwks.body.lock().expect("lock") = (200, json!({"keys": [a.jwk("kid_a")]}));
    clock.advance(Duration::from_secs(31));
    v.verify_token(&token(&a, "kid_a", now + 7200))
        .await
        .expect("fresh keys");
}

#[tokio::test]
async fn keys_are_refreshed_in_the_background_before_they_go_stale() {
    let a = SigningKey::generate();
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let v = verifier_with(
        format!("{}/jwks.json", server.uri()),
        &clock,
        settings(|s| s.ttl = Duration::from_secs(2)),
    );
    assert_eq!(v.prefetch_keys().await.expect("loaded"), 1);
    // 80 % of the TTL: the background task refreshes without any request.
    clock.advance(Duration::from_millis(1700));
    let deadline = Instant::now() + Duration::from_secs(10);
    while jwks.fetches.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
}

// ---- key usage ----

#[tokio::test]
async fn keys_marked_for_encryption_or_another_algorithm_verify_nothing() {
    let k = SigningKey::generate();
    let with = |kid: &str, edit: &dyn Fn(&mut Value)| {
        let mut jwk = k.jwk(kid);
        edit(&mut jwk);
        jwk
    };
    let keys = json!([
        with("enc", &|j| j["use"] = json!("enc")),
        with("ops_encrypt", &|j| j["key_ops"] = json!(["encrypt"])),
        with("rs512", &|j| j["alg"] = json!("RS512")),
        with("rsa_oaep", &|j| j["alg"] = json!("RSA-OAEP")),
        with("ops_verify", &|j| j["key_ops"] = json!(["verify"])),
        with("no_use_no_alg", &|j| {
            let o = j.as_object_mut().expect("obj");
            o.remove("use");
            o.remove("alg");
        }),
    ]);
    let (server, _) = jwks_server(keys).await;
    let clock = ManualClock::new();
    let v = verifier_with(
        format!("{}/jwks.json", server.uri()),
        &clock,
        JwksSettings::default(),
    );
    let now = clock.unix_now().as_secs() as i64;
    for (kid, expected) in [
        ("enc", Some(Reason::Kid)),
        ("ops_encrypt", Some(Reason::Kid)),
        ("rs512", Some(Reason::Algorithm)),
        ("rsa_oaep", Some(Reason::Kid)),
        ("ops_verify", None),
        ("no_use_no_alg", None),
    ] {
        let r = v.verify_token(&token(&k, kid, now)).await;
        match expected {
            Some(why) => assert_eq!(r.expect_err(kid), invalid(why), "{kid}"),
            None => assert!(r.is_ok(), "{kid}: {r:?}"),
        }
    }
}

// ---- configuration coherence ----

#[tokio::test]
async fn a_token_type_without_a_verifier_is_401_not_accepted_never_500() {
    // M2M only: no JWT key.
    let f = fixture_with(Seed::demo(), |_, c| c.key_source = None).await;
    f.rejects(
        &f.mock.session_token(&f.user),
        invalid(Reason::TypeNotAccepted),
    )
    .await;
    let created = f.mint("JobApplier.Bot", json!({"token_format": "jwt"}));
    f.rejects(
        created["token"].as_str().expect("jwt"),
        invalid(Reason::TypeNotAccepted),
    )
    .await;
    // Sessions only: no key to verify opaque tokens with.
    let f = fixture_with(Seed::demo(), |_, c| c.verify_key = None).await;
    f.rejects(&random_token(), invalid(Reason::TypeNotAccepted))
        .await;
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 0);
}

#[test]
fn accepting_sessions_without_authorized_parties_is_a_startup_warning() {
    let base = VerifierConfig {
        api_base_url: "http://127.0.0.1:9".into(),
        machine_key_file: None,
        verify_key: None,
        key_source: Some(KeySource::Url("http://127.0.0.1:9/jwks".into())),
        policy: Default::default(),
        cache: OpaqueCacheSettings::default(),
        jwks: Default::default(),
        jwt_cache: Default::default(),
        machine_id: None,
    };
    let warnings = base.startup_warnings();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("CLERK_AUTHORIZED_PARTIES"));
    let mut with_parties = base.clone();
    with_parties.policy.authorized_parties = vec!["https://app.example.com".into()];
    assert!(with_parties.startup_warnings().is_empty());
    let mut m2m_only = with_parties.clone();
    m2m_only.key_source = None;
    m2m_only.verify_key = Some(SecretString::from("ak_x".to_owned()));
    assert_eq!(
        m2m_only.startup_warnings().len(),
        1,
        "parties set but no JWT key"
    );
}

#[test]
fn plain_http_to_another_host_for_keys_or_clerk_is_a_startup_warning() {
    let base = VerifierConfig {
        api_base_url: "http://127.0.0.1:9".into(),
        machine_key_file: None,
        verify_key: Some(SecretString::from("ak_x".to_owned())),
        key_source: None,
        policy: Default::default(),
        cache: OpaqueCacheSettings::default(),
        jwks: Default::default(),
        jwt_cache: Default::default(),
        machine_id: None,
    };
    assert!(base.startup_warnings().is_empty(), "loopback is fine");
    for (api, jwks, expected) in [
        ("http://localhost:8080", "http://[::1]:8080/jwks", 0),
        (
            "https://api.clerk.com/v1",
            "https://clerk.example.com/jwks",
            0,
        ),
        (
            "http://clerk.internal/v1",
            "https://clerk.example.com/jwks",
            1,
        ),
        (
            "https://api.clerk.com/v1",
            "http://clerk.example.com/jwks",
            1,
        ),
    ] {
        let mut c = base.clone();
        c.api_base_url = api.into();
        c.key_source = Some(KeySource::Url(jwks.into()));
        c.policy.authorized_parties = vec!["https://app.example.com".into()];
        assert_eq!(c.startup_warnings().len(), expected, "{api} {jwks}");
    }
}
