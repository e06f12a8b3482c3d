//! The load benchmark behind docs/benchmarks.md; everything measured side by side in one run.
//! `cargo run --release -p bench --bin loadbench` (prints Markdown); `-- --help` lists the
//! sections, `-- --only jwt` runs one.
//!
//! `cargo run --release -p bench --bin loadbench -- --spray` measures verification under attack
//! instead (docs/verification.md, "Under attack"): Clerk calls per 100,000 random tokens, the
//! latency of known-key requests while the JWKS endpoint hangs, and the time to refuse a key
//! removed from the JWKS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use bench::{
    SessionMinter, cpu_timed, machine, percentile, proc_status_kib, process_cpu_time,
    raw_rsa_verifier,
};
use clerk_mock::{ClerkMock, Endpoint};
use m2m_core::clerk::ClerkClient;
use m2m_core::clock::ManualClock;
use m2m_core::{
    JwtCacheSettings, JwtPolicy, KeySource, MissBudget, OpaqueCacheSettings, VerifierConfig,
};
use m2m_core::{MintSettings, MintedTokenSource};
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
    let mut config = jobtracker_api::Config::for_mock(mock, &database_url);
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
        spray().await;
        return;
    }
    println!(
        "# loadbench\n\nMachine: {}. Load generator, API and mock Clerk share the machine (and this process).\n",
        machine()
    );
    let mock = ClerkMock::start_demo().await;
    for section in sections {
        match section {
            Section::Api => api(&mock).await,
            Section::Jwt => jwt(&mock).await,
            Section::TokenSource => token_source(&mock).await,
            Section::Hostile => hostile(&mock).await,
            Section::JwtMemory => jwt_memory(&mock).await,
            Section::Spray => spray().await,
        }
    }
}

/// The verifier of the one-core sections: PEM key, default caches, the miss budget lifted.
fn pem_config(mock: &ClerkMock) -> VerifierConfig {
    let api = mock.machine_by_name("JobTracker.API").expect("api");
    VerifierConfig {
        api_base_url: mock.api_url(),
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

async fn api(mock: &ClerkMock) {
    let dir = std::env::temp_dir().join(format!("loadbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cached = start_api(mock, 60, &dir, "cached").await;
    let uncached = start_api(mock, 0, &dir, "uncached").await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let token = mint(mock, "JobApplier.Bot");
    let session = mock.session_token_with(&mock.users()[0].id.clone(), |_, c| {
        c["exp"] = json!(c["iat"].as_i64().unwrap_or(0) + 3600)
    });

    // Warm-up: connections, JWKS, the verification caches.
    let _ = load(&http, &format!("{}/api/whoami", cached.base), Some(&token)).await;
    let _ = load(
        &http,
        &format!("{}/api/whoami", cached.base),
        Some(&session),
    )
    .await;
    let _ = load(&http, &format!("{}/bench/whoami-noauth", cached.base), None).await;

    println!("## API: authenticated GET on a cache hit vs no auth vs verify-every-request\n");
    println!(
        "{REQUESTS} requests per row, {CONCURRENCY} concurrent connections, keep-alive, same middleware stack.\n"
    );
    println!(
        "| scenario | req/s | CPU µs per request | p50 | p99 | Clerk verify calls per {REQUESTS} | errors |"
    );
    println!("|---|---|---|---|---|---|---|");
    let scenarios = [
        (
            "no auth (same handler output, `/bench/whoami-noauth`)",
            format!("{}/bench/whoami-noauth", cached.base),
            None,
            Duration::ZERO,
        ),
        (
            "opaque M2M token, cache hit (TTL 60 s, default)",
            format!("{}/api/whoami", cached.base),
            Some(token.clone()),
            Duration::ZERO,
        ),
        (
            "session JWT, JWT cache hit (default)",
            format!("{}/api/whoami", cached.base),
            Some(session.clone()),
            Duration::ZERO,
        ),
        (
            "opaque M2M token, `M2M_VERIFY_CACHE_TTL_SECONDS=0`, Clerk +20 ms",
            format!("{}/api/whoami", uncached.base),
            Some(token.clone()),
            Duration::from_millis(20),
        ),
    ];
    // Five interleaved rounds and their medians, so neither the order nor a noisy moment decides.
    let mut runs: Vec<Vec<(Load, u64)>> = scenarios.iter().map(|_| Vec::new()).collect();
    for _ in 0..5 {
        for (i, (_, url, tok, latency)) in scenarios.iter().enumerate() {
            mock.set_latency(*latency);
            let before = mock.calls(Endpoint::VerifyToken);
            let r = load(&http, url, tok.as_deref()).await;
            runs[i].push((r, mock.calls(Endpoint::VerifyToken) - before));
            // The in-process mock must not skew the memory figures with wiremock's request log.
            mock.compact().await;
        }
    }
    mock.set_latency(Duration::ZERO);
    let mut rows = Vec::new();
    for (i, (label, ..)) in scenarios.iter().enumerate() {
        let rps = median(runs[i].iter().map(|(r, _)| r.rps).collect());
        let p50 = median(runs[i].iter().map(|(r, _)| r.p50.as_secs_f64()).collect());
        let p99 = median(runs[i].iter().map(|(r, _)| r.p99.as_secs_f64()).collect());
        let cpu = median(
            runs[i]
                .iter()
                .map(|(r, _)| r.cpu_per_request.as_secs_f64() * 1e6)
                .collect(),
        );
        let calls = runs[i].iter().map(|(_, c)| *c).max().unwrap_or(0);
        let errors: usize = runs[i].iter().map(|(r, _)| r.errors).sum();
        println!(
            "| {label} | {rps:.0} | {cpu:.1} | {} | {} | {calls} | {errors} |",
            ms(Duration::from_secs_f64(p50)),
            ms(Duration::from_secs_f64(p99))
        );
        rows.push((rps, p50, cpu));
    }
    println!(
        "\nMedians of 5 interleaved rounds. Requests per CPU-second (whole process, so other jobs on the machine do not count): opaque cache hit vs no auth = {:.2}×, session JWT vs no auth = {:.2}×, session JWT vs opaque cache hit = {:.2}×.",
        rows[0].2 / rows[1].2,
        rows[0].2 / rows[2].2,
        rows[1].2 / rows[2].2,
    );
    println!(
        "Wall-clock ratios: opaque cache hit vs no auth = {:.2}× throughput, {:.2}× p50; session JWT vs no auth = {:.2}× throughput, {:.2}× p50; session JWT vs opaque cache hit = {:.2}× throughput; verify-every-request vs cache hit = {:.3}× throughput, p50 {:.1}× higher.\n",
        rows[1].0 / rows[0].0,
        rows[1].1 / rows[0].1,
        rows[2].0 / rows[0].0,
        rows[2].1 / rows[0].1,
        rows[2].0 / rows[1].0,
        rows[3].0 / rows[1].0,
        rows[3].1 / rows[1].1,
    );
    println!(
        "Process peak RSS after the API load (API ×2 + mock + load generator): {} MiB.\n",
        proc_status_kib("VmHWM") / 1024
    );
    drop((cached, uncached));
    let _ = std::fs::remove_dir_all(&dir);
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

async fn jwt(mock: &ClerkMock) {
    let minter = SessionMinter::new(mock, 3600);
    let pool = minter.mint_many(FIRST_POOL);
    let session = minter.mint(usize::MAX);
    let cfg = pem_config(mock);
    let off = VerifierConfig {
        jwt_cache: JwtCacheSettings {
            max_entries: 0,
            ..JwtCacheSettings::default()
        },
        ..cfg.clone()
    };
    let (raw, message, signature) = raw_rsa_verifier(mock, &session);
    let rt = tokio::runtime::Handle::current();
    // Sequential on this thread; `block_in_place` so the runtime's other work goes elsewhere.
    let rows = tokio::task::block_in_place(|| {
        let mut rows: [Vec<f64>; 5] = Default::default();
        for _ in 0..3 {
            rows[0].push(rate(1.0, || {
                assert!(raw.verify_sig(message.as_bytes(), &signature).is_ok())
            }));
            // Every token new to a fresh verifier (empty cache): verify, check, insert.
            let v = build(mock, &cfg);
            let spent = cpu_timed(|| {
                for t in &pool {
                    rt.block_on(v.verify_token(t)).expect("valid");
                }
            });
            rows[1].push(pool.len() as f64 / spent.as_secs_f64());
            let v = build(mock, &off);
            let spent = cpu_timed(|| {
                for t in &pool {
                    rt.block_on(v.verify_token(t)).expect("valid");
                }
            });
            rows[4].push(pool.len() as f64 / spent.as_secs_f64());
            rows[2].push(rate(1.0, || {
                rt.block_on(v.verify_token(&session)).expect("valid");
            }));
            let v = build(mock, &cfg);
            rt.block_on(v.verify_token(&session)).expect("valid");
            rows[3].push(rate(1.0, || {
                rt.block_on(v.verify_token(&session)).expect("valid");
            }));
        }
        rows.map(median)
    });
    let raw_rate = rows[0];
    println!(
        "## JWT verification, one core\n\nSession JWTs (RS256, RSA-2048, key from `CLERK_JWT_KEY`), sequential on one thread; per CPU-second of that thread (`/proc/thread-self/schedstat`: time preempted by other work on the machine does not count); medians of 3 interleaved rounds. \"First\" verifies {FIRST_POOL} distinct tokens on a fresh verifier (cache miss: signature, claims, insert).\n"
    );
    println!("| operation | per second | µs each | vs raw RSA verify |\n|---|---|---|---|");
    for (label, r) in [
        (
            "raw RSA-2048 verify, aws-lc-rs (`ParsedPublicKey::verify_sig`)",
            rows[0],
        ),
        ("first verification (cache miss + insert)", rows[1]),
        ("first verification, JWT cache off", rows[4]),
        ("the same token again and again, JWT cache off", rows[2]),
        ("repeat verification (cache hit)", rows[3]),
    ] {
        println!(
            "| {label} | {r:.0} | {:.2} | {:.2}× |",
            1e6 / r,
            r / raw_rate
        );
    }
    println!();
}

async fn token_source(mock: &ClerkMock) {
    let clock = ManualClock::new();
    let client = ClerkClient::new(mock.api_url()).expect("client");
    mock.set_latency(Duration::from_millis(20));
    let key = secrecy::SecretString::from(
        mock.machine_by_name("JobApplier.Bot")
            .expect("m")
            .secret_key,
    );
    let source = MintedTokenSource::new(
        client.clone(),
        key,
        MintSettings::default(),
        Arc::new(clock.clone()),
    );
    let before = mock.calls(Endpoint::CreateToken);
    let (cold50, cold99) = token_source_burst(&source).await;
    let cold_calls = mock.calls(Endpoint::CreateToken) - before;
    clock.advance(Duration::from_secs(3301));
    let before = mock.calls(Endpoint::CreateToken);
    let (exp50, exp99) = token_source_burst(&source).await;
    let exp_calls = mock.calls(Endpoint::CreateToken) - before;
    let (_, warm99) = token_source_burst(&source).await;
    mock.set_latency(Duration::ZERO);
    println!("## Token source: 1,000 concurrent callers (Clerk create +20 ms)\n");
    println!("| moment | create calls | p50 wait | p99 wait |\n|---|---|---|---|");
    println!(
        "| cold start | {cold_calls} | {} | {} |",
        ms(cold50),
        ms(cold99)
    );
    println!(
        "| at expiry − buffer | {exp_calls} | {} | {} |",
        ms(exp50),
        ms(exp99)
    );
    println!("| cached (no refresh due) | 0 | — | {} |\n", ms(warm99));
}

async fn hostile(mock: &ClerkMock) {
    let pem_cfg = pem_config(mock);
    let verifier = build(mock, &pem_cfg);
    // A million distinct bearer tokens.
    let before_rss = proc_status_kib("VmRSS");
    let before_calls = mock.calls(Endpoint::VerifyToken) + mock.calls(Endpoint::Jwks);
    let mut rng = rand::rng();
    let started = Instant::now();
    for i in 0..1_000_000u32 {
        let junk: String = (0..rng.random_range(8..60))
            .map(|_| rng.random_range(b'!'..=b'~') as char)
            .collect();
        let token = match i % 4 {
            0 => junk,
            1 => format!("mt_{}", &junk[..junk.len().min(10)]),
            2 => format!("eyJ{junk}.eyJ{junk}"),
            _ => format!("ak_{junk}"),
        };
        let _ = verifier.verify_token(&token).await;
    }
    let malformed_time = started.elapsed();
    let malformed_calls =
        mock.calls(Endpoint::VerifyToken) + mock.calls(Endpoint::Jwks) - before_calls;
    let after_malformed = proc_status_kib("VmRSS");
    // Unknown but well-formed tokens do reach Clerk (once each, then negative-cached). Measured
    // with the cache off first, so the cache's own share of the memory is visible.
    let unknown = |n: usize| -> Vec<String> {
        let mut rng = rand::rng();
        (0..n)
            .map(|_| {
                format!(
                    "mt_{}",
                    (0..32)
                        .map(|_| rng.random_range(b'A'..=b'Z') as char)
                        .collect::<String>()
                )
            })
            .collect()
    };
    let no_cache = build(
        mock,
        &VerifierConfig {
            // The lifted budget kept: every unknown token reaches Clerk once.
            cache: OpaqueCacheSettings {
                ttl: Duration::ZERO,
                ..pem_cfg.cache.clone()
            },
            ..pem_cfg.clone()
        },
    );
    mock.compact().await;
    let rss0 = proc_status_kib("VmRSS");
    let calls0 = mock.calls(Endpoint::VerifyToken);
    for (i, t) in unknown(20_000).into_iter().enumerate() {
        let _ = no_cache.verify_token(&t).await;
        if i % 1000 == 0 {
            mock.compact().await;
        }
    }
    let rss_uncached = proc_status_kib("VmRSS") as i64 - rss0 as i64;
    let uncached_calls = mock.calls(Endpoint::VerifyToken) - calls0;
    let before_calls = mock.calls(Endpoint::VerifyToken);
    let rss1 = proc_status_kib("VmRSS");
    for (i, t) in unknown(20_000).into_iter().enumerate() {
        let _ = verifier.verify_token(&t).await;
        if i % 1000 == 0 {
            mock.compact().await;
        }
    }
    let unknown_calls = mock.calls(Endpoint::VerifyToken) - before_calls;
    let rss_cached = proc_status_kib("VmRSS") as i64 - rss1 as i64;
    println!("## A million distinct bearer tokens\n");
    println!("| input | tokens | Clerk calls | RSS change | time |\n|---|---|---|---|---|");
    println!(
        "| malformed (random junk, short `mt_`, broken JWTs, `ak_…`) | 1,000,000 | {malformed_calls} | {:+} KiB | {:.1} s |",
        after_malformed as i64 - before_rss as i64,
        malformed_time.as_secs_f64()
    );
    println!(
        "| well-formed unknown `mt_` tokens, verification cache off | 20,000 | {uncached_calls} | {rss_uncached:+} KiB | — |"
    );
    println!(
        "| well-formed unknown `mt_` tokens, cache on (negative-cached) | 20,000 | {unknown_calls} | {rss_cached:+} KiB | — |"
    );
    println!(
        "\nThe verification cache holds at most 100,000 entries (`OpaqueCacheSettings::max_entries`), so its memory is bounded whatever the input; malformed tokens are never cached and never reach Clerk.\n"
    );
}

/// Distinct valid JWTs presented in the `jwt-memory` section.
const MEMORY_TOKENS: usize = 1_000_000;

async fn jwt_memory(mock: &ClerkMock) {
    let minter = SessionMinter::new(mock, 3600);
    let cfg = pem_config(mock);
    let verifier = build(mock, &cfg);
    // Minted on every core while this task verifies, through a short queue: the tokens
    // themselves are never all in memory.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4096);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let producers: Vec<_> = (0..threads)
        .map(|t| {
            let (tx, minter) = (tx.clone(), minter.clone());
            std::thread::spawn(move || {
                for i in (t..MEMORY_TOKENS).step_by(threads) {
                    if tx.blocking_send(minter.mint(i)).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let base = proc_status_kib("VmRSS");
    let hwm0 = proc_status_kib("VmHWM");
    let started = Instant::now();
    let mut n = 0usize;
    let mut peak = base;
    let mut checkpoints = Vec::new();
    while let Some(t) = rx.recv().await {
        verifier.verify_token(&t).await.expect("valid");
        n += 1;
        if n.is_multiple_of(10_000) {
            peak = peak.max(proc_status_kib("VmRSS"));
        }
        if [100_000, 250_000, 500_000, MEMORY_TOKENS].contains(&n) {
            let cache = verifier.jwt_cache().expect("cache on");
            checkpoints.push((
                n,
                proc_status_kib("VmRSS"),
                cache.entry_count(),
                cache.weighted_size(),
            ));
        }
    }
    for p in producers {
        p.join().expect("producer");
    }
    let elapsed = started.elapsed();
    let settings = JwtCacheSettings::default();
    println!(
        "## RSS with {MEMORY_TOKENS} distinct valid session JWTs\n\nEach token new (distinct `jti`), minted with the mock's key on {threads} threads while one task verifies them; default cache (`CLERK_JWT_CACHE_MAX_ENTRIES={}`, `CLERK_JWT_CACHE_MAX_MIB={}`). RSS before: {} MiB.\n",
        settings.max_entries,
        settings.max_bytes >> 20,
        base / 1024
    );
    println!(
        "| tokens presented | RSS change | cache entries | cache estimate |\n|---|---|---|---|"
    );
    for (n, rss, entries, bytes) in &checkpoints {
        println!(
            "| {n} | {:+.1} MiB | {entries} | {:.1} MiB |",
            (*rss as f64 - base as f64) / 1024.0,
            *bytes as f64 / 1048576.0
        );
    }
    println!(
        "\nPeak RSS growth during the section (sampled every 10,000 tokens): {:+.1} MiB; process VmHWM {} MiB (before the section: {} MiB). {n} tokens in {:.0} s (minting is the bottleneck).\n",
        (peak as f64 - base as f64) / 1024.0,
        proc_status_kib("VmHWM") / 1024,
        hwm0 / 1024,
        elapsed.as_secs_f64()
    );
}

fn random_opaque() -> String {
    let mut rng = rand::rng();
    let tail: String = (0..32)
        .map(|_| rng.random_range(b'A'..=b'Z') as char)
        .collect();
    format!("mt_{tail}")
}

/// `GET /api/whoami` with `token`: status and latency.
async fn whoami(http: &reqwest::Client, base: &str, token: &str) -> (u16, Duration) {
    let t = Instant::now();
    let status = match http
        .get(format!("{base}/api/whoami"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            s
        }
        Err(_) => 0,
    };
    (status, t.elapsed())
}

/// Verification under attack, outage and key rotation (issue #19).
async fn spray() {
    let dir = std::env::temp_dir().join(format!("loadbench-spray-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    println!(
        "# loadbench --spray\n\nMachine: {}. Load generator, API and mock Clerk share the machine (and this process). Default settings unless stated.\n",
        machine()
    );

    // 1. 100,000 random opaque tokens against the default miss budget (burst 50, 10/s).
    let mock = ClerkMock::start_demo().await;
    let api = start_api_with(&mock, &dir, "spray", |_| {}).await;
    let valid = mint(&mock, "JobApplier.Bot");
    assert_eq!(whoami(&http, &api.base, &valid).await.0, 200);
    let before = mock.calls(Endpoint::VerifyToken);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let per = SPRAY / CONCURRENCY;
            let (http, base) = (http.clone(), api.base.clone());
            tokio::spawn(async move {
                let mut counts = [0usize; 3]; // 401, 503, other
                for _ in 0..per {
                    match whoami(&http, &base, &random_opaque()).await.0 {
                        401 => counts[0] += 1,
                        503 => counts[1] += 1,
                        _ => counts[2] += 1,
                    }
                }
                counts
            })
        })
        .collect();
    let mut counts = [0usize; 3];
    for t in tasks {
        let c = t.await.expect("join");
        for i in 0..3 {
            counts[i] += c[i];
        }
    }
    let elapsed = started.elapsed();
    let spent = mock.calls(Endpoint::VerifyToken) - before;
    let calls_before_valid = mock.calls(Endpoint::VerifyToken);
    let valid_status = whoami(&http, &api.base, &valid).await.0;
    let valid_calls = mock.calls(Endpoint::VerifyToken) - calls_before_valid;
    println!("## Clerk calls per 100,000 random opaque tokens\n");
    println!(
        "| random tokens | time | Clerk verify calls | budget (50 + 10/s × time) | 401 | 503 | other | valid cached token afterwards |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {SPRAY} | {:.1} s | **{spent}** | {:.0} | {} | {} | {} | {valid_status}, {valid_calls} Clerk calls |\n",
        elapsed.as_secs_f64(),
        50.0 + 10.0 * elapsed.as_secs_f64(),
        counts[0],
        counts[1],
        counts[2],
    );
    drop(api);
    drop(mock);

    // 2. Known-key requests while the JWKS endpoint hangs (CLERK_JWKS_CACHE_TTL_SECONDS=2).
    let mock = ClerkMock::start_demo().await;
    let api = start_api_with(&mock, &dir, "hang", |c| {
        c.verifier.clerk_jwks_cache_ttl_seconds = 2
    })
    .await;
    let session = mock.session_token_with(&mock.users()[0].id.clone(), |_, c| {
        c["exp"] = json!(c["iat"].as_i64().unwrap_or(0) + 3600)
    });
    let measure = |secs: u64| {
        let (http, base, session) = (http.clone(), api.base.clone(), session.clone());
        async move {
            let until = Instant::now() + Duration::from_secs(secs);
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (http, base, session) = (http.clone(), base.clone(), session.clone());
                    tokio::spawn(async move {
                        let mut out = Vec::new();
                        while Instant::now() < until {
                            out.push(whoami(&http, &base, &session).await);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        out
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.expect("join"));
            }
            let ok = all.iter().filter(|(s, _)| *s == 200).count();
            let mut lat: Vec<Duration> = all.iter().map(|(_, d)| *d).collect();
            lat.sort();
            (all.len(), ok, lat)
        }
    };
    let (n0, ok0, lat0) = measure(5).await;
    mock.inject(
        Some(Endpoint::Jwks),
        clerk_mock::Fault::Delay(Duration::from_secs(3600)),
        1_000_000,
    );
    tokio::time::sleep(Duration::from_secs(2)).await; // the set goes stale
    let (n1, ok1, lat1) = measure(20).await;
    println!(
        "## Known-key JWT requests while the JWKS endpoint hangs\n\n`CLERK_JWKS_CACHE_TTL_SECONDS=2`; 8 clients, session JWT on `GET /api/whoami`.\n"
    );
    println!("| JWKS endpoint | requests | 200 | p50 | p99 | max |\n|---|---|---|---|---|---|");
    for (label, n, ok, lat) in [
        ("answering (5 s)", n0, ok0, &lat0),
        ("hanging, set stale (20 s)", n1, ok1, &lat1),
    ] {
        println!(
            "| {label} | {n} | {ok} | {} | {} | {} |",
            ms(percentile(lat, 50.0)),
            ms(percentile(lat, 99.0)),
            ms(*lat.last().unwrap_or(&Duration::ZERO))
        );
    }
    println!();
    drop(api);
    drop(mock);

    // 3. Time from removing a key at Clerk to its refusal (CLERK_JWKS_CACHE_TTL_SECONDS=2).
    let mock = ClerkMock::start_demo().await;
    let api = start_api_with(&mock, &dir, "rotate", |c| {
        c.verifier.clerk_jwks_cache_ttl_seconds = 2
    })
    .await;
    let session = mock.session_token_with(&mock.users()[0].id.clone(), |_, c| {
        c["exp"] = json!(c["iat"].as_i64().unwrap_or(0) + 3600)
    });
    let other = clerk_mock::SigningKey::generate().jwk("ins_rotated_key");
    let mut times = Vec::new();
    for _ in 0..10 {
        mock.set_jwks_keys(None);
        while whoami(&http, &api.base, &session).await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A random moment within the refresh cycle.
        let pause = rand::rng().random_range(0..2000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        mock.set_jwks_keys(Some(vec![other.clone()]));
        let t0 = Instant::now();
        while whoami(&http, &api.base, &session).await.0 != 401 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        times.push(t0.elapsed());
    }
    times.sort();
    println!(
        "## Time to refuse a key removed from the JWKS\n\n`CLERK_JWKS_CACHE_TTL_SECONDS=2`; the key is removed at a random moment, then one request every 10 ms until the first 401; 10 rotations.\n"
    );
    println!(
        "| median | max |\n|---|---|\n| {} | {} |\n",
        ms(percentile(&times, 50.0)),
        ms(*times.last().unwrap_or(&Duration::ZERO))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
