//! The cache of verified JWTs (docs/verification.md, "The JWT cache"): a hit is only a hit while
//! the token's time claims hold and the key that verified it is still published under its `kid`;
//! only accepted tokens enter it, and it stays within its cap whatever arrives.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clerk_mock::{Seed, SigningKey};
use m2m_core::Verifier;
use m2m_core::clock::ManualClock;
use m2m_core::clock::{Clock, SleepFuture};
use m2m_core::settings::{JwksSettings, JwtCacheSettings, KeySource};
use m2m_core::verifier::Reason;
use serde_json::json;

use crate::support::client;
use crate::verify::{config, fixture, fixture_with, invalid, jwks_server, token};

/// (hits, misses, dropped) of the JWT cache.
pub(crate) fn stats(v: &Verifier) -> (u64, u64, u64) {
    let s = v
        .jwt_cache()
        .expect("the JWT cache is on by default")
        .stats();
    (
        s.hits.load(Ordering::Relaxed),
        s.misses.load(Ordering::Relaxed),
        s.dropped.load(Ordering::Relaxed),
    )
}

#[tokio::test]
async fn a_repeat_is_answered_from_the_cache_without_a_signature_check() {
    let f = fixture().await;
    let token = f.mock.session_token(&f.user);
    let first = f.verify(&token).await.expect("valid");
    assert_eq!(stats(&f.verifier), (0, 1, 0));
    for _ in 0..3 {
        assert_eq!(f.verify(&token).await.expect("cached"), first);
    }
    assert_eq!(stats(&f.verifier), (3, 1, 0));
    assert_eq!(f.verifier.jwt_cache().expect("cache").entry_count(), 1);
}

#[tokio::test]
async fn a_cached_session_token_is_refused_once_it_expires() {
    let f = fixture().await;
    let token = f.session(|_, c| c["exp"] = json!(f.now() + 60));
    assert!(f.verify(&token).await.is_ok());
    assert!(f.verify(&token).await.is_ok(), "cached");
    // Within the skew it still passes, from the cache.
    f.clock.advance(Duration::from_secs(64));
    assert!(f.verify(&token).await.is_ok());
    assert_eq!(stats(&f.verifier), (2, 1, 0));
    f.clock.advance(Duration::from_secs(2));
    f.rejects(&token, invalid(Reason::Expired)).await;
    assert_eq!(stats(&f.verifier).2, 1, "refused on the hit, entry dropped");
    f.rejects(&token, invalid(Reason::Expired)).await;
}

#[tokio::test]
async fn a_cached_m2m_jwt_is_refused_once_it_expires() {
    let f = fixture().await;
    let created = f.mint(
        "CandidateRepresenter.Bot",
        json!({"token_format": "jwt", "seconds_until_expiration": 30}),
    );
    let token = created["token"].as_str().expect("jwt");
    assert!(f.verify(token).await.is_ok());
    assert!(f.verify(token).await.is_ok());
    assert_eq!(stats(&f.verifier).0, 1, "the second came from the cache");
    f.clock.advance(Duration::from_secs(36));
    f.rejects(token, invalid(Reason::Expired)).await;
}

/// The manual clock, whose wall clock can also step back (as NTP may step the system clock).
#[derive(Debug, Clone)]
struct SteppedClock {
    inner: ManualClock,
    back: Arc<Mutex<Duration>>,
}

impl SteppedClock {
    fn step_back(&self, by: Duration) {
        *self.back.lock().expect("lock") += by;
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> Instant {
        self.inner.now()
    }
    fn unix_now(&self) -> Duration {
        self.inner.unix_now() - *self.back.lock().expect("lock")
    }
    fn sleep(&self, d: Duration) -> SleepFuture {
        self.inner.sleep(d)
    }
}

#[tokio::test]
async fn nbf_and_iat_are_checked_again_on_every_hit() {
    let mock = clerk_mock::ClerkMock::start_with(Seed::demo()).await;
    let clock = SteppedClock {
        inner: ManualClock::new(),
        back: Arc::default(),
    };
    let verifier = config(&mock).build(
        &client(&mock.api_url(), &clock.inner),
        Arc::new(clock.clone()),
    );
    let user = mock.users()[0].id.clone();
    let now = clock.unix_now().as_secs() as i64;
    // Valid from 4 s from now: accepted thanks to the 5 s skew, and cached.
    let not_yet = mock.session_token_with(&user, |_, c| {
        c["nbf"] = json!(now + 4);
        c["iat"] = json!(now);
        c["exp"] = json!(now + 120);
    });
    let issued_ahead = mock.session_token_with(&user, |_, c| {
        c["nbf"] = json!(now - 10);
        c["iat"] = json!(now + 4);
        c["exp"] = json!(now + 120);
    });
    for t in [&not_yet, &issued_ahead] {
        assert!(verifier.verify_token(t).await.is_ok());
        assert!(verifier.verify_token(t).await.is_ok(), "cached");
    }
    assert_eq!(stats(&verifier), (2, 2, 0));
    // The wall clock steps back 10 s: both are now too early, and the cache must say so.
    clock.step_back(Duration::from_secs(10));
    assert_eq!(
        verifier.verify_token(&not_yet).await.expect_err("not yet"),
        invalid(Reason::NotActiveYet)
    );
    assert_eq!(
        verifier
            .verify_token(&issued_ahead)
            .await
            .expect_err("future iat"),
        invalid(Reason::IatInFuture)
    );
    assert_eq!(stats(&verifier).2, 2, "both refused on a hit");
}

#[tokio::test]
async fn a_jwks_refresh_that_drops_the_kid_evicts_what_its_key_verified() {
    let (a, b) = (SigningKey::generate(), SigningKey::generate());
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let settings = JwksSettings {
        ttl: Duration::from_secs(2),
        ..JwksSettings::default()
    };
    let v = crate::verify::verifier_with(format!("{}/jwks.json", server.uri()), &clock, settings);
    let now = clock.unix_now().as_secs() as i64;
    let t = token(&a, "kid_a", now);
    assert!(v.verify_token(&t).await.is_ok());
    assert!(v.verify_token(&t).await.is_ok());
    assert_eq!(stats(&v).0, 1, "cached");
    // A refresh that keeps the key keeps the entry.
    clock.advance(Duration::from_secs(3));
    assert!(v.verify_token(&t).await.is_ok());
    assert_eq!(stats(&v), (2, 1, 0));
    // Clerk rotates kid_a out. Once the set is stale, the hit waits for the refresh, whose set
    // decides.
    jwks.body.lock().expect("lock").1 = json!({"keys": [b.jwk("kid_b")]});
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        v.verify_token(&t).await.expect_err("kid gone"),
        invalid(Reason::Kid)
    );
    assert_eq!(stats(&v).2, 1, "entry dropped");
    assert!(v.verify_token(&token(&b, "kid_b", now)).await.is_ok());
}

#[tokio::test]
async fn another_key_published_under_the_same_kid_evicts_too() {
    let (a, b) = (SigningKey::generate(), SigningKey::generate());
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let settings = JwksSettings {
        ttl: Duration::from_secs(2),
        ..JwksSettings::default()
    };
    let v = crate::verify::verifier_with(format!("{}/jwks.json", server.uri()), &clock, settings);
    let now = clock.unix_now().as_secs() as i64;
    let t = token(&a, "kid_a", now);
    assert!(v.verify_token(&t).await.is_ok());
    jwks.body.lock().expect("lock").1 = json!({"keys": [b.jwk("kid_a")]});
    clock.advance(Duration::from_secs(3));
    // The kid is still there, but its key is not the one that verified the token: verified
    // anew, and refused.
    assert_eq!(
        v.verify_token(&t).await.expect_err("signed by the old key"),
        invalid(Reason::Signature)
    );
    assert_eq!(stats(&v), (0, 2, 1));
    assert!(v.verify_token(&token(&b, "kid_a", now)).await.is_ok());
}

#[tokio::test]
async fn rejected_tokens_never_enter_and_cannot_evict_a_valid_one() {
    let f = fixture_with(Seed::demo(), |_, c| {
        c.jwt_cache = JwtCacheSettings {
            max_entries: 10,
            ..JwtCacheSettings::default()
        }
    })
    .await;
    let valid = f.mock.session_token(&f.user);
    assert!(f.verify(&valid).await.is_ok());
    // 900 distinct JWTs with a bad signature, another key's signature, or a bad claim.
    let stranger = SigningKey::generate();
    let (head, _) = valid.rsplit_once('.').expect("jwt");
    for i in 0..900 {
        let t = match i % 3 {
            0 => format!("{head}.{}", "A".repeat(300 + i)),
            1 => stranger.sign(
                &f.mock.jwt_header(clerk_mock::CAT_SESSION),
                &json!({"sub": f.user, "sid": format!("sess_{i}"), "exp": f.now() + 60, "azp": f.mock.authorized_party()}),
            ),
            _ => f.session(|_, c| c["azp"] = json!(format!("https://evil{i}.example"))),
        };
        assert!(f.verify(&t).await.is_err());
    }
    let cache = f.verifier.jwt_cache().expect("cache");
    assert_eq!(cache.entry_count(), 1, "only the valid token is cached");
    let (hits, misses, _) = stats(&f.verifier);
    assert!(f.verify(&valid).await.is_ok());
    assert_eq!(
        stats(&f.verifier),
        (hits + 1, misses, 0),
        "still answered from the cache"
    );
}

#[tokio::test]
async fn a_flood_of_valid_tokens_stays_within_the_cap() {
    let f = fixture_with(Seed::demo(), |_, c| {
        c.jwt_cache = JwtCacheSettings {
            max_entries: 50,
            ..JwtCacheSettings::default()
        }
    })
    .await;
    let hot = f.mock.session_token(&f.user);
    for i in 0..400 {
        let t = f.session(|_, c| c["jti"] = json!(format!("flood{i}")));
        assert!(f.verify(&t).await.is_ok());
        // The token in use keeps being used, as a real client's would.
        assert!(f.verify(&hot).await.is_ok());
    }
    let cache = f.verifier.jwt_cache().expect("cache");
    let entries = cache.entry_count();
    assert!(entries <= 50, "{entries} entries, cap 50");
    assert!(
        cache.weighted_size() <= JwtCacheSettings::default().max_bytes,
        "byte bound"
    );
    // Tokens seen once did not push out the one in use (S3-FIFO's probation queue).
    let (hits, ..) = stats(&f.verifier);
    assert!(f.verify(&hot).await.is_ok());
    assert_eq!(
        stats(&f.verifier).0,
        hits + 1,
        "the hot token is still cached"
    );
}

#[tokio::test]
async fn the_byte_bound_caps_entries_too() {
    // 1 MiB for up to 100,000 entries: entries weigh at least 10 B, but a session principal
    // (its fields and its payload's JSON text, never a parsed `Value`) weighs several hundred
    // bytes, so one to two thousand fit.
    let f = fixture_with(Seed::demo(), |_, c| {
        c.jwt_cache = JwtCacheSettings {
            max_entries: 100_000,
            max_bytes: 1 << 20,
        }
    })
    .await;
    let token = f.mock.session_token(&f.user);
    assert!(f.verify(&token).await.is_ok());
    let cache = f.verifier.jwt_cache().expect("cache");
    let one = cache.weighted_size();
    assert!(one > 500, "a session entry is estimated at {one} B");
    assert!(one < 10_000, "a session entry is estimated at {one} B");
}

#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let f = fixture_with(Seed::demo(), |_, c| {
        c.jwt_cache = JwtCacheSettings {
            max_entries: 0,
            ..JwtCacheSettings::default()
        }
    })
    .await;
    assert!(f.verifier.jwt_cache().is_none());
    let token = f.mock.session_token(&f.user);
    assert!(f.verify(&token).await.is_ok());
    assert!(f.verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_pem_key_verdict_is_cached_and_still_checked_for_time() {
    let f = fixture_with(Seed::demo(), |m, c| {
        c.key_source = Some(KeySource::from_pem(&m.public_key_pem()).expect("pem"))
    })
    .await;
    let token = f.session(|_, c| c["exp"] = json!(f.now() + 30));
    assert!(f.verify(&token).await.is_ok());
    assert!(f.verify(&token).await.is_ok());
    assert_eq!(stats(&f.verifier).0, 1);
    f.clock.advance(Duration::from_secs(40));
    f.rejects(&token, invalid(Reason::Expired)).await;
}

#[cfg(feature = "cli")]
#[test]
fn settings_come_from_the_environment() {
    let from = |pairs: &[(&str, &str)]| {
        let mut vars: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vars.push((
            "CLERK_JWKS_URL".into(),
            "https://example.com/jwks.json".into(),
        ));
        m2m_core::VerifierConfig::from_env(&m2m_core::config::Env::from_fn(move |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        }))
    };
    assert_eq!(
        from(&[]).expect("defaults").jwt_cache,
        JwtCacheSettings::default()
    );
    let cfg = from(&[
        ("CLERK_JWT_CACHE_MAX_ENTRIES", "0"),
        ("CLERK_JWT_CACHE_MAX_MIB", "8"),
    ])
    .expect("set");
    assert_eq!(
        cfg.jwt_cache,
        JwtCacheSettings {
            max_entries: 0,
            max_bytes: 8 << 20
        }
    );
    assert!(!cfg.jwt_cache.enabled());
    for (var, value) in [
        ("CLERK_JWT_CACHE_MAX_ENTRIES", "-1"),
        ("CLERK_JWT_CACHE_MAX_MIB", "0"),
    ] {
        let err = from(&[(var, value)]).expect_err("refused");
        assert_eq!(err.var, var);
    }
}

#[tokio::test]
async fn expired_entries_are_swept_away_after_an_insert() {
    use m2m_core::settings::JWT_CACHE_SWEEP_EVERY;
    let f = fixture().await;
    let cache = || f.verifier.jwt_cache().expect("cache");
    let short = f.session(|_, c| c["exp"] = json!(f.now() + 60));
    let long = f.session(|_, c| c["exp"] = json!(f.now() + 3600));
    assert!(f.verify(&short).await.is_ok());
    assert!(f.verify(&long).await.is_ok());
    assert_eq!(cache().entry_count(), 2);
    // `short` is past its exp and the skew: refused if used, and still held until a sweep.
    f.clock
        .advance(Duration::from_secs(66).max(JWT_CACHE_SWEEP_EVERY));
    assert_eq!(cache().entry_count(), 2);
    // The next insert starts a sweep (on a blocking thread) that takes `short` away only.
    let fresh = f.session(|_, c| c["exp"] = json!(f.now() + 600));
    assert!(f.verify(&fresh).await.is_ok());
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache().entry_count() != 2 {
        assert!(
            Instant::now() < deadline,
            "no sweep: {}",
            cache().entry_count()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (hits, ..) = stats(&f.verifier);
    assert!(f.verify(&long).await.is_ok());
    assert_eq!(stats(&f.verifier).0, hits + 1, "the live entry is kept");
    f.rejects(&short, invalid(Reason::Expired)).await;
    assert_eq!(
        cache().stats().evictions.load(Ordering::Relaxed),
        0,
        "a sweep is not an eviction"
    );
}
