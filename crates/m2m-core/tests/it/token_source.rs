use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use clerk_mock::{ClerkMock, Endpoint, Fault};
use m2m_core::clock::ManualClock;
use m2m_core::settings::MintSettings;
use m2m_core::{BearerToken, TokenError, TokenSource};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{KEY, client, created, drop_server, minted};

fn settings(lifetime: u64, buffer: u64) -> MintSettings {
    MintSettings {
        lifetime: Duration::from_secs(lifetime),
        refresh_buffer: Duration::from_secs(buffer),
        ..MintSettings::default()
    }
}

async fn demo() -> (ClerkMock, String) {
    let mock = ClerkMock::start_demo().await;
    let key = mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .secret_key;
    (mock, key)
}

/// Answers each create with a new token `mt_TOKEN<n>`.
struct Counter(AtomicU32, i64, Duration);

impl Respond for Counter {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let digit = char::from_digit(n % 16, 16).unwrap_or('0');
        created(&format!("mt_TOKEN{n}"), digit, self.1).set_delay(self.2)
    }
}

#[tokio::test]
async fn the_token_is_cached_until_the_refresh_window() {
    let (mock, key) = demo().await;
    let clock = ManualClock::new();
    let source = minted(
        client(&mock.api_url(), &clock),
        &key,
        settings(3600, 300),
        &clock,
    );
    let first = source.token().await.expect("token");
    for _ in 0..50 {
        assert_eq!(source.token().await.expect("token"), first);
    }
    clock.advance(Duration::from_secs(3299));
    assert_eq!(
        source.token().await.expect("token"),
        first,
        "still outside the 300 s buffer"
    );
    assert_eq!(mock.calls(Endpoint::CreateToken), 1);
    clock.advance(Duration::from_secs(2));
    let second = source.token().await.expect("token");
    assert_ne!(second, first, "refreshed at expiry - buffer");
    assert_eq!(mock.calls(Endpoint::CreateToken), 2);
    assert_eq!(source.create_calls(), 2);
}

#[tokio::test]
async fn the_lifetime_comes_from_clerks_clock_not_the_local_one() {
    let (mock, key) = demo().await;
    // Clerk's clock is a day ahead of ours: a lifetime computed from expiration - local now would
    // be a day too long.
    mock.advance_clock(Duration::from_secs(86_400));
    let clock = ManualClock::new();
    let source = minted(
        client(&mock.api_url(), &clock),
        &key,
        settings(600, 60),
        &clock,
    );
    let first = source.token().await.expect("token");
    clock.advance(Duration::from_secs(541));
    assert_ne!(
        source.token().await.expect("token"),
        first,
        "refreshed 60 s before Clerk's expiry"
    );
}

#[tokio::test]
async fn a_reused_token_is_refreshed_by_its_remaining_lifetime() {
    let (mock, key) = demo().await;
    let s = MintSettings {
        min_remaining_ttl: Some(Duration::from_secs(120)),
        ..settings(600, 60)
    };
    let clock_a = ManualClock::new();
    let a = minted(client(&mock.api_url(), &clock_a), &key, s.clone(), &clock_a);
    let t = a.token().await.expect("token");
    mock.advance_clock(Duration::from_secs(400));
    // A second process asks with min_remaining_ttl_seconds and gets the same, older token back.
    let clock_b = ManualClock::new();
    let b = minted(client(&mock.api_url(), &clock_b), &key, s, &clock_b);
    assert_eq!(
        b.token().await.expect("token"),
        t,
        "Clerk reused the live token"
    );
    clock_b.advance(Duration::from_secs(141));
    mock.advance_clock(Duration::from_secs(141));
    assert_ne!(
        b.token().await.expect("token"),
        t,
        "200 s were left, so refresh came at 140 s, not at 540 s"
    );
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_valid_token_and_backs_off() {
    let (mock, key) = demo().await;
    let clock = ManualClock::new();
    let c = m2m_core::clerk::ClerkClient::builder(mock.api_url())
        .retry(m2m_core::clerk::RetryPolicy::none())
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("client");
    let source = minted(c, &key, settings(3600, 300), &clock);
    let first = source.token().await.expect("token");
    mock.set_outage(Some(503));
    clock.advance(Duration::from_secs(3400));
    assert_eq!(source.token().await.expect("old token served"), first);
    assert_eq!(
        mock.calls(Endpoint::CreateToken),
        2,
        "one failed refresh attempt"
    );
    for _ in 0..20 {
        assert_eq!(source.token().await.expect("old token served"), first);
    }
    assert_eq!(
        mock.calls(Endpoint::CreateToken),
        2,
        "no retry inside the 1 s failure backoff"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(source.token().await.expect("old token"), first);
    assert_eq!(
        mock.calls(Endpoint::CreateToken),
        3,
        "retried after the backoff"
    );
    clock.advance(Duration::from_secs(1));
    source.token().await.expect("old token");
    assert_eq!(
        mock.calls(Endpoint::CreateToken),
        3,
        "backoff doubled to 2 s"
    );
    mock.set_outage(None);
    clock.advance(Duration::from_secs(2));
    let fresh = source.token().await.expect("recovered");
    assert_ne!(fresh, first);
}

#[tokio::test]
async fn once_the_token_expires_during_an_outage_an_error_is_returned() {
    let (mock, key) = demo().await;
    let clock = ManualClock::new();
    let source = minted(
        client(&mock.api_url(), &clock),
        &key,
        settings(3600, 300),
        &clock,
    );
    source.token().await.expect("token");
    mock.set_outage(Some(503));
    clock.advance(Duration::from_secs(3600));
    let err = source.token().await.expect_err("no valid token left");
    assert!(matches!(err, TokenError::Mint(_)));
    assert!(err.is_transient());
    mock.set_outage(None);
    source
        .token()
        .await
        .expect("recovers as soon as Clerk does");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_create_at_cold_start_and_one_at_expiry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Counter(AtomicU32::new(0), 3600, Duration::from_millis(200)))
        .expect(2)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let source = minted(
        client(&server.uri(), &clock),
        KEY,
        settings(3600, 300),
        &clock,
    );
    let burst = |source: m2m_core::MintedTokenSource| async move {
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let s = source.clone();
                tokio::spawn(async move { s.token().await })
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            tokens.push(t.await.expect("join").expect("token").expose().to_owned());
        }
        tokens
    };
    let cold = burst(source.clone()).await;
    assert!(cold.iter().all(|t| t == "mt_TOKEN1"));
    clock.advance(Duration::from_secs(3350));
    let at_expiry = burst(source.clone()).await;
    assert!(
        at_expiry
            .iter()
            .all(|t| t == "mt_TOKEN2" || t == "mt_TOKEN1")
    );
    assert_eq!(source.create_calls(), 2);
    drop_server(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_queued_behind_a_failing_fetch_share_its_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_delay(Duration::from_millis(200))
                .set_body_raw("{\"errors\":[]}", "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let source = minted(
        client(&server.uri(), &clock),
        KEY,
        settings(3600, 300),
        &clock,
    );
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { s.token().await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.expect("join").is_err());
    }
    drop_server(server);
}

#[tokio::test]
async fn invalidate_clears_only_the_exact_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Counter(AtomicU32::new(0), 3600, Duration::ZERO))
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let source = minted(
        client(&server.uri(), &clock),
        KEY,
        settings(3600, 300),
        &clock,
    );
    let a = source.token().await.expect("a");
    assert!(source.invalidate(&a));
    let b = source.token().await.expect("b");
    assert_ne!(a, b);
    // A late 401 for A must not throw away B.
    assert!(!source.invalidate(&a));
    assert_eq!(source.token().await.expect("b again"), b);
    assert!(!source.invalidate(&BearerToken::new("mt_someone_else")));
    assert_eq!(source.create_calls(), 2);
}

#[tokio::test]
async fn an_invalidated_token_is_replaced_even_inside_the_failure_backoff() {
    let (mock, key) = demo().await;
    let clock = ManualClock::new();
    let source = minted(
        client(&mock.api_url(), &clock),
        &key,
        settings(3600, 300),
        &clock,
    );
    let a = source.token().await.expect("a");
    mock.inject(Some(Endpoint::CreateToken), Fault::status(400), 1);
    clock.advance(Duration::from_secs(3400));
    assert_eq!(source.token().await.expect("stale a"), a);
    assert!(source.invalidate(&a));
    let b = source.token().await.expect("b");
    assert_ne!(a, b);
}

#[tokio::test]
async fn static_and_disabled_sources() {
    let s = TokenSource::Static(BearerToken::new("mt_static"));
    assert_eq!(
        s.token().await.expect("ok").expect("some").expose(),
        "mt_static"
    );
    assert!(
        !s.invalidate(&BearerToken::new("mt_static")),
        "a static token cannot be replaced"
    );
    assert_eq!(s.kind(), "static");
    let d = TokenSource::Disabled;
    assert!(d.token().await.expect("ok").is_none());
}

#[tokio::test]
async fn jitter_spreads_refreshes_within_the_configured_window() {
    let (mock, key) = demo().await;
    let mut refresh_points = Vec::new();
    for _ in 0..8 {
        let clock = ManualClock::new();
        let s = MintSettings {
            refresh_jitter: Duration::from_secs(100),
            ..settings(1000, 100)
        };
        let source = minted(client(&mock.api_url(), &clock), &key, s, &clock);
        let first = source.token().await.expect("token");
        let mut elapsed = 780;
        clock.advance(Duration::from_secs(780));
        while source.token().await.expect("token") == first {
            clock.advance(Duration::from_secs(1));
            elapsed += 1;
            assert!(elapsed <= 901, "refresh must come by lifetime - buffer");
        }
        assert!(
            elapsed >= 800,
            "never earlier than lifetime - buffer - jitter"
        );
        refresh_points.push(elapsed);
    }
    refresh_points.dedup();
    assert!(
        refresh_points.len() > 1,
        "8 sources all refreshed at the same second: {refresh_points:?}"
    );
}
