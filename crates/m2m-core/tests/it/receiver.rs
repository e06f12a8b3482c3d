//! Receiver binding: an M2M token is accepted only by a service its scopes name. The matrix
//! runs both token formats through the same cases and both verification keys, so the two
//! formats cannot drift apart.

use std::sync::Arc;
use std::time::Duration;

use clerk_mock::{ClerkMock, Seed};
use m2m_core::clock::ManualClock;
use m2m_core::settings::{JwksSettings, JwtCacheSettings, JwtPolicy, OpaqueCacheSettings};
use m2m_core::verifier::Reason;
use m2m_core::{Principal, Verifier, VerifierConfig, VerifyError};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::client;
use crate::verify::config;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Opaque,
    Jwt,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    /// Minted by a machine scoped to the API.
    Scoped,
    /// Minted by a machine that is not (its scope was removed first).
    Unscoped,
    /// Scoped, then revoked.
    Revoked,
    /// Scoped, then past its expiry.
    Expired,
    /// Minted by another Clerk instance (other keys, other token store).
    OtherInstance,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Key {
    /// The API verifies opaque tokens with its own machine key (Clerk checks scopes too).
    Machine,
    /// The API verifies opaque tokens with the instance key (only we check scopes).
    Instance,
}

const API: &str = "JobTracker.API";
const BOT: &str = "JobApplier.Bot";

struct Setup {
    mock: ClerkMock,
    clock: ManualClock,
    verifier: Verifier,
}

async fn setup(key: Key, machine_id: bool) -> Setup {
    let mock = ClerkMock::start_demo().await;
    let clock = ManualClock::new();
    let mut cfg = config(&mock);
    if key == Key::Instance {
        cfg.verify_key = Some(SecretString::from(mock.instance_secret_key()));
    }
    if !machine_id {
        cfg.machine_id = None;
    }
    let verifier = cfg.build(&client(&mock.api_url(), &clock), Arc::new(clock.clone()));
    Setup {
        mock,
        clock,
        verifier,
    }
}

fn body(format: Format) -> Value {
    match format {
        Format::Opaque => json!({ "seconds_until_expiration": 60 }),
        Format::Jwt => json!({ "seconds_until_expiration": 60, "token_format": "jwt" }),
    }
}

fn id(mock: &ClerkMock, name: &str) -> String {
    mock.machine_by_name(name).expect("seeded machine").id
}

/// The token the case presents.
async fn token_for(s: &Setup, format: Format, case: Case) -> String {
    let (bot, api) = (id(&s.mock, BOT), id(&s.mock, API));
    match case {
        Case::Scoped => s.mock.mint(&bot, &body(format))["token"]
            .as_str()
            .expect("token")
            .to_owned(),
        Case::Unscoped => {
            assert!(s.mock.remove_scope(&bot, &api));
            s.mock.mint(&bot, &body(format))["token"]
                .as_str()
                .expect("token")
                .to_owned()
        }
        Case::Revoked => {
            let created = s.mock.mint(&bot, &body(format));
            // JWTs cannot be revoked at Clerk: the mock answers 404, as Clerk does.
            s.mock
                .revoke_token(created["id"].as_str().expect("id"), Some("test"));
            created["token"].as_str().expect("token").to_owned()
        }
        Case::Expired => {
            let created = s.mock.mint(&bot, &body(format));
            s.mock.advance_clock(Duration::from_secs(120));
            s.clock.advance(Duration::from_secs(120));
            created["token"].as_str().expect("token").to_owned()
        }
        Case::OtherInstance => {
            let mut seed = Seed::demo();
            seed.instance.id = Some("ins_2OtherInstance00000000000000".into());
            seed.instance.secret_key = Some("sk_test_other_instance".into());
            seed.instance.signing_key_pem = None;
            let other = ClerkMock::start_with(seed).await;
            let other_bot = other.machine_by_name(BOT).expect("bot").id;
            other.mint(&other_bot, &body(format))["token"]
                .as_str()
                .expect("token")
                .to_owned()
        }
    }
}

/// What each cell must give: `Ok` or one of the listed rejection reasons.
fn expected(format: Format, case: Case) -> Result<(), &'static [Reason]> {
    match (format, case) {
        (_, Case::Scoped) => Ok(()),
        // Clerk hides an out-of-scope token behind 404 when asked with the machine key; with
        // the instance key it answers, and the binding refuses it.
        (Format::Opaque, Case::Unscoped) => Err(&[Reason::NotFound, Reason::NotScoped]),
        (Format::Jwt, Case::Unscoped) => Err(&[Reason::NotScoped]),
        (Format::Opaque, Case::Revoked) => Err(&[Reason::NotFound, Reason::Revoked]),
        // The one inherent difference: a JWT is verified offline and stays valid until `exp`.
        (Format::Jwt, Case::Revoked) => Ok(()),
        (Format::Opaque, Case::Expired) => Err(&[Reason::NotFound, Reason::Expired]),
        (Format::Jwt, Case::Expired) => Err(&[Reason::Expired]),
        (Format::Opaque, Case::OtherInstance) => Err(&[Reason::NotFound]),
        (Format::Jwt, Case::OtherInstance) => Err(&[Reason::Signature, Reason::Kid]),
    }
}

#[tokio::test]
async fn both_formats_give_the_same_verdict_with_either_key() {
    let mut cells = 0;
    for key in [Key::Machine, Key::Instance] {
        for case in [
            Case::Scoped,
            Case::Unscoped,
            Case::Revoked,
            Case::Expired,
            Case::OtherInstance,
        ] {
            for format in [Format::Opaque, Format::Jwt] {
                let s = setup(key, true).await;
                let token = token_for(&s, format, case).await;
                let got = s.verifier.verify_token(&token).await;
                let cell = format!("{format:?} × {case:?} × {key:?} key");
                match (expected(format, case), got) {
                    (Ok(()), Ok(Principal::Machine(m))) => {
                        assert_eq!(m.machine_id, id(&s.mock, BOT), "{cell}");
                        assert!(m.scopes.contains(&id(&s.mock, API)), "{cell}");
                    }
                    (Err(reasons), Err(VerifyError::Invalid(r))) => {
                        assert!(reasons.contains(&r), "{cell}: rejected as {r}");
                    }
                    (want, got) => panic!("{cell}: expected {want:?}, got {got:?}"),
                }
                cells += 1;
            }
        }
    }
    assert_eq!(cells, 20);
}

#[tokio::test]
async fn scope_removal_refuses_new_tokens_of_both_formats_and_re_adding_restores_them() {
    let s = setup(Key::Machine, true).await;
    let (bot, api) = (id(&s.mock, BOT), id(&s.mock, API));
    let old_jwt = s.mock.mint(&bot, &body(Format::Jwt))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(s.mock.remove_scope(&bot, &api));
    for format in [Format::Opaque, Format::Jwt] {
        let token = s.mock.mint(&bot, &body(format))["token"]
            .as_str()
            .expect("token")
            .to_owned();
        assert!(
            matches!(
                s.verifier.verify_token(&token).await,
                Err(VerifyError::Invalid(_))
            ),
            "{format:?} token minted without the scope must be refused"
        );
    }
    // Scopes are snapshotted at creation (Clerk's documented rule): a JWT minted earlier
    // still names the API.
    assert!(s.verifier.verify_token(&old_jwt).await.is_ok());
    s.mock.add_scope(&bot, &api);
    let fresh = s.mock.mint(&bot, &body(Format::Jwt))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(s.verifier.verify_token(&fresh).await.is_ok());
}

#[tokio::test]
async fn a_token_scoped_only_to_another_service_is_not_replayable_here() {
    let s = setup(Key::Machine, true).await;
    let other = s.mock.create_machine("Other.Service", &[]);
    let sender = s.mock.create_machine("Sender", &[other.id.as_str()]);
    for format in [Format::Opaque, Format::Jwt] {
        let token = s.mock.mint(&sender.id, &body(format))["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let err = s.verifier.verify_token(&token).await.expect_err("refused");
        assert!(
            matches!(err, VerifyError::Invalid(r) if r == Reason::NotFound || r == Reason::NotScoped),
            "{format:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn without_its_machine_id_a_service_refuses_m2m_jwts() {
    let s = setup(Key::Machine, false).await;
    let bot = id(&s.mock, BOT);
    let jwt = s.mock.mint(&bot, &body(Format::Jwt))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        s.verifier.verify_token(&jwt).await,
        Err(VerifyError::Invalid(Reason::NotScoped))
    );
    // Opaque tokens verified with the machine key are still bound, by Clerk.
    let opaque = s.mock.mint(&bot, &body(Format::Opaque))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(s.verifier.verify_token(&opaque).await.is_ok());
}

#[tokio::test]
async fn without_its_machine_id_the_instance_key_verifies_nothing_and_costs_no_call() {
    let s = setup(Key::Instance, false).await;
    let bot = id(&s.mock, BOT);
    let opaque = s.mock.mint(&bot, &body(Format::Opaque))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    s.mock.reset_calls();
    assert_eq!(
        s.verifier.verify_token(&opaque).await,
        Err(VerifyError::Invalid(Reason::NotScoped))
    );
    assert_eq!(s.mock.calls(clerk_mock::Endpoint::VerifyToken), 0);
}

#[tokio::test]
async fn only_the_scopes_claim_names_the_receiver_never_aud() {
    let s = setup(Key::Machine, true).await;
    let (bot, api) = (id(&s.mock, BOT), id(&s.mock, API));
    let now = s.mock.now_ms() / 1000;
    let jwt = |extra: Value| {
        let mut claims = json!({
            "iss": s.mock.issuer(), "sub": bot, "iat": now, "nbf": now, "exp": now + 60,
            "jti": "mt_0123456789abcdef0123456789abcdef",
        });
        for (k, v) in extra.as_object().expect("object") {
            claims[k] = v.clone();
        }
        s.mock
            .sign(&s.mock.jwt_header(clerk_mock::CAT_M2M), &claims)
    };
    for (claims, ok) in [
        (json!({ "scopes": format!("mch_2Other {api}") }), true),
        (json!({ "aud": [api.clone(), "mch_2Other"] }), false),
        (json!({ "aud": api.clone() }), false),
        (json!({ "scopes": "mch_2Other", "aud": api.clone() }), false),
        (json!({ "scopes": [api.clone()] }), true),
        (json!({ "scopes": "mch_2Other" }), false),
        (json!({ "scopes": format!("{api}x") }), false),
        (json!({ "aud": ["mch_2Other"] }), false),
        (json!({ "scopes": 7 }), false),
        (json!({}), false),
    ] {
        let got = s.verifier.verify_token(&jwt(claims.clone())).await;
        if ok {
            assert!(got.is_ok(), "{claims}: {got:?}");
        } else {
            assert_eq!(
                got,
                Err(VerifyError::Invalid(Reason::NotScoped)),
                "{claims}"
            );
        }
    }
}

#[tokio::test]
async fn an_opaque_answer_without_this_service_in_scopes_is_refused_with_the_instance_key() {
    let s = setup(Key::Instance, true).await;
    let (bot, api) = (id(&s.mock, BOT), id(&s.mock, API));
    assert!(s.mock.remove_scope(&bot, &api));
    let opaque = s.mock.mint(&bot, &body(Format::Opaque))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        s.verifier.verify_token(&opaque).await,
        Err(VerifyError::Invalid(Reason::NotScoped))
    );
}

#[tokio::test]
async fn a_200_from_clerk_that_does_not_name_this_service_is_refused_with_the_machine_key() {
    // Defence in depth: should Clerk ever answer 200 for a token not scoped to the caller,
    // the binding still refuses it.
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/m2m_tokens/verify"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({
            "object": "machine_to_machine_token",
            "id": "mt_0123456789abcdef0123456789abcdef",
            "subject": "mch_2Sender",
            "claims": null,
            "scopes": ["mch_2SomeoneElse"],
            "revoked": false,
            "revocation_reason": null,
            "expired": false,
            "expiration": null,
            "last_used_at": null,
            "created_at": 1,
            "updated_at": 1
        })))
        .expect(1)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    // Opaque tokens only, verified with this service's machine key.
    let cfg = VerifierConfig {
        api_base_url: server.uri(),
        machine_key_file: None,
        verify_key: Some(SecretString::from("ak_receiver_key".to_owned())),
        key_source: None,
        policy: JwtPolicy::default(),
        cache: OpaqueCacheSettings::default(),
        machine_id: Some("mch_2JobTrackerApi0000000000000".into()),
        jwks: JwksSettings::default(),
        jwt_cache: JwtCacheSettings::default(),
    };
    let verifier = cfg.build(&client(&server.uri(), &clock), Arc::new(clock.clone()));
    let token = "mt_abcdefghijklmnopqrstuvwxyz012345";
    assert_eq!(
        verifier.verify_token(token).await,
        Err(VerifyError::Invalid(Reason::NotScoped))
    );
    // The refusal is cached like any negative verdict: no second call.
    assert_eq!(
        verifier.verify_token(token).await,
        Err(VerifyError::Invalid(Reason::NotScoped))
    );
}

#[tokio::test]
async fn a_minting_machine_cannot_name_its_receivers_through_custom_claims() {
    // The attack: an operator cuts a machine off by removing its scope; it then mints JWTs
    // whose custom claims name the API itself.
    let s = setup(Key::Machine, true).await;
    let (bot, api) = (id(&s.mock, BOT), id(&s.mock, API));
    assert!(s.mock.remove_scope(&bot, &api));
    let stranger = s.mock.create_machine("Stranger", &[]);
    for machine in [bot.as_str(), stranger.id.as_str()] {
        for claims in [
            json!({ "aud": api.clone() }),
            json!({ "aud": [api.clone()] }),
            json!({ "scopes": api.clone() }),
            json!({ "scopes": [api.clone()] }),
        ] {
            let token = s.mock.mint(
                machine,
                &json!({ "token_format": "jwt", "claims": claims.clone() }),
            )["token"]
                .as_str()
                .expect("token")
                .to_owned();
            assert_eq!(
                s.verifier.verify_token(&token).await,
                Err(VerifyError::Invalid(Reason::NotScoped)),
                "{machine} with {claims}"
            );
        }
    }
}
