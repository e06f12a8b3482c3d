//! A well-formed JWKS answer is the key set (docs/verification.md, "JWKS cache"): after the
//! refresh that sees it, a key it no longer lists verifies nothing — new tokens and cached
//! verdicts alike — even when it lists no key at all. Only a failed fetch keeps the last good set.

use std::sync::atomic::Ordering;
use std::time::Duration;

use clerk_mock::SigningKey;
use m2m_core::clock::{Clock, ManualClock};
use m2m_core::settings::JwksSettings;
use m2m_core::verifier::Reason;
use m2m_core::{Verifier, VerifyError};
use serde_json::{Value, json};

use crate::jwt_cache::stats;
use crate::verify::{Jwks, invalid, jwks_server, token, verifier_with};

struct Setup {
    a: SigningKey,
    b: SigningKey,
    jwks: Jwks,
    clock: ManualClock,
    v: Verifier,
    _server: wiremock::MockServer,
}

/// Keys `kid_a` and `kid_b` published, fresh for 2 s; one token of each verified and cached.
async fn setup() -> (Setup, String, String) {
    let (a, b) = (SigningKey::generate(), SigningKey::generate());
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a"), b.jwk("kid_b")])).await;
    let clock = ManualClock::new();
    let settings = JwksSettings {
        ttl: Duration::from_secs(2),
        ..JwksSettings::default()
    };
    let v = verifier_with(format!("{}/jwks.json", server.uri()), &clock, settings);
    let now = clock.unix_now().as_secs() as i64;
    let (ta, tb) = (token(&a, "kid_a", now), token(&b, "kid_b", now));
    assert!(v.verify_token(&ta).await.is_ok());
    assert!(v.verify_token(&tb).await.is_ok());
    assert!(v.verify_token(&ta).await.is_ok());
    assert_eq!(stats(&v), (1, 2, 0), "both cached");
    let s = Setup {
        a,
        b,
        jwks,
        clock,
        v,
        _server: server,
    };
    (s, ta, tb)
}

impl Setup {
    /// Clerk answers `status` with `body` from now on; the set then goes stale, so the next
    /// verification waits for the refresh that fetches it.
    fn publish(&self, status: u16, body: Value) {
        *self.jwks.body.lock().expect("lock") = (status, body);
        self.clock.advance(Duration::from_secs(3));
    }

    fn fresh(&self, key: &SigningKey, kid: &str) -> String {
        // Another `exp`, so not the cached token: a full verification.
        let now = self.clock.unix_now().as_secs() as i64 + 1;
        token(key, kid, now)
    }
}

#[tokio::test]
async fn a_refresh_that_removes_no_key_keeps_every_verdict() {
    let (s, ta, tb) = setup().await;
    s.publish(200, json!({"keys": [s.a.jwk("kid_a"), s.b.jwk("kid_b")]}));
    assert!(s.v.verify_token(&ta).await.is_ok());
    assert!(s.v.verify_token(&tb).await.is_ok());
    assert_eq!(stats(&s.v), (3, 2, 0), "both answered from the cache");
    assert!(s.v.verify_token(&s.fresh(&s.a, "kid_a")).await.is_ok());
    assert_eq!(s.jwks.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refresh_that_removes_one_key_refuses_that_key_only() {
    let (s, ta, tb) = setup().await;
    s.publish(200, json!({"keys": [s.b.jwk("kid_b")]}));
    assert_eq!(
        s.v.verify_token(&ta).await.expect_err("kid_a gone"),
        invalid(Reason::Kid)
    );
    assert_eq!(stats(&s.v).2, 1, "its cached verdict dropped");
    assert_eq!(
        s.v.verify_token(&ta).await.expect_err("still gone"),
        invalid(Reason::Kid),
        "and not answered from the cache again"
    );
    assert_eq!(
        s.v.verify_token(&s.fresh(&s.a, "kid_a"))
            .await
            .expect_err("new token, removed key"),
        invalid(Reason::Kid)
    );
    let (hits, _, dropped) = stats(&s.v);
    assert!(s.v.verify_token(&tb).await.is_ok());
    assert_eq!(
        stats(&s.v).0,
        hits + 1,
        "kid_b's verdict still served from the cache"
    );
    assert_eq!(stats(&s.v).2, dropped);
}

#[tokio::test]
async fn a_refresh_that_removes_every_key_refuses_every_token() {
    let (s, ta, tb) = setup().await;
    s.publish(200, json!({"keys": []}));
    for t in [&ta, &tb] {
        assert_eq!(
            s.v.verify_token(t).await.expect_err("no key listed"),
            invalid(Reason::Kid)
        );
    }
    assert_eq!(stats(&s.v).2, 2, "both cached verdicts dropped");
    for t in [s.fresh(&s.a, "kid_a"), s.fresh(&s.b, "kid_b"), ta.clone()] {
        assert_eq!(
            s.v.verify_token(&t).await.expect_err("no key listed"),
            invalid(Reason::Kid)
        );
    }
    // Clerk lists the key again: the next refetch (an unknown kid's, at most one per 30 s)
    // brings it back.
    *s.jwks.body.lock().expect("lock") = (200, json!({"keys": [s.a.jwk("kid_a")]}));
    s.clock.advance(Duration::from_secs(31));
    assert!(s.v.verify_token(&s.fresh(&s.a, "kid_a")).await.is_ok());
}

#[tokio::test]
async fn a_set_with_no_usable_key_counts_as_empty() {
    let (s, ta, _) = setup().await;
    // Listed, but an encryption key and a key of an algorithm we never verify with.
    let mut enc = s.a.jwk("kid_a");
    enc["use"] = json!("enc");
    let mut other_alg = s.b.jwk("kid_b");
    other_alg["alg"] = json!("PS256");
    s.publish(200, json!({"keys": [enc, other_alg]}));
    assert_eq!(
        s.v.verify_token(&ta).await.expect_err("no usable key"),
        invalid(Reason::Kid)
    );
    assert_eq!(stats(&s.v).2, 1);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_last_good_set_and_its_verdicts() {
    for (status, body) in [
        (503, json!({"errors": []})),
        (404, json!({"keys": []})),
        (200, json!("not a key set")),
        (200, json!({"no_keys_field": true})),
    ] {
        let (s, ta, tb) = setup().await;
        s.publish(status, body.clone());
        assert!(s.v.verify_token(&ta).await.is_ok(), "{status} {body}");
        assert!(s.v.verify_token(&tb).await.is_ok(), "{status} {body}");
        assert_eq!(stats(&s.v).2, 0, "{status} {body}: nothing dropped");
        assert!(
            s.v.verify_token(&s.fresh(&s.a, "kid_a")).await.is_ok(),
            "{status} {body}: new tokens too"
        );
        assert!(
            s.jwks.fetches.load(Ordering::SeqCst) >= 2,
            "a refresh was attempted"
        );
    }
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_last_good_set_only_up_to_the_maximum_staleness() {
    let (s, ta, _) = setup().await;
    *s.jwks.body.lock().expect("lock") = (503, json!({}));
    s.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert!(matches!(
        s.v.verify_token(&ta).await,
        Err(VerifyError::Unavailable { .. } | VerifyError::Invalid(Reason::Expired))
    ));
    let now = s.clock.unix_now().as_secs() as i64;
    assert!(matches!(
        s.v.verify_token(&token(&s.a, "kid_a", now)).await,
        Err(VerifyError::Unavailable { .. })
    ));
}
