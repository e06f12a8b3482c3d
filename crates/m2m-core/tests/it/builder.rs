//! `VerifierConfig::builder()`: a verifier configured in code, with no environment. Its checks
//! are the environment's (same values accepted and refused, the same variable named), it gives
//! what `from_env` gives for the same settings, and the verifier it builds accepts real tokens.

use std::sync::Arc;
use std::time::Duration;

use clerk_mock::ClerkMock;
use m2m_core::clock::ManualClock;
use m2m_core::config::ConfigError;
use m2m_core::settings::{
    JwksSettings, JwtCacheSettings, KeySource, MissBudget, OpaqueCacheSettings,
};
use m2m_core::{Principal, VerifierConfig, VerifyError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::support::client;

const MACHINE_KEY: &str = "ak_api_machine_key";
const INSTANCE_KEY: &str = "sk_test_instance_key";
const MACHINE_ID: &str = "mch_2JobTrackerApi0000000000000";

fn key(k: &str) -> SecretString {
    SecretString::from(k)
}

fn exposed(k: &Option<SecretString>) -> Option<&str> {
    k.as_ref().map(ExposeSecret::expose_secret)
}

#[test]
fn unset_settings_keep_the_librarys_defaults() {
    let c = VerifierConfig::builder()
        .machine_secret_key(key(MACHINE_KEY))
        .build()
        .expect("a machine key is enough");
    assert_eq!(c.api_base_url, "https://api.clerk.com/v1");
    assert_eq!(exposed(&c.verify_key), Some(MACHINE_KEY));
    assert!(c.key_source.is_none(), "no JWT key without one given");
    assert_eq!(c.machine_id, None);
    assert_eq!(c.policy.receiver, None);
    assert!(c.policy.authorized_parties.is_empty());
    assert_eq!(c.policy.issuer, None);
    assert_eq!(c.cache, OpaqueCacheSettings::default());
    assert_eq!(c.jwks, JwksSettings::default());
    assert_eq!(c.jwt_cache, JwtCacheSettings::default());
}

#[test]
fn every_setting_given_is_kept() {
    let cache = OpaqueCacheSettings {
        ttl: Duration::from_secs(5),
        budget: MissBudget {
            burst: 3,
            per_second: 1,
        },
        ..OpaqueCacheSettings::default()
    };
    let jwks = JwksSettings {
        ttl: Duration::from_secs(42),
        ..JwksSettings::default()
    };
    let jwt_cache = JwtCacheSettings {
        max_entries: 7,
        max_bytes: 1 << 20,
    };
    let c = VerifierConfig::builder()
        .api_base_url("http://127.0.0.1:9999/v1/")
        .machine_secret_key(key(MACHINE_KEY))
        .instance_secret_key(key(INSTANCE_KEY))
        .key_source(KeySource::Url("https://clerk.example.com/jwks".into()))
        .authorized_parties(["https://a.example", "http://localhost:5000"])
        .issuer("https://clerk.example.com")
        .machine_id(MACHINE_ID)
        .opaque_cache(cache.clone())
        .jwks(jwks.clone())
        .jwt_cache(jwt_cache.clone())
        .build()
        .expect("config");
    assert_eq!(
        c.api_base_url, "http://127.0.0.1:9999/v1",
        "trailing slash trimmed, as CLERK_API_BASE_URL's"
    );
    assert_eq!(
        exposed(&c.verify_key),
        Some(MACHINE_KEY),
        "the machine key verifies opaque tokens when both keys are set"
    );
    assert!(
        matches!(&c.key_source, Some(KeySource::Url(u)) if u == "https://clerk.example.com/jwks"),
        "a key source given wins over the instance key's GET /jwks: {:?}",
        c.key_source
    );
    assert_eq!(
        c.policy.authorized_parties,
        ["https://a.example", "http://localhost:5000"]
    );
    assert_eq!(
        c.policy.issuer.as_deref(),
        Some("https://clerk.example.com")
    );
    assert_eq!(c.machine_id.as_deref(), Some(MACHINE_ID));
    assert_eq!(c.policy.receiver.as_deref(), Some(MACHINE_ID));
    assert_eq!(c.cache, cache);
    assert_eq!(c.jwks, jwks);
    assert_eq!(c.jwt_cache, jwt_cache);
}

#[test]
fn the_instance_key_alone_verifies_both_kinds() {
    let c = VerifierConfig::builder()
        .instance_secret_key(key(INSTANCE_KEY))
        .build()
        .expect("config");
    assert_eq!(exposed(&c.verify_key), Some(INSTANCE_KEY));
    assert!(
        matches!(&c.key_source, Some(KeySource::Bapi(k)) if k.expose_secret() == INSTANCE_KEY),
        "JWT keys from GET /jwks with the instance key"
    );
}

#[test]
fn a_jwt_key_alone_is_enough_for_jwts() {
    let pem = clerk_mock::SigningKey::shared().public_key_pem();
    let c = VerifierConfig::builder()
        .key_source(KeySource::from_pem(&pem).expect("pem"))
        .build()
        .expect("config");
    assert!(c.verify_key.is_none());
    assert!(matches!(c.key_source, Some(KeySource::Pem(_))));
}

#[test]
fn each_refused_value_names_its_variable_and_never_echoes_a_key() {
    let refused = |b: m2m_core::settings::VerifierConfigBuilder| -> ConfigError {
        b.build().expect_err("refused")
    };
    let base = || VerifierConfig::builder().machine_secret_key(key(MACHINE_KEY));
    let cases = [
        (
            refused(base().api_base_url("ftp://clerk.example.com")),
            "CLERK_API_BASE_URL",
        ),
        (
            refused(VerifierConfig::builder().machine_secret_key(key("sk_live_secret123"))),
            "CLERK_MACHINE_SECRET_KEY",
        ),
        (
            refused(base().instance_secret_key(key("ak_secret456"))),
            "CLERK_SECRET_KEY",
        ),
        (
            refused(base().key_source(KeySource::Url("not a url".into()))),
            "CLERK_JWKS_URL",
        ),
        (refused(base().machine_id("machine-1")), "CLERK_MACHINE_ID"),
        (
            refused(base().authorized_parties(["https://a.example/"])),
            "CLERK_AUTHORIZED_PARTIES",
        ),
        (
            refused(base().authorized_parties(["https://a.example, https://b.example"])),
            "CLERK_AUTHORIZED_PARTIES",
        ),
        (
            refused(VerifierConfig::builder()),
            "CLERK_MACHINE_SECRET_KEY",
        ),
    ];
    for (error, var) in cases {
        assert_eq!(error.var, var, "{error}");
        for secret in ["sk_live_secret123", "ak_secret456"] {
            assert!(!error.to_string().contains(secret), "{error}");
        }
    }
}

#[cfg(feature = "cli")]
#[test]
fn the_builder_gives_what_the_environment_gives() {
    use std::collections::HashMap;

    use m2m_core::config::Env;

    let vars: HashMap<&str, &str> = [
        ("CLERK_API_BASE_URL", "http://127.0.0.1:9999/v1"),
        ("CLERK_MACHINE_SECRET_KEY", MACHINE_KEY),
        ("CLERK_SECRET_KEY", INSTANCE_KEY),
        ("CLERK_JWKS_URL", "https://clerk.example.com/jwks"),
        ("CLERK_AUTHORIZED_PARTIES", "https://a.example"),
        ("CLERK_ISSUER", "https://clerk.example.com"),
        ("CLERK_MACHINE_ID", MACHINE_ID),
        ("M2M_VERIFY_CACHE_TTL_SECONDS", "30"),
        ("CLERK_JWKS_CACHE_TTL_SECONDS", "120"),
    ]
    .into();
    let from_env = VerifierConfig::from_env(&Env::from_fn(|k| vars.get(k).map(|v| v.to_string())))
        .expect("env");
    let built = VerifierConfig::builder()
        .api_base_url("http://127.0.0.1:9999/v1")
        .machine_secret_key(key(MACHINE_KEY))
        .instance_secret_key(key(INSTANCE_KEY))
        .key_source(KeySource::Url("https://clerk.example.com/jwks".into()))
        .authorized_parties(["https://a.example"])
        .issuer("https://clerk.example.com")
        .machine_id(MACHINE_ID)
        .opaque_cache(OpaqueCacheSettings {
            ttl: Duration::from_secs(30),
            ..OpaqueCacheSettings::default()
        })
        .jwks(JwksSettings {
            ttl: Duration::from_secs(120),
            ..JwksSettings::default()
        })
        .build()
        .expect("built");
    assert_eq!(built.api_base_url, from_env.api_base_url);
    assert_eq!(exposed(&built.verify_key), exposed(&from_env.verify_key));
    assert_eq!(
        format!("{:?}", built.key_source),
        format!("{:?}", from_env.key_source)
    );
    assert_eq!(
        format!("{:?}", built.policy),
        format!("{:?}", from_env.policy)
    );
    assert_eq!(built.cache, from_env.cache);
    assert_eq!(built.machine_id, from_env.machine_id);
    assert_eq!(built.jwks, from_env.jwks);
    assert_eq!(built.jwt_cache, from_env.jwt_cache);
}

#[tokio::test]
async fn a_verifier_from_the_builder_accepts_this_machines_tokens_only() {
    let mock = ClerkMock::start_demo().await;
    let api = mock.machine_by_name("JobTracker.API").expect("api");
    let bot = mock.machine_by_name("JobApplier.Bot").expect("bot");
    let config = VerifierConfig::builder()
        .api_base_url(mock.api_url())
        .machine_secret_key(SecretString::from(api.secret_key))
        .instance_secret_key(SecretString::from(mock.instance_secret_key()))
        .authorized_parties([mock.authorized_party()])
        .machine_id(&api.id)
        .build()
        .expect("config");
    let clock = ManualClock::new();
    let verifier = config.build(&client(&mock.api_url(), &clock), Arc::new(clock.clone()));

    for body in [
        json!({ "seconds_until_expiration": 60 }),
        json!({ "seconds_until_expiration": 60, "token_format": "jwt" }),
    ] {
        let token = mock.mint(&bot.id, &body)["token"]
            .as_str()
            .expect("token")
            .to_owned();
        match verifier.verify_token(&token).await {
            Ok(Principal::Machine(m)) => assert_eq!(m.machine_id, bot.id),
            other => panic!("{body}: {other:?}"),
        }
    }
    let user = mock.users()[0].id.clone();
    match verifier.verify_token(&mock.session_token(&user)).await {
        Ok(Principal::User(u)) => assert_eq!(u.user_id, user),
        other => panic!("session: {other:?}"),
    }
    // The API's own token is not scoped to itself: refused, not accepted by default.
    let own = mock.mint(&api.id, &json!({ "seconds_until_expiration": 60 }))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(
        matches!(
            verifier.verify_token(&own).await,
            Err(VerifyError::Invalid(_))
        ),
        "a token of a machine whose scopes do not list the API"
    );
}
