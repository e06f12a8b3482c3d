//! The load benchmark behind docs/benchmarks.md; everything measured side by side in one run.
//! `cargo run --release -p bench --bin loadbench` (prints Markdown); `-- --help` lists the
//! sections, `-- --only jwt` runs one.
//!
//! `cargo run --release -p bench --bin loadbench -- --spray` measures verification under attack
//! instead (docs/verification.md, "Under attack"): Clerk calls per 100,000 random tokens, the
//! latency of known-key requests while the JWKS endpoint hangs, and the time to refuse a key
//! removed from the JWKS.

mod api;
mod attack;
mod jwt;
mod token_source;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use bench::{
    SessionMinter, cpu_timed, machine, percentile, proc_status_kib, process_cpu_time,
    raw_rsa_verifier,
};
use clerk_mock::{ClerkMock, Endpoint};
use m2m_core::MintedTokenSource;
use m2m_core::VerifierConfig;
use m2m_core::clerk::ClerkClient;
use m2m_core::clock::ManualClock;
use m2m_core::settings::MintSettings;
use m2m_core::settings::{JwtCacheSettings, JwtPolicy, KeySource, MissBudget, OpaqueCacheSettings};
use rand::Rng;
use serde_json::json;

const REQUESTS: usize = 10_000;
const CONCURRENCY: usize = 32;
/// Random tokens in `--spray`: an exact multiple of the clients.
const SPRAY: usize = 100_000;
const _: () = assert!(SPRAY.is_multiple_of(CONCURRENCY));

struct Api {
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_api(mock: &ClerkMock, ttl: u64, dir: &std::path::Path, name: &str) -> Api {
    start_api_with(mock, dir, name, |c| {
        c.verifier.m2m_verify_cache_ttl_seconds = ttl;
        if ttl == 0 {
            // Every request is a miss: the budget must allow the request rate, as
            // docs/verification.md says for TTL 0.
            c.verifier.m2m_verify_miss_burst = 1_000_000;
            c.verifier.m2m_verify_miss_per_second = 1_000_000;
        }
    })
    .await
}

async fn start_api_with(
    mock: &ClerkMock,
    dir: &std::path::Path,
    name: &str,
    edit: impl FnOnce(&mut jobtracker_api::Config),
) -> Api {
    let m = |n: &str| mock.machine_by_name(n).expect("machine");
    let database_url = format!("sqlite://{}/{name}.db?mode=rwc", dir.display());
    let mut config = jobtracker_api_testing::mock_config(mock, &database_url);
    edit(&mut config);
    let app = jobtracker_api::Server::build(&config)
        .await
        .expect("API starts");
    let base = format!("http://{}", app.local_addr());
    // The same JSON as /api/whoami returns for this machine, without authentication, behind
    // the same middleware.
    let fixed = json!({"kind": "machine", "machine_id": m("JobApplier.Bot").id, "token_id": "mt_00000000000000000000000000000000", "scopes": [m("JobTracker.API").id], "role": "job-applier"});
    let extra = axum::Router::new().route(
        "/bench/whoami-noauth",
        get(move || {
            let v = fixed.clone();
            async move { Json(v) }
        }),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_with(extra, async {
        let _ = rx.await;
    }));
    Api { base, _stop: tx }
}

struct Load {
    rps: f64,
    /// CPU time of the whole process (load generator, APIs, mock) per request.
    cpu_per_request: Duration,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

async fn load(http: &reqwest::Client, url: &str, token: Option<&str>) -> Load {
    let cpu0 = process_cpu_time();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|worker| {
            // Exactly REQUESTS in all: the first workers take the remainder.
            let per = REQUESTS / CONCURRENCY + usize::from(worker < REQUESTS % CONCURRENCY);
            let (http, url, token) = (http.clone(), url.to_owned(), token.map(str::to_owned));
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                let mut errors = 0;
                for _ in 0..per {
                    let t = Instant::now();
                    let mut req = http.get(&url);
                    if let Some(tok) = &token {
                        req = req.bearer_auth(tok);
                    }
                    match req.send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                        }
                        _ => errors += 1,
                    }
                    lat.push(t.elapsed());
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(REQUESTS);
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.expect("join");
        all.extend(lat);
        errors += e;
    }
    let wall = started.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu0);
    all.sort();
    Load {
        rps: all.len() as f64 / wall.as_secs_f64(),
        cpu_per_request: cpu / (all.len().max(1) as u32),
        p50: percentile(&all, 50.0),
        p99: percentile(&all, 99.0),
        errors,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn mint(mock: &ClerkMock, machine: &str) -> String {
    let id = mock.machine_by_name(machine).expect("machine").id;
    mock.mint(&id, &json!({}))["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn token_source_burst(source: &MintedTokenSource) -> (Duration, Duration) {
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                s.token().await.expect("token");
                t.elapsed()
            })
        })
        .collect();
    let mut waits = Vec::new();
    for t in tasks {
        waits.push(t.await.expect("join"));
    }
    waits.sort();
    (percentile(&waits, 50.0), percentile(&waits, 99.0))
}

/// Runs the benchmarks behind docs/benchmarks.md, side by side in one run, and prints Markdown.
#[derive(Debug, clap::Parser)]
#[command(
    name = "loadbench",
    about = "The load and verification benchmarks behind docs/benchmarks.md; prints Markdown",
    after_help = "Without --only, every section but `spray` runs, in the order listed (~8 min)."
)]
struct Args {
    /// Run one section only.
    #[arg(long, value_enum)]
    only: Option<Section>,
    /// Same as `--only spray`.
    #[arg(long, conflicts_with = "only")]
    spray: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    /// API throughput: no auth vs opaque-token cache hit vs session JWT vs verify-every-request.
    Api,
    /// One core: first JWT verification vs aws-lc-rs's raw RSA-2048 verify vs a cache hit.
    Jwt,
    /// 1,000 concurrent callers of one token source.
    TokenSource,
    /// A million malformed tokens, and unknown opaque tokens, with and without the cache.
    Hostile,
    /// RSS while 1,000,000 distinct valid JWTs are verified (minted with the mock's key).
    JwtMemory,
    /// Verification under attack: a token spray, a hanging JWKS endpoint, a key rotation.
    Spray,
}

#[tokio::main]
async fn main() {
    let args = <Args as clap::Parser>::parse();
    let sections = match (args.only, args.spray) {
        (Some(s), _) => vec![s],
        (None, true) => vec![Section::Spray],
        (None, false) => vec![
            Section::Api,
            Section::Jwt,
            Section::TokenSource,
            Section::Hostile,
            Section::JwtMemory,
        ],
    };
    if sections == [Section::Spray] {
        attack::spray().await;
        return;
    }
    println!(
        "# loadbench\n\nMachine: {}. Load generator, API and mock Clerk share the machine (and this process).\n",
        machine()
    );
    let mock = ClerkMock::start_demo().await;
    for section in sections {
        match section {
            Section::Api => api::api(&mock).await,
            Section::Jwt => jwt::jwt(&mock).await,
            Section::TokenSource => token_source::token_source(&mock).await,
            Section::Hostile => attack::hostile(&mock).await,
            Section::JwtMemory => jwt::jwt_memory(&mock).await,
            Section::Spray => attack::spray().await,
        }
    }
}

/// The verifier of the one-core sections: PEM key, default caches, the miss budget lifted.
fn pem_config(mock: &ClerkMock) -> VerifierConfig {
    let api = mock.machine_by_name("JobTracker.API").expect("api");
    VerifierConfig {
        api_base_url: mock.api_url(),
        machine_key_file: None,
        verify_key: Some(secrecy::SecretString::from(api.secret_key)),
        key_source: Some(KeySource::from_pem(&mock.public_key_pem()).expect("pem")),
        policy: JwtPolicy {
            authorized_parties: vec![mock.authorized_party()],
            ..JwtPolicy::default()
        },
        machine_id: Some(api.id),
        // The miss budget lifted, so the rows below measure the cache itself (every unknown token
        // reaches Clerk once); `--spray` measures the default budget.
        cache: OpaqueCacheSettings {
            budget: MissBudget {
                burst: 1_000_000,
                per_second: 1_000_000,
            },
            ..OpaqueCacheSettings::default()
        },
        jwks: Default::default(),
        jwt_cache: Default::default(),
    }
}

fn build(mock: &ClerkMock, cfg: &VerifierConfig) -> m2m_core::Verifier {
    let client = ClerkClient::new(mock.api_url()).expect("client");
    cfg.build(&client, Arc::new(ManualClock::new()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Distinct session tokens verified once each in the `jwt` section.
const FIRST_POOL: usize = 20_000;

/// Calls `f` for about `secs`; returns calls per CPU-second of this thread.
fn rate(secs: f64, mut f: impl FnMut()) -> f64 {
    let mut n = 0u64;
    let spent = cpu_timed(|| {
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < secs {
            for _ in 0..64 {
                f();
            }
            n += 64;
        }
    });
    n as f64 / spent.as_secs_f64()
}
