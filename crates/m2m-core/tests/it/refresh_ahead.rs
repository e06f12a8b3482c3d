//! Refresh ahead: a hot opaque token is re-verified in the background shortly before its cache
//! entry lapses, so it never meets a miss and a revocation is seen before the TTL.

use std::time::Duration;

use clerk_mock::{Endpoint, Seed};
use m2m_core::VerifyError;
use m2m_core::verifier::Reason;
use serde_json::json;

use crate::verify::{Fixture, fixture_with};

async fn hot(refresh_ahead: Duration) -> (Fixture, String) {
    let f = fixture_with(Seed::demo(), |_, c| {
        c.cache.ttl = Duration::from_secs(60);
        c.cache.refresh_ahead = refresh_ahead;
    })
    .await;
    let bot = f.mock.machine_by_name("JobApplier.Bot").expect("bot").id;
    let token = f
        .mock
        .mint(&bot, &json!({ "seconds_until_expiration": 3600 }))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    f.mock.reset_calls();
    (f, token)
}

/// Waits (bounded) for the background call to reach the mock.
async fn verify_calls_reach(f: &Fixture, n: u64) {
    for _ in 0..500 {
        if f.mock.calls(Endpoint::VerifyToken) >= n {
            // Let the task store its verdict after the answer.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "expected {n} verify calls, saw {}",
        f.mock.calls(Endpoint::VerifyToken)
    );
}

#[tokio::test]
async fn a_hot_token_is_re_verified_before_its_entry_lapses_and_never_misses() {
    let (f, token) = hot(Duration::from_secs(10)).await;
    assert!(f.verifier.verify_token(&token).await.is_ok());
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 1);
    // Early in the entry's life: a plain hit.
    f.clock.advance(Duration::from_secs(30));
    assert!(f.verifier.verify_token(&token).await.is_ok());
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 1);
    // Within 10 s of its end: answered from the cache, and re-verified once in the background.
    f.clock.advance(Duration::from_secs(22));
    for _ in 0..20 {
        assert!(f.verifier.verify_token(&token).await.is_ok());
    }
    verify_calls_reach(&f, 2).await;
    // Past the first entry's end: the refreshed entry answers, no call.
    f.clock.advance(Duration::from_secs(20));
    assert!(f.verifier.verify_token(&token).await.is_ok());
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 2);
    let stats = f.verifier.opaque_stats().expect("opaque");
    assert_eq!(
        stats
            .refreshed_ahead
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn a_revocation_is_seen_before_the_ttl_when_the_token_is_hot() {
    let (f, token) = hot(Duration::from_secs(10)).await;
    assert!(f.verifier.verify_token(&token).await.is_ok());
    let id = f.mock.token_id_of(&token).expect("stored");
    assert!(f.mock.revoke_token(&id, Some("leaked")));
    f.clock.advance(Duration::from_secs(52));
    // Still cached: this request is served, and triggers the re-verification.
    assert!(f.verifier.verify_token(&token).await.is_ok());
    verify_calls_reach(&f, 2).await;
    // 53 s after the first verification, 7 s before the TTL would have ended.
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(
        f.verifier.verify_token(&token).await,
        Err(VerifyError::Invalid(Reason::NotFound))
    );
}

#[tokio::test]
async fn zero_turns_refresh_ahead_off_and_the_entry_lapses_at_the_ttl() {
    let (f, token) = hot(Duration::ZERO).await;
    assert!(f.verifier.verify_token(&token).await.is_ok());
    f.clock.advance(Duration::from_secs(55));
    assert!(f.verifier.verify_token(&token).await.is_ok());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 1, "no background call");
    f.clock.advance(Duration::from_secs(10));
    assert!(f.verifier.verify_token(&token).await.is_ok());
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 2, "a miss at the TTL");
}

#[tokio::test]
async fn a_failed_refresh_leaves_the_entry_to_lapse_and_clerk_down_is_still_503() {
    let (f, token) = hot(Duration::from_secs(10)).await;
    assert!(f.verifier.verify_token(&token).await.is_ok());
    f.mock.set_outage(Some(503));
    f.clock.advance(Duration::from_secs(55));
    assert!(f.verifier.verify_token(&token).await.is_ok());
    verify_calls_reach(&f, 2).await;
    // Still within the entry: served; the failed refresh is not retried on every hit.
    let calls = f.mock.calls(Endpoint::VerifyToken);
    assert!(f.verifier.verify_token(&token).await.is_ok());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), calls);
    // Past its end, with Clerk still down: fail closed.
    f.clock.advance(Duration::from_secs(10));
    assert!(matches!(
        f.verifier.verify_token(&token).await,
        Err(VerifyError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn a_spray_of_random_tokens_cannot_starve_a_token_known_to_be_valid() {
    let (f, token) = hot(Duration::from_secs(10)).await;
    assert!(f.verifier.verify_token(&token).await.is_ok());
    let mut n = 0u64;
    let mut refused = 0;
    // 150 simulated seconds: each second 20 random tokens (twice the sustained budget) drain
    // the general bucket; the real token must keep answering through its entry's refresh and
    // through its lapses.
    for _ in 0..150 {
        f.clock.advance(Duration::from_secs(1));
        for _ in 0..20 {
            n += 1;
            let random = format!("mt_{n:032x}");
            if matches!(
                f.verifier.verify_token(&random).await,
                Err(VerifyError::Unavailable { .. })
            ) {
                refused += 1;
            }
        }
        assert!(
            f.verifier.verify_token(&token).await.is_ok(),
            "the real token was refused during the spray"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        refused > 1000,
        "the spray was throttled ({refused} refused)"
    );
}
