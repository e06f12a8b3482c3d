//! Micro-benchmarks of the verification hot path (one core; criterion).
//! `cargo bench -p bench`

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use m2m_core::clerk::ClerkClient;
use m2m_core::clock::ManualClock;
use m2m_core::dangerous::{bearer_token, classify};
use m2m_core::{JwtPolicy, KeySource, OpaqueCacheSettings, VerifierConfig};

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mock, verifier, session, opaque) = rt.block_on(async {
        let mock = clerk_mock::ClerkMock::start_demo().await;
        let api = mock.machine_by_name("JobTracker.API").expect("api");
        let cfg = VerifierConfig {
            api_base_url: mock.api_url(),
            verify_key: Some(secrecy::SecretString::from(api.secret_key)),
            key_source: Some(KeySource::from_pem(&mock.public_key_pem()).expect("pem")),
            policy: JwtPolicy {
                authorized_parties: vec![mock.authorized_party()],
                ..JwtPolicy::default()
            },
            cache: OpaqueCacheSettings {
                ttl: std::time::Duration::from_secs(3600),
                ..Default::default()
            },
            machine_id: Some(api.id.clone()),
            jwks: Default::default(),
        };
        let clock = ManualClock::new();
        let verifier = cfg.build(
            &ClerkClient::new(mock.api_url()).expect("client"),
            Arc::new(clock),
        );
        let user = mock.users()[0].id.clone();
        let session = mock.session_token_with(&user, |_, c| {
            c["exp"] = serde_json::json!(c["iat"].as_i64().unwrap_or(0) + 3600)
        });
        let applier = mock.machine_by_name("JobApplier.Bot").expect("m").id;
        let created = mock.mint(&applier, &serde_json::json!({}));
        let opaque = created["token"].as_str().expect("token").to_owned();
        verifier
            .verify_token(&opaque)
            .await
            .expect("warm the cache");
        (mock, verifier, session, opaque)
    });
    let header = format!("Bearer {session}");
    c.bench_function("bearer_token + classify (session JWT)", |b| {
        b.iter(|| classify(bearer_token(Some(header.as_bytes())).expect("ok")).is_ok())
    });
    c.bench_function("verify session JWT (RS256, local key)", |b| {
        b.iter(|| rt.block_on(verifier.verify_token(&session)).expect("valid"))
    });
    c.bench_function("verify opaque M2M token (cache hit)", |b| {
        b.iter(|| rt.block_on(verifier.verify_token(&opaque)).expect("valid"))
    });
    c.bench_function("reject malformed token", |b| {
        b.iter(|| rt.block_on(verifier.verify_token("mt_short")).is_err())
    });
    drop(mock);
}

criterion_group!(verify, benches);
criterion_main!(verify);
