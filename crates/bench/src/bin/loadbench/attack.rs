//! Hostile input: malformed and unknown tokens, and verification under a spray.

use super::*;

pub(super) async fn hostile(mock: &ClerkMock) {
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
pub(super) async fn spray() {
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
