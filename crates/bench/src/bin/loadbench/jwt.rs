//! One core: first JWT verification vs the raw RSA verify vs a cache hit; RSS under a million
//! distinct valid JWTs.

use super::*;

pub(super) async fn jwt(mock: &ClerkMock) {
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

/// Distinct valid JWTs presented in the `jwt-memory` section.
const MEMORY_TOKENS: usize = 1_000_000;

pub(super) async fn jwt_memory(mock: &ClerkMock) {
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
