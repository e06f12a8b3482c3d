//! API throughput: no auth vs opaque-token cache hit vs session JWT vs verify-every-request.

use super::*;

pub(super) async fn api(mock: &ClerkMock) {
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
