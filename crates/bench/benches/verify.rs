//! Micro-benchmarks of the verification hot path (one core; criterion).
//! `cargo bench -p bench`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::{SessionMinter, raw_rsa_verifier};
use criterion::{Criterion, criterion_group, criterion_main};
use m2m_core::Verifier;
use m2m_core::VerifierConfig;
use m2m_core::clerk::ClerkClient;
use m2m_core::clock::ManualClock;
use m2m_core::dangerous::{bearer_token, classify};
use m2m_core::settings::{JwtCacheSettings, JwtPolicy, KeySource, OpaqueCacheSettings};

/// Distinct session tokens for the first-verification rows: each measured call sees a token the
/// verifier has not seen, and a fresh verifier (empty cache) is built, untimed, per pass.
const POOL: usize = 20_000;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mock, cfg, session, opaque, minter) = rt.block_on(async {
        let mock = clerk_mock::ClerkMock::start_demo().await;
        let api = mock.machine_by_name("JobTracker.API").expect("api");
        let cfg = VerifierConfig {
            api_base_url: mock.api_url(),
            machine_key_file: None,
            verify_key: Some(secrecy::SecretString::from(api.secret_key)),
            key_source: Some(KeySource::from_pem(&mock.public_key_pem()).expect("pem")),
            policy: JwtPolicy {
                authorized_parties: vec![mock.authorized_party()],
                ..JwtPolicy::default()
            },
            cache: OpaqueCacheSettings {
                ttl: Duration::from_secs(3600),
                ..Default::default()
            },
            machine_id: Some(api.id.clone()),
            jwks: Default::default(),
            jwt_cache: Default::default(),
        };
        let minter = SessionMinter::new(&mock, 3600);
        let session = minter.mint(usize::MAX);
        let applier = mock.machine_by_name("JobApplier.Bot").expect("m").id;
        let created = mock.mint(&applier, &serde_json::json!({}));
        let opaque = created["token"].as_str().expect("token").to_owned();
        (mock, cfg, session, opaque, minter)
    });
    let build = |cfg: &VerifierConfig| -> Verifier {
        cfg.build(
            &ClerkClient::new(cfg.api_base_url.clone()).expect("client"),
            Arc::new(ManualClock::new()),
        )
    };
    let verifier = build(&cfg);
    rt.block_on(async {
        verifier
            .verify_token(&opaque)
            .await
            .expect("warm the opaque cache");
        verifier
            .verify_token(&session)
            .await
            .expect("warm the JWT cache");
    });
    let uncached = build(&VerifierConfig {
        jwt_cache: JwtCacheSettings {
            max_entries: 0,
            ..Default::default()
        },
        ..cfg.clone()
    });

    // Minted only if a first-verification row runs (it takes a few seconds).
    let pool = std::sync::OnceLock::new();
    let pool = || pool.get_or_init(|| minter.mint_many(POOL));
    let (rt, build) = (&rt, &build);
    let (raw, message, signature) = raw_rsa_verifier(&mock, &session);
    c.bench_function("raw RSA-2048 verify (aws-lc-rs, RS256)", |b| {
        b.iter(|| raw.verify_sig(message.as_bytes(), &signature).is_ok())
    });
    // Timed calls only; a pass over the pool ends with a fresh verifier, built untimed.
    let first = |cfg: VerifierConfig| {
        move |b: &mut criterion::Bencher<'_>| {
            let pool = pool();
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut v = build(&cfg);
                let mut i = 0;
                for _ in 0..iters {
                    if i == pool.len() {
                        v = build(&cfg);
                        i = 0;
                    }
                    let t = Instant::now();
                    let ok = rt.block_on(v.verify_token(&pool[i])).is_ok();
                    spent += t.elapsed();
                    assert!(ok);
                    i += 1;
                }
                spent
            })
        }
    };
    c.bench_function(
        "verify session JWT, first time (RS256, local key; cache miss + insert)",
        first(cfg.clone()),
    );
    c.bench_function("verify session JWT, cache off (RS256, local key)", |b| {
        b.iter(|| rt.block_on(uncached.verify_token(&session)).expect("valid"))
    });
    c.bench_function("verify session JWT, repeat (cache hit)", |b| {
        b.iter(|| rt.block_on(verifier.verify_token(&session)).expect("valid"))
    });
    let header = format!("Bearer {session}");
    c.bench_function("bearer_token + classify (session JWT)", |b| {
        b.iter(|| classify(bearer_token(Some(header.as_bytes())).expect("ok")).is_ok())
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
