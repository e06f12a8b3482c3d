//! Rotation without restart: a key read from `CLERK_MACHINE_SECRET_KEY_FILE` is followed in its
//! file, by the token source (minting) and by the verifier (opaque verification at Clerk), against
//! clerk-mock's rotation (`previous_token_ttl` grace, 0 = the old key is refused at once).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clerk_mock::{ClerkMock, Endpoint};
use m2m_core::clerk::ClerkClient;
use m2m_core::clock::ManualClock;
use m2m_core::config::Env;
use m2m_core::{
    BearerToken, M2mClientConfig, MachineKey, TokenSource, VerifierConfig, VerifyError,
};
use serde_json::json;

/// Rotates `machine_id`'s key at the mock as `m2m rotate` would, and returns the new key.
async fn rotate(mock: &ClerkMock, machine_id: &str, grace_secs: u64) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/machines/{machine_id}/secret_key/rotate",
            mock.api_url()
        ))
        .bearer_auth(mock.instance_secret_key())
        .json(&json!({ "previous_token_ttl": grace_secs }))
        .send()
        .await
        .expect("mock reachable")
        .json()
        .await
        .expect("json");
    answer["secret"].as_str().expect("a new key").to_owned()
}

/// Replaces the key file as `m2m rotate` does: a new file renamed over the old one.
fn write_key(path: &Path, key: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, format!("{key}\n")).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn key_file(dir: &tempfile::TempDir, key: &str) -> PathBuf {
    let path = dir.path().join("machine.key");
    write_key(&path, key);
    path
}

fn vars<'a>(pairs: &'a [(&'a str, String)]) -> Env<'a> {
    Env::from_fn(move |k| {
        pairs
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
}

#[tokio::test]
async fn the_token_source_mints_with_the_key_its_file_holds_after_a_rotation() {
    let mock = ClerkMock::start_demo().await;
    let bot = mock.machine_by_name("JobApplier.Bot").expect("applier");
    let dir = tempfile::tempdir().expect("dir");
    let path = key_file(&dir, &bot.secret_key);
    let settings = [
        ("CLERK_API_BASE_URL", mock.api_url()),
        ("CLERK_MACHINE_SECRET_KEY_FILE", path.display().to_string()),
    ];
    let config = M2mClientConfig::from_env(&vars(&settings), None).expect("settings");
    assert_eq!(
        config.machine_secret_key_file.as_deref(),
        Some(path.as_path())
    );
    let clock = ManualClock::new();
    let client = ClerkClient::new(mock.api_url()).expect("client");
    let source = config
        .token_source(&client, Arc::new(clock.clone()))
        .expect("source");
    let TokenSource::Minted(minted) = &source else {
        panic!("a minted source");
    };
    let first = minted.token().await.expect("first token");
    let creates = || mock.calls(Endpoint::CreateToken);
    assert_eq!(creates(), 1);

    // Rotated with no grace, the file replaced: the old key is refused at once, the source reads
    // the file on Clerk's 401 and mints again, once.
    let second_key = rotate(&mock, &bot.id, 0).await;
    write_key(&path, &second_key);
    assert!(minted.invalidate(&first));
    let second = minted.token().await.expect("minted with the new key");
    assert_ne!(second, first);
    assert_eq!(creates(), 3, "one refused mint, one retry");

    // The next rotation is noticed before any refusal: the file is compared every few seconds.
    let third_key = rotate(&mock, &bot.id, 0).await;
    write_key(&path, &third_key);
    clock.advance(MachineKey::CHECK_EVERY);
    assert!(minted.invalidate(&second));
    minted.token().await.expect("minted with the third key");
    assert_eq!(creates(), 4, "no refused call");

    // Rotated but the file not replaced: refused, the file holds the same key, no retry.
    rotate(&mock, &bot.id, 0).await;
    let current = minted.token().await.expect("cached");
    assert!(minted.invalidate(&current));
    clock.advance(MachineKey::FORCED_READ_EVERY);
    let err = minted
        .token()
        .await
        .expect_err("the key in the file is refused");
    assert_eq!(
        creates(),
        5,
        "exactly one call: a refusal with an unchanged file is final"
    );
    let shown = format!("{err} {err:?} {minted:?}");
    for key in [&bot.secret_key, &second_key, &third_key] {
        assert!(!shown.contains(key.as_str()), "{shown}");
    }
}

#[tokio::test]
async fn a_key_given_directly_is_not_followed() {
    let settings = [("CLERK_MACHINE_SECRET_KEY", "ak_direct_key_0001".to_owned())];
    let config = M2mClientConfig::from_env(&vars(&settings), None).expect("settings");
    assert_eq!(config.machine_secret_key_file, None);
    let verifier = VerifierConfig::from_env(&vars(&settings)).expect("settings");
    assert_eq!(verifier.machine_key_file, None);
}

#[tokio::test]
async fn the_verifier_verifies_with_the_key_its_file_holds_after_a_rotation() {
    let mock = ClerkMock::start_demo().await;
    let api = mock.machine_by_name("JobTracker.API").expect("api");
    let bot = mock.machine_by_name("JobApplier.Bot").expect("applier");
    let dir = tempfile::tempdir().expect("dir");
    let path = key_file(&dir, &api.secret_key);
    let settings = [
        ("CLERK_API_BASE_URL", mock.api_url()),
        ("CLERK_MACHINE_SECRET_KEY_FILE", path.display().to_string()),
        ("CLERK_MACHINE_ID", api.id.clone()),
    ];
    let config = VerifierConfig::from_env(&vars(&settings)).expect("settings");
    assert_eq!(config.machine_key_file.as_deref(), Some(path.as_path()));
    let clock = ManualClock::new();
    let client = ClerkClient::new(mock.api_url()).expect("client");
    let verifier = config.build(&client, Arc::new(clock.clone()));
    let mint = || {
        let token = mock.mint(&bot.id, &json!({ "seconds_until_expiration": 600 }))["token"]
            .as_str()
            .expect("token")
            .to_owned();
        BearerToken::new(token)
    };
    let verifies = || mock.calls(Endpoint::VerifyToken);
    verifier
        .verify_token(mint().expose())
        .await
        .expect("verified with the first key");
    assert_eq!(verifies(), 1);

    // The API's own key rotated with no grace and the file replaced: Clerk refuses the old key,
    // the verifier reads the file and asks again, once.
    let second = rotate(&mock, &api.id, 0).await;
    write_key(&path, &second);
    verifier
        .verify_token(mint().expose())
        .await
        .expect("verified with the new key");
    assert_eq!(verifies(), 3);

    // Rotated, file not replaced: every verification fails closed, one Clerk call each.
    rotate(&mock, &api.id, 0).await;
    clock.advance(MachineKey::FORCED_READ_EVERY);
    let err = verifier
        .verify_token(mint().expose())
        .await
        .expect_err("the key in the file is refused");
    assert!(matches!(err, VerifyError::Misconfigured(_)), "{err:?}");
    assert_eq!(verifies(), 4, "no retry when the file did not change");
    assert!(!format!("{err} {err:?}").contains(&second));
}

#[test]
fn the_builder_reads_a_key_file_and_follows_it() {
    let dir = tempfile::tempdir().expect("dir");
    let path = key_file(&dir, "ak_builder_key_0001");
    let config = VerifierConfig::builder()
        .machine_secret_key_file(&path)
        .build()
        .expect("settings");
    assert_eq!(config.machine_key_file.as_deref(), Some(path.as_path()));
    let from_env = VerifierConfig::from_env(&vars(&[(
        "CLERK_MACHINE_SECRET_KEY_FILE",
        path.display().to_string(),
    )]))
    .expect("settings");
    assert_eq!(from_env.machine_key_file, config.machine_key_file);

    // A key given directly wins, and is then not followed.
    let direct = VerifierConfig::builder()
        .machine_secret_key(secrecy::SecretString::from("ak_builder_key_0002"))
        .build()
        .expect("settings");
    assert_eq!(direct.machine_key_file, None);

    // A file that is missing or holds no machine key: refused, naming the variable, the key
    // never echoed.
    let missing = VerifierConfig::builder()
        .machine_secret_key_file(dir.path().join("gone.key"))
        .build()
        .expect_err("missing");
    assert_eq!(missing.var, "CLERK_MACHINE_SECRET_KEY_FILE");
    let wrong = key_file(&dir, "sk_test_instance_key_0001");
    let err = VerifierConfig::builder()
        .machine_secret_key_file(&wrong)
        .build()
        .expect_err("not ak_");
    assert_eq!(err.var, "CLERK_MACHINE_SECRET_KEY_FILE");
    assert!(!format!("{err} {err:?}").contains("sk_test_instance_key_0001"));
}
