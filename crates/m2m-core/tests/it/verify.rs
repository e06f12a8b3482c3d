//! One test per verification rule (issue: session JWTs, M2M JWTs, opaque tokens, JWKS).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use clerk_mock::{ClerkMock, Endpoint, Fault, RevokedVerify, Seed, SigningKey};
use m2m_core::VerifierConfig;
use m2m_core::clock::{Clock, ManualClock};
use m2m_core::settings::{JwksSettings, JwtPolicy, KeySource, OpaqueCacheSettings, TokenFormat};
use m2m_core::verifier::Reason;
use m2m_core::{Principal, Verifier, VerifyError};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::client;

pub struct Fixture {
    pub mock: ClerkMock,
    pub clock: ManualClock,
    pub verifier: Verifier,
    pub user: String,
}

pub fn config(mock: &ClerkMock) -> VerifierConfig {
    VerifierConfig {
        api_base_url: mock.api_url(),
        machine_key_file: None,
        verify_key: Some(SecretString::from(
            mock.machine_by_name("JobTracker.API")
                .expect("api")
                .secret_key,
        )),
        key_source: Some(KeySource::Bapi(SecretString::from(
            mock.instance_secret_key(),
        ))),
        policy: JwtPolicy {
            authorized_parties: vec![mock.authorized_party()],
            ..JwtPolicy::default()
        },
        cache: OpaqueCacheSettings::default(),
        machine_id: Some(mock.machine_by_name("JobTracker.API").expect("api").id),
        jwks: Default::default(),
        jwt_cache: Default::default(),
    }
}

pub async fn fixture_with(
    seed: Seed,
    edit: impl FnOnce(&ClerkMock, &mut VerifierConfig),
) -> Fixture {
    let mock = ClerkMock::start_with(seed).await;
    let clock = ManualClock::new();
    let mut cfg = config(&mock);
    edit(&mock, &mut cfg);
    let verifier = cfg.build(&client(&mock.api_url(), &clock), Arc::new(clock.clone()));
    let user = mock.users()[0].id.clone();
    Fixture {
        mock,
        clock,
        verifier,
        user,
    }
}

pub async fn fixture() -> Fixture {
    fixture_with(Seed::demo(), |_, _| {}).await
}

impl Fixture {
    pub fn now(&self) -> i64 {
        self.clock.unix_now().as_secs() as i64
    }

    pub fn session(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        self.mock.session_token_with(&self.user, edit)
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        self.verifier.verify_token(token).await
    }

    pub async fn rejects(&self, token: &str, expected: VerifyError) {
        assert_eq!(
            self.verify(token).await.expect_err("must be rejected"),
            expected
        );
    }

    pub fn mint(&self, bot: &str, body: Value) -> Value {
        let id = self.mock.machine_by_name(bot).expect("bot").id;
        self.mock.mint(&id, &body)
    }
}

pub fn invalid(r: Reason) -> VerifyError {
    VerifyError::Invalid(r)
}

// ---- session tokens ----

#[tokio::test]
async fn a_valid_session_token_gives_the_user() {
    let f = fixture().await;
    let token = f.mock.session_token(&f.user);
    match f.verify(&token).await.expect("valid") {
        Principal::User(u) => {
            assert_eq!(u.user_id, f.user);
            assert!(u.session_id.starts_with("sess_"));
            assert_eq!(
                u.authorized_party.as_deref(),
                Some(f.mock.authorized_party().as_str())
            );
        }
        other => panic!("expected a user, got {other:?}"),
    }
}

/// The principal's own fields and its claims come from the payload the signature covers, read
/// without a `Value` of every claim: every claim is still there (parsed when first read),
/// including from the cache.
#[tokio::test]
async fn a_session_principal_carries_every_claim_of_its_token() {
    let f = fixture().await;
    let token = f.session(|_, c| {
        c["o"] = json!({"id": "org_1", "rol": "admin", "per": "a,b"});
        c["act"] = json!({"sub": "user_support", "iss": "https://dashboard.clerk.com"});
        c["custom"] = json!({"nested": [1, 2.5, "three", null, true], "é": "\u{1F600}"});
    });
    let payload = token.split('.').nth(1).expect("payload");
    let payload: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .expect("base64url"),
    )
    .expect("JSON");
    for pass in ["first", "from the cache"] {
        let Principal::User(u) = f.verify(&token).await.expect("valid") else {
            panic!("a user");
        };
        assert_eq!(u.org_id.as_deref(), Some("org_1"), "{pass}");
        assert_eq!(u.actor, Some(payload["act"].clone()), "{pass}");
        assert_eq!(u.claims.value(), &payload, "{pass}");
        assert_eq!(u.claims["custom"]["nested"][1], 2.5, "{pass}");
        assert_eq!(
            serde_json::from_str::<Value>(u.claims.json()).expect("JSON"),
            payload,
            "{pass}"
        );
        assert_eq!(
            serde_json::to_value(&u).expect("serialises")["claims"],
            payload
        );
    }
    let stats = f.verifier.jwt_cache().expect("cache").stats();
    assert_eq!(stats.hits.load(Ordering::Relaxed), 1);
}

#[test]
fn jsonwebtoken_has_a_working_crypto_backend() {
    // Decoding a real token fails (panics) if feature unification left no or two backends.
    let key = SigningKey::generate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let token = key.sign(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &json!({"sub": "user_1", "exp": now + 60}),
    );
    let pem = key.public_key_pem();
    let decoded = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).expect("pem"),
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256),
    )
    .expect("decodes");
    assert_eq!(decoded.claims["sub"], "user_1");
}

#[tokio::test]
async fn a_token_without_typ_is_accepted() {
    let f = fixture().await;
    let t = f.session(|h, _| {
        h.as_object_mut().expect("obj").remove("typ");
    });
    assert!(f.verify(&t).await.is_ok());
}

#[tokio::test]
async fn a_typ_other_than_jwt_is_rejected() {
    let f = fixture().await;
    f.rejects(
        &f.session(|h, _| h["typ"] = json!("JOSE")),
        invalid(Reason::Type),
    )
    .await;
    f.rejects(
        &f.session(|h, _| h["typ"] = json!("jwt")),
        invalid(Reason::Type),
    )
    .await;
}

#[tokio::test]
async fn an_oauth_access_token_typ_is_not_a_session() {
    let f = fixture().await;
    f.rejects(
        &f.session(|h, _| h["typ"] = json!("at+jwt")),
        invalid(Reason::TypeMismatch),
    )
    .await;
}

#[tokio::test]
async fn expiry_honours_five_seconds_of_skew() {
    let f = fixture().await;
    let now = f.now();
    f.rejects(
        &f.session(|_, c| c["exp"] = json!(now - 6)),
        invalid(Reason::Expired),
    )
    .await;
    f.rejects(
        &f.session(|_, c| c["exp"] = json!(now - 5)),
        invalid(Reason::Expired),
    )
    .await;
    assert!(
        f.verify(&f.session(|_, c| c["exp"] = json!(now - 3)))
            .await
            .is_ok(),
        "expired 3 s ago: within skew"
    );
}

#[tokio::test]
async fn not_before_in_the_future_is_rejected_beyond_skew() {
    let f = fixture().await;
    let now = f.now();
    f.rejects(
        &f.session(|_, c| c["nbf"] = json!(now + 30)),
        invalid(Reason::NotActiveYet),
    )
    .await;
    assert!(
        f.verify(&f.session(|_, c| c["nbf"] = json!(now + 3)))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn issued_in_the_future_is_rejected() {
    let f = fixture().await;
    let now = f.now();
    f.rejects(
        &f.session(|_, c| c["iat"] = json!(now + 30)),
        invalid(Reason::IatInFuture),
    )
    .await;
}

#[tokio::test]
async fn azp_must_be_present_and_listed() {
    let f = fixture().await;
    f.rejects(
        &f.session(|_, c| c["azp"] = json!("https://evil.example")),
        invalid(Reason::AuthorizedParties),
    )
    .await;
    f.rejects(
        &f.session(|_, c| {
            c.as_object_mut().expect("obj").remove("azp");
        }),
        invalid(Reason::AuthorizedParties),
    )
    .await;
    let slash = format!("{}/", f.mock.authorized_party());
    f.rejects(
        &f.session(|_, c| c["azp"] = json!(slash)),
        invalid(Reason::AuthorizedParties),
    )
    .await;
}

#[tokio::test]
async fn without_authorized_parties_any_azp_passes() {
    let f = fixture_with(Seed::demo(), |_, c| c.policy.authorized_parties.clear()).await;
    assert!(
        f.verify(&f.session(|_, c| {
            c.as_object_mut().expect("obj").remove("azp");
        }))
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn sub_must_be_a_string() {
    let f = fixture().await;
    f.rejects(
        &f.session(|_, c| {
            c.as_object_mut().expect("obj").remove("sub");
        }),
        invalid(Reason::Invalid),
    )
    .await;
    f.rejects(
        &f.session(|_, c| c["sub"] = json!(42)),
        invalid(Reason::Invalid),
    )
    .await;
}

#[tokio::test]
async fn exp_is_required_and_numeric() {
    let f = fixture().await;
    f.rejects(
        &f.session(|_, c| {
            c.as_object_mut().expect("obj").remove("exp");
        }),
        invalid(Reason::Invalid),
    )
    .await;
    let later = (f.now() + 60).to_string();
    f.rejects(
        &f.session(|_, c| c["exp"] = json!(later)),
        invalid(Reason::Invalid),
    )
    .await;
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let f = fixture().await;
    let claims = json!({"sub": f.user, "sid": "sess_x", "exp": f.now() + 60, "azp": f.mock.authorized_party()});
    let header = json!({"alg": "none", "typ": "JWT", "kid": f.mock.instance_id()});
    let unsigned = clerk_mock::unsigned(&header, &claims);
    assert!(
        matches!(f.verify(&unsigned).await, Err(VerifyError::Malformed(_))),
        "empty signature"
    );
    f.rejects(&format!("{unsigned}AAAA"), invalid(Reason::Algorithm))
        .await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let f = fixture().await;
    let claims = json!({"sub": f.user, "sid": "sess_x", "exp": f.now() + 60, "azp": f.mock.authorized_party()});
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": f.mock.instance_id()});
    let pem = f.mock.public_key_pem();
    f.rejects(
        &clerk_mock::sign_hs256(&header, &claims, pem.as_bytes()),
        invalid(Reason::Algorithm),
    )
    .await;
}

#[tokio::test]
async fn another_key_with_the_same_kid_is_rejected() {
    let f = fixture().await;
    let (header, claims) = (
        f.mock.jwt_header(clerk_mock::CAT_SESSION),
        json!({"sub": f.user, "sid": "sess_x", "exp": f.now() + 60, "azp": f.mock.authorized_party()}),
    );
    let forged = SigningKey::generate().sign(&header, &claims);
    f.rejects(&forged, invalid(Reason::Signature)).await;
}

#[tokio::test]
async fn a_tampered_payload_is_rejected() {
    use base64::Engine;
    let f = fixture().await;
    let token = f.mock.session_token(&f.user);
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("b64"),
    )
    .expect("json");
    claims["sub"] = json!("user_2SomeoneElse0000000000000000");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    f.rejects(&forged, invalid(Reason::Signature)).await;
}

#[tokio::test]
async fn stripped_signatures_and_two_part_tokens_are_malformed() {
    let f = fixture().await;
    let token = f.mock.session_token(&f.user);
    let (signed, _) = token.rsplit_once('.').expect("three parts");
    assert!(matches!(
        f.verify(&format!("{signed}.")).await,
        Err(VerifyError::Malformed(_))
    ));
    assert!(matches!(
        f.verify(signed).await,
        Err(VerifyError::Malformed(_))
    ));
    assert!(matches!(
        f.verify(&format!("{token}.x")).await,
        Err(VerifyError::Malformed(_))
    ));
    assert_eq!(
        f.mock.calls(Endpoint::Jwks),
        0,
        "malformed tokens cost no network call"
    );
}

#[tokio::test]
async fn m2m_and_template_categories_are_not_sessions() {
    let f = fixture().await;
    f.rejects(
        &f.session(|h, _| h["cat"] = json!(clerk_mock::CAT_M2M)),
        invalid(Reason::TypeMismatch),
    )
    .await;
    f.rejects(
        &f.session(|h, _| h["cat"] = json!(clerk_mock::CAT_TEMPLATE)),
        invalid(Reason::TypeMismatch),
    )
    .await;
    assert!(
        f.verify(&f.session(|h, _| {
            h.as_object_mut().expect("obj").remove("cat");
        }))
        .await
        .is_ok(),
        "pre-rollout tokens have no cat"
    );
}

#[tokio::test]
async fn a_machine_subject_is_never_a_user() {
    let f = fixture().await;
    let rep = f
        .mock
        .machine_by_name("CandidateRepresenter.Bot")
        .expect("rep")
        .id;
    f.rejects(
        &f.session(|_, c| c["sub"] = json!(rep)),
        invalid(Reason::TypeMismatch),
    )
    .await;
}

#[tokio::test]
async fn pending_sessions_are_rejected() {
    let f = fixture().await;
    f.rejects(
        &f.session(|_, c| c["sts"] = json!("pending")),
        invalid(Reason::PendingSession),
    )
    .await;
    assert!(
        f.verify(&f.session(|_, c| c["sts"] = json!("active")))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn unknown_header_parameters_are_ignored_and_rs384_rs512_accepted() {
    let f = fixture().await;
    // Clerk's JWK says `alg: RS256`, so RS384/RS512 tokens verify only against a key that
    // names no `alg` (WebCrypto's rule, and Clerk's SDK's).
    let mut no_alg = f.mock.instance_jwk();
    no_alg.as_object_mut().expect("jwk").remove("alg");
    f.mock.set_jwks_keys(Some(vec![no_alg]));
    assert!(
        f.verify(&f.session(|h, _| {
            h["oiat"] = json!(1);
            h["x-future"] = json!({"a": 1});
        }))
        .await
        .is_ok()
    );
    for alg in ["RS384", "RS512"] {
        assert!(
            f.verify(&f.session(|h, _| h["alg"] = json!(alg)))
                .await
                .is_ok(),
            "{alg}"
        );
    }
    f.rejects(
        &f.session(|h, _| h["alg"] = json!("PS256")),
        invalid(Reason::Algorithm),
    )
    .await;
}

#[tokio::test]
async fn the_issuer_is_checked_when_configured() {
    let f = fixture_with(Seed::demo(), |m, c| c.policy.issuer = Some(m.issuer())).await;
    assert!(f.verify(&f.mock.session_token(&f.user)).await.is_ok());
    f.rejects(
        &f.session(|_, c| c["iss"] = json!("https://clerk.evil.example")),
        invalid(Reason::Issuer),
    )
    .await;
    f.rejects(
        &f.session(|_, c| {
            c.as_object_mut().expect("obj").remove("iss");
        }),
        invalid(Reason::Issuer),
    )
    .await;
}

#[tokio::test]
async fn a_pem_key_verifies_without_any_network_call() {
    let f = fixture_with(Seed::demo(), |m, c| {
        c.key_source =
            Some(KeySource::from_pem(&m.public_key_pem().replace('\n', "\\n")).expect("pem"))
    })
    .await;
    assert!(f.verify(&f.mock.session_token(&f.user)).await.is_ok());
    f.rejects(&SigningKey::generate().sign(&f.mock.jwt_header(clerk_mock::CAT_SESSION), &json!({"sub": "user_x", "sid": "s", "exp": f.now() + 60, "azp": f.mock.authorized_party()})), invalid(Reason::Signature)).await;
    assert_eq!(
        f.mock.calls(Endpoint::Jwks) + f.mock.calls(Endpoint::PublicJwks),
        0
    );
}

#[tokio::test]
async fn a_public_jwks_url_works_too() {
    let f = fixture_with(Seed::demo(), |m, c| {
        c.key_source = Some(KeySource::Url(m.jwks_url()))
    })
    .await;
    assert!(f.verify(&f.mock.session_token(&f.user)).await.is_ok());
    assert_eq!(f.mock.calls(Endpoint::PublicJwks), 1);
}

// ---- JWKS cache ----

/// Serves a JWKS that can change; counts fetches; can fail.
#[derive(Clone)]
pub struct Jwks {
    pub body: Arc<std::sync::Mutex<(u16, Value)>>,
    pub fetches: Arc<AtomicU32>,
    /// Delay of every answer from now on (a hanging endpoint).
    pub delay: Arc<std::sync::Mutex<Duration>>,
}

impl Respond for Jwks {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let (status, body) = self.body.lock().expect("lock").clone();
        ResponseTemplate::new(status)
            .set_body_raw(body.to_string(), "application/json")
            .set_delay(*self.delay.lock().expect("lock"))
    }
}

pub async fn jwks_server(keys: Value) -> (MockServer, Jwks) {
    let server = MockServer::start().await;
    let jwks = Jwks {
        body: Arc::new(std::sync::Mutex::new((200, json!({"keys": keys})))),
        fetches: Arc::default(),
        delay: Arc::default(),
    };
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(jwks.clone())
        .mount(&server)
        .await;
    (server, jwks)
}

fn verifier_for(url: String, clock: &ManualClock) -> Verifier {
    verifier_with(url, clock, JwksSettings::default())
}

pub fn verifier_with(url: String, clock: &ManualClock, jwks: JwksSettings) -> Verifier {
    let cfg = VerifierConfig {
        api_base_url: "http://127.0.0.1:9".into(),
        machine_key_file: None,
        verify_key: None,
        key_source: Some(KeySource::Url(url)),
        policy: JwtPolicy::default(),
        cache: OpaqueCacheSettings::default(),
        machine_id: None,
        jwks,
        jwt_cache: Default::default(),
    };
    cfg.build(
        &client("http://127.0.0.1:9", clock),
        Arc::new(clock.clone()),
    )
}

pub fn token(key: &SigningKey, kid: &str, now: i64) -> String {
    key.sign(
        &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        &json!({"sub": "user_2a", "sid": "sess_1", "exp": now + 60}),
    )
}

#[tokio::test]
async fn an_unknown_kid_triggers_a_refetch_and_a_rotated_key_is_found() {
    let (a, b) = (SigningKey::generate(), SigningKey::generate());
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let v = verifier_for(format!("{}/jwks.json", server.uri()), &clock);
    let now = clock.unix_now().as_secs() as i64;
    assert!(v.verify_token(&token(&a, "kid_a", now)).await.is_ok());
    jwks.body.lock().expect("lock").1 = json!({"keys": [a.jwk("kid_a"), b.jwk("kid_b")]});
    clock.advance(Duration::from_secs(2)); // fetches are never closer than 1 s
    assert!(
        v.verify_token(&token(&b, "kid_b", now)).await.is_ok(),
        "refetched on the unknown kid"
    );
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_flood_of_random_kids_cannot_flood_the_jwks_endpoint() {
    let a = SigningKey::generate();
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let v = verifier_for(format!("{}/jwks.json", server.uri()), &clock);
    let now = clock.unix_now().as_secs() as i64;
    for i in 0..200 {
        let err = v
            .verify_token(&token(&a, &format!("kid_random_{i}"), now))
            .await
            .expect_err("unknown kid");
        assert_eq!(err, invalid(Reason::Kid));
    }
    assert!(
        jwks.fetches.load(Ordering::SeqCst) <= 2,
        "fetches: {}",
        jwks.fetches.load(Ordering::SeqCst)
    );
    clock.advance(Duration::from_secs(31));
    let _ = v.verify_token(&token(&a, "kid_random_x", now)).await;
    assert!(jwks.fetches.load(Ordering::SeqCst) <= 3);
}

#[tokio::test]
async fn a_jwks_outage_keeps_the_last_good_keys() {
    let a = SigningKey::generate();
    let (server, jwks) = jwks_server(json!([a.jwk("kid_a")])).await;
    let clock = ManualClock::new();
    let v = verifier_for(format!("{}/jwks.json", server.uri()), &clock);
    let now = clock.unix_now().as_secs() as i64;
    assert!(v.verify_token(&token(&a, "kid_a", now)).await.is_ok());
    *jwks.body.lock().expect("lock") = (503, json!({"errors": []}));
    clock.advance(Duration::from_secs(301));
    let now = clock.unix_now().as_secs() as i64;
    assert!(
        v.verify_token(&token(&a, "kid_a", now)).await.is_ok(),
        "stale keys still serve during the outage"
    );
    assert!(
        jwks.fetches.load(Ordering::SeqCst) >= 2,
        "a refresh was attempted"
    );
}

#[tokio::test]
async fn no_keys_at_all_is_unavailable_not_unauthorized() {
    let a = SigningKey::generate();
    let (server, jwks) = jwks_server(json!([])).await;
    *jwks.body.lock().expect("lock") = (503, json!({}));
    let clock = ManualClock::new();
    let v = verifier_for(format!("{}/jwks.json", server.uri()), &clock);
    let now = clock.unix_now().as_secs() as i64;
    assert!(matches!(
        v.verify_token(&token(&a, "kid_a", now)).await,
        Err(VerifyError::Unavailable { .. })
    ));
}

// ---- M2M JWTs ----

#[tokio::test]
async fn a_jwt_m2m_token_is_verified_locally() {
    let f = fixture().await;
    let created = f.mint(
        "CandidateRepresenter.Bot",
        json!({"token_format": "jwt", "claims": {"team": "a"}}),
    );
    let p = f
        .verify(created["token"].as_str().expect("jwt"))
        .await
        .expect("valid");
    let m = p.as_machine().expect("machine");
    assert_eq!(m.machine_id, created["subject"]);
    assert_eq!(m.token_id, created["id"]);
    assert_eq!(m.format, TokenFormat::Jwt);
    assert_eq!(
        m.scopes,
        vec![f.mock.machine_by_name("JobTracker.API").expect("api").id]
    );
    assert_eq!(m.claims.as_ref().expect("claims")["team"], "a");
    assert_eq!(
        f.mock.calls(Endpoint::VerifyToken),
        0,
        "no BAPI call for a JWT"
    );
}

#[tokio::test]
async fn an_expired_m2m_jwt_is_rejected() {
    let f = fixture().await;
    let created = f.mint(
        "CandidateRepresenter.Bot",
        json!({"token_format": "jwt", "seconds_until_expiration": 10}),
    );
    f.clock.advance(Duration::from_secs(16));
    f.rejects(
        created["token"].as_str().expect("jwt"),
        invalid(Reason::Expired),
    )
    .await;
}

#[tokio::test]
async fn an_m2m_jwt_with_another_category_is_rejected() {
    let f = fixture().await;
    let rep = f
        .mock
        .machine_by_name("CandidateRepresenter.Bot")
        .expect("rep")
        .id;
    let t = f.mock.sign(
        &f.mock.jwt_header(clerk_mock::CAT_SESSION),
        &json!({"sub": rep, "exp": f.now() + 60, "jti": "mt_x"}),
    );
    f.rejects(&t, invalid(Reason::TypeMismatch)).await;
}

// ---- opaque tokens ----

#[tokio::test]
async fn an_opaque_token_is_verified_once_then_served_from_the_cache() {
    let f = fixture().await;
    let created = f.mint("JobApplier.Bot", json!({}));
    let token = created["token"].as_str().expect("token");
    for _ in 0..20 {
        let p = f.verify(token).await.expect("valid");
        assert_eq!(
            p.as_machine().expect("machine").machine_id,
            created["subject"]
        );
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 1);
    let stats = f.verifier.opaque_stats().expect("stats");
    assert_eq!(stats.cache_hits.load(Ordering::Relaxed), 19);
    f.clock.advance(Duration::from_secs(61));
    f.verify(token).await.expect("valid");
    assert_eq!(
        f.mock.calls(Endpoint::VerifyToken),
        2,
        "re-verified after the 60 s TTL"
    );
}

#[tokio::test]
async fn the_cache_ttl_is_capped_by_the_tokens_expiry() {
    let f = fixture().await;
    let created = f.mint("JobApplier.Bot", json!({"seconds_until_expiration": 10}));
    let token = created["token"].as_str().expect("token");
    f.verify(token).await.expect("valid");
    f.clock.advance(Duration::from_secs(11));
    f.mock.advance_clock(Duration::from_secs(11));
    f.rejects(token, invalid(Reason::NotFound)).await;
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 2);
}

#[tokio::test]
async fn unknown_tokens_are_negatively_cached_briefly() {
    let f = fixture().await;
    let bogus = "mt_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    f.rejects(bogus, invalid(Reason::NotFound)).await;
    f.rejects(bogus, invalid(Reason::NotFound)).await;
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 1);
    f.clock.advance(Duration::from_secs(6));
    f.rejects(bogus, invalid(Reason::NotFound)).await;
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_with_one_new_token_make_one_clerk_call() {
    let f = Arc::new(fixture().await);
    let created = f.mint("JobApplier.Bot", json!({}));
    let token = created["token"].as_str().expect("token").to_owned();
    f.mock.set_latency(Duration::from_millis(200));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (f, t) = (f.clone(), token.clone());
            tokio::spawn(async move { f.verify(&t).await.is_ok() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.expect("join"));
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 1);
}

#[tokio::test]
async fn a_revoked_or_expired_flag_on_a_2xx_is_rejected() {
    let mut seed = Seed::demo();
    seed.behaviour.revoked_verify = RevokedVerify::FlagsOn200;
    let f = fixture_with(seed, |_, _| {}).await;
    let revoked = f.mint("JobApplier.Bot", json!({}));
    f.mock
        .revoke_token(revoked["id"].as_str().expect("id"), None);
    f.rejects(
        revoked["token"].as_str().expect("t"),
        invalid(Reason::Revoked),
    )
    .await;
    let expired = f.mint("JobApplier.Bot", json!({}));
    f.mock.expire_token(expired["id"].as_str().expect("id"));
    f.rejects(
        expired["token"].as_str().expect("t"),
        invalid(Reason::Expired),
    )
    .await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_once_the_cache_entry_lapses() {
    let f = fixture().await;
    let c = f.mint("JobApplier.Bot", json!({}));
    let t = c["token"].as_str().expect("t");
    f.verify(t).await.expect("valid");
    f.mock.revoke_token(c["id"].as_str().expect("id"), None);
    assert!(
        f.verify(t).await.is_ok(),
        "within the cache TTL the old answer stands (documented trade-off)"
    );
    f.clock.advance(Duration::from_secs(61));
    f.rejects(t, invalid(Reason::NotFound)).await;
}

#[tokio::test]
async fn a_token_not_scoped_to_this_service_is_rejected() {
    let f = fixture().await;
    let outsider = f.mock.create_machine("Outsider.Bot", &[]);
    let resp: Value = reqwest::Client::new()
        .post(format!("{}/m2m_tokens", f.mock.api_url()))
        .bearer_auth(&outsider.secret_key)
        .json(&json!({}))
        .send()
        .await
        .expect("mock")
        .json()
        .await
        .expect("json");
    f.rejects(
        resp["token"].as_str().expect("t"),
        invalid(Reason::NotFound),
    )
    .await;
}

#[tokio::test]
async fn clerk_down_is_unavailable_never_a_false_401_or_200() {
    let f = fixture().await;
    let c = f.mint("JobApplier.Bot", json!({}));
    f.mock.set_outage(Some(503));
    let err = f
        .verify(c["token"].as_str().expect("t"))
        .await
        .expect_err("cannot verify");
    assert!(matches!(err, VerifyError::Unavailable { .. }), "{err:?}");
    f.mock.set_outage(None);
    f.verify(c["token"].as_str().expect("t"))
        .await
        .expect("errors were not cached");
    // A cached answer survives an outage.
    f.mock.set_outage(Some(503));
    f.verify(c["token"].as_str().expect("t"))
        .await
        .expect("cached");
    f.mock.inject(None, Fault::rate_limited(1), 10);
}

#[tokio::test]
async fn a_rejected_receiver_key_is_a_server_misconfiguration() {
    let f = fixture_with(Seed::demo(), |_, c| {
        c.verify_key = Some(SecretString::from("ak_revoked_or_wrong".to_owned()))
    })
    .await;
    let c = f.mint("JobApplier.Bot", json!({}));
    assert!(matches!(
        f.verify(c["token"].as_str().expect("t")).await,
        Err(VerifyError::Misconfigured(_))
    ));
}

#[tokio::test]
async fn a_zero_ttl_verifies_every_request_at_clerk() {
    let f = fixture_with(Seed::demo(), |_, c| c.cache.ttl = Duration::ZERO).await;
    let c = f.mint("JobApplier.Bot", json!({}));
    for _ in 0..5 {
        f.verify(c["token"].as_str().expect("t"))
            .await
            .expect("valid");
    }
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 5);
}

#[tokio::test]
async fn malformed_and_foreign_tokens_never_cost_a_clerk_call() {
    let f = fixture().await;
    for t in [
        "mt_short",
        "mt_has!bang0000000000000000000000",
        "ak_api_key_0000000000000000",
        "oat_oauth",
        "random",
        "a.b",
        "eyJ.eyJ.sig",
    ] {
        assert!(f.verify(t).await.is_err(), "{t}");
    }
    assert_eq!(
        f.mock.calls(Endpoint::VerifyToken) + f.mock.calls(Endpoint::Jwks),
        0
    );
}
