//! The floor benchmark (docs/benchmarks.md, "The request path against the floor"): in one run,
//! three servers side by side, each its own process so its CPU time can be read from
//! `/proc`:
//!
//! - **floor**: a bare axum server (same axum and tokio) whose `GET /api/whoami` reads the
//!   `Authorization` header and answers a small JSON body: the least this stack can do;
//! - **api**: the real jobtracker-api with production defaults (request ids, tracing at `info`
//!   with JSON logs, metrics), configured from the environment as its `main` is;
//! - **node**: when `node` and `crates/bench/node-peer/node_modules` are there, the Node peer at
//!   its best (`node:cluster`, one worker per core, a 60 s verdict cache around
//!   `@clerk/backend`'s `authenticateRequest`).
//!
//! All trust the same in-process clerk-mock. A load generator in this process (its own threads,
//! `--threads`) drives each with the same requests; the table gives req/s, p50/p99 and the
//! server's CPU µs per request, and each server's CPU per request over the floor's.
//!
//! ```sh
//! npm install --prefix crates/bench/node-peer   # once, for the Node peer (optional)
//! cargo run --release -p bench --bin floorbench
//! ```

mod load;
mod mix;
mod servers;

use std::time::Duration;

use bench::{SessionMinter, machine};
use clerk_mock::ClerkMock;
use serde_json::json;

use load::{Outcome, Tokens};
use servers::{Kind, Server};

/// The floor benchmark; see docs/benchmarks.md.
#[derive(Debug, clap::Parser)]
#[command(
    name = "floorbench",
    about = "jobtracker-api against a bare axum server (the floor) and the Node peer, side by side; prints Markdown"
)]
struct Args {
    /// Seconds of load per server and scenario in each round.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Rounds; each reports its own ratios, the table gives medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Threads of the load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Distinct session JWTs sent to each server per round in the "first" scenario (each is
    /// verified once; the floor, which verifies nothing, cycles through them for the whole
    /// run).
    #[arg(long, default_value_t = 4000)]
    first_tokens: usize,
    /// Run these scenarios only (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Which>,
    /// Leave the Node peer out even when it is installed.
    #[arg(long)]
    no_node: bool,
    /// Leave out the API with OpenTelemetry export on (to floorbench's own OTLP sink).
    #[arg(long)]
    no_otel: bool,
    /// Fail (exit 1) when the best round's cached-opaque CPU ratio over the floor is above this
    /// (the CI guard).
    #[arg(long)]
    max_opaque_ratio: Option<f64>,
    /// The mix: users, each with a session of its own.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    users: u32,
    /// The mix: seconds a session JWT lives (`exp` − `iat`); each user gets a new one this often,
    /// in simulated time.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(10..=3600))]
    token_life: u32,
    /// The mix: exponent of the Zipf distribution of requests over users.
    #[arg(long, default_value_t = 1.1)]
    zipf: f64,
    /// The mix: share of requests from bots with M2M tokens (0–1).
    #[arg(long, default_value_t = 0.10)]
    bot_share: f64,
    /// The mix: bot instances, each with its own token (half opaque, half JWT).
    #[arg(long, default_value_t = 8)]
    bots: u32,
    /// The mix: requests per simulated second, users and bots together. Simulated time
    /// advances with the request count, not the wall clock.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    sim_rate: u32,
    /// The mix: simulated seconds measured per round, after a lead-in of one token life.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    mix_seconds: u32,
    /// Internal: serve as one of the servers (`floor` or `api`) instead.
    #[arg(long, hide = true)]
    serve: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    /// The production-shaped mix: users with session JWTs renewed every token life, Zipf
    /// activity, bots with M2M tokens (`--users`, `--token-life`, `--zipf`, `--bot-share`,
    /// `--sim-rate`).
    Mix,
    /// `GET /healthz`, no `Authorization`.
    NoAuth,
    /// `GET /api/whoami`, an opaque M2M token already in the verification cache.
    Opaque,
    /// `GET /api/whoami`, a session JWT already verified (the JWT cache).
    Session,
    /// `GET /api/whoami`, a new session JWT on every request.
    SessionFirst,
    /// `GET /api/whoami`, an M2M token in JWT format, already verified.
    M2mJwt,
}

/// One kind of request, sent to every server.
struct Scenario {
    which: Which,
    label: &'static str,
    /// Path on the floor and the others.
    path: &'static str,
    tokens: Tokens,
    /// A token pool spent once per server and round (first verifications).
    first: bool,
}

fn main() -> std::process::ExitCode {
    let args = <Args as clap::Parser>::parse();
    if let Some(kind) = &args.serve {
        return servers::serve(kind);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(args))
}

async fn run(args: Args) -> std::process::ExitCode {
    let mock = ClerkMock::start_demo().await;
    let dir = std::env::temp_dir().join(format!("floorbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let (otlp, sink) = servers::otlp_sink::start();
    let mut servers = vec![
        Server::start(Kind::Floor, &mock, &dir, None).await,
        Server::start(Kind::Api, &mock, &dir, None).await,
    ];
    if !args.no_otel {
        servers.push(Server::start(Kind::ApiTraced, &mock, &dir, Some(otlp)).await);
    }
    if args.no_node {
        eprintln!("floorbench: the Node peer is left out (--no-node)");
    } else {
        match servers::node_available() {
            Ok(()) => servers.push(Server::start(Kind::Node, &mock, &dir, None).await),
            Err(why) => eprintln!("floorbench: Node peer SKIPPED: {why}"),
        }
    }

    let applier = mock.machine_by_name("JobApplier.Bot").expect("machine").id;
    let opaque = mock.mint(&applier, &json!({}))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let m2m_jwt = mock.mint(&applier, &json!({"token_format": "jwt"}))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let minter = SessionMinter::new(&mock, 3600);
    let session = minter.mint(usize::MAX);
    let scenarios = [
        Scenario {
            which: Which::NoAuth,
            label: "no auth (`GET /healthz`)",
            path: "/healthz",
            tokens: Tokens::None,
            first: false,
        },
        Scenario {
            which: Which::Opaque,
            label: "opaque M2M token, cached",
            path: "/api/whoami",
            tokens: Tokens::One(opaque),
            first: false,
        },
        Scenario {
            which: Which::Session,
            label: "session JWT, repeat",
            path: "/api/whoami",
            tokens: Tokens::One(session),
            first: false,
        },
        Scenario {
            which: Which::SessionFirst,
            label: "session JWT, first (each token new)",
            path: "/api/whoami",
            tokens: Tokens::None,
            first: true,
        },
        Scenario {
            which: Which::M2mJwt,
            label: "JWT M2M token, repeat",
            path: "/api/whoami",
            tokens: Tokens::One(m2m_jwt),
            first: false,
        },
    ];
    // The floor verifies nothing, so it reuses one pool; the others get a fresh one each round.
    let scenarios: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.contains(&s.which))
        .collect();
    let first_pools = if scenarios.iter().any(|s| s.first) {
        (servers.len() - 1) * args.rounds + 1
    } else {
        0
    };
    eprintln!(
        "floorbench: minting {} session JWTs for the \"first\" rows",
        first_pools * args.first_tokens
    );
    let mut pools = tokio::task::spawn_blocking({
        let (minter, n) = (minter.clone(), first_pools * args.first_tokens);
        move || minter.mint_many(n)
    })
    .await
    .expect("minting");
    let floor_pool = pools.split_off(pools.len().saturating_sub(args.first_tokens));
    let mut next_pool = || Tokens::Each(pools.split_off(pools.len() - args.first_tokens));

    let settings = load::Settings {
        connections: args.connections,
        duration: Duration::from_secs_f64(args.seconds),
    };
    // Warm-up: connections, JWKS, the verification caches, the JIT.
    let warm = load::Settings {
        duration: Duration::from_secs_f64(args.seconds.min(2.0)),
        ..settings
    };
    for s in scenarios.iter().filter(|s| !s.first) {
        for server in &servers {
            let o = load::run(server.addr, s.path, &s.tokens, &warm, server).await;
            if o.errors > 0 || o.requests == 0 {
                eprintln!(
                    "floorbench: {} on {}: {} errors in {} requests during warm-up",
                    s.label,
                    server.kind.name(),
                    o.errors,
                    o.requests
                );
            }
        }
    }

    // The production mix first: each round one stream, each server in turn, minted for it.
    let run_mix = args.only.is_empty() || args.only.contains(&Which::Mix);
    let mix_settings = mix::MixSettings {
        users: args.users,
        token_life: args.token_life,
        zipf: args.zipf,
        bot_share: args.bot_share,
        sim_rate: args.sim_rate,
        bots: args.bots,
        seconds: args.mix_seconds,
    };
    // mix_results[server] = one (outcome, cache counts, cut short) per round.
    let mut mix_results: Vec<Vec<MixRun>> = servers.iter().map(|_| Vec::new()).collect();
    let mut plans = Vec::new();
    if run_mix {
        let http = reqwest::Client::new();
        let mut run_no = 0;
        for round in 0..args.rounds {
            let plan = mix::Plan::new(&mix_settings, round);
            for (j, server) in servers.iter().enumerate() {
                run_no += 1;
                eprintln!(
                    "floorbench: mix round {} of {}, {}: minting",
                    round + 1,
                    args.rounds,
                    server.kind.name()
                );
                let (tokens, expires) = tokio::task::block_in_place(|| {
                    plan.mint(&mix_settings, &mock, &minter, run_no)
                });
                // Until shortly before the tokens expire, at most.
                let left = || load::Settings {
                    connections: args.connections,
                    duration: expires
                        .duration_since(std::time::SystemTime::now())
                        .unwrap_or_default()
                        .saturating_sub(Duration::from_secs(3)),
                };
                let lead_in = Tokens::Stream {
                    tokens: tokens.clone(),
                    order: plan.lead_in().clone(),
                };
                let o = load::run(server.addr, "/api/whoami", &lead_in, &left(), server).await;
                if o.errors > 0 {
                    eprintln!(
                        "floorbench: mix lead-in on {}: {} errors in {} requests",
                        server.kind.name(),
                        o.errors,
                        o.requests
                    );
                }
                let before = server.cache_counts(&http).await;
                let measured = Tokens::Stream {
                    tokens,
                    order: plan.measured().clone(),
                };
                let o = load::run(server.addr, "/api/whoami", &measured, &left(), server).await;
                let after = server.cache_counts(&http).await;
                let cut = o.requests < plan.measured().len();
                if cut {
                    eprintln!(
                        "floorbench: mix on {}: cut short at {} of {} requests (its tokens expire)",
                        server.kind.name(),
                        o.requests,
                        plan.measured().len()
                    );
                }
                mix_results[j].push(MixRun {
                    outcome: o,
                    counts: before.zip(after).map(|(b, a)| a.since(b)),
                    cut,
                });
            }
            plans.push(plan);
        }
    }

    // results[scenario][server] = one Outcome per round; the servers interleaved in each
    // round, so the ratios compare moments seconds apart.
    let mut results: Vec<Vec<Vec<Outcome>>> = scenarios
        .iter()
        .map(|_| servers.iter().map(|_| Vec::new()).collect())
        .collect();
    for round in 0..args.rounds {
        eprintln!("floorbench: round {} of {}", round + 1, args.rounds);
        for (i, s) in scenarios.iter().enumerate() {
            for (j, server) in servers.iter().enumerate() {
                // The floor verifies nothing: it gets the whole run, the tokens in turn.
                let tokens = match (s.first, server.kind) {
                    (true, Kind::Floor) => Tokens::Cycle(floor_pool.clone()),
                    (true, _) => next_pool(),
                    (false, _) => s.tokens.clone(),
                };
                let o = load::run(server.addr, s.path, &tokens, &settings, server).await;
                results[i][j].push(o);
            }
        }
    }

    println!(
        "# floorbench\n\nMachine: {}; load average {}. Load: {} connections, {} load-generator threads, {} rounds, servers interleaved in each; medians. CPU is the server process's own (`/proc/<pid>/task/*/schedstat`; Node: the primary and its workers).\n",
        machine(),
        load_average(),
        args.connections,
        args.threads,
        args.rounds
    );
    if run_mix {
        print_mix(&mix_settings, &plans, &servers, &mix_results);
    }
    if scenarios.is_empty() {
        drop(servers);
        let _ = std::fs::remove_dir_all(&dir);
        return std::process::ExitCode::SUCCESS;
    }
    println!(
        "## Each path alone\n\n{} s per server and scenario (the \"first\" rows: {} distinct tokens each).\n",
        args.seconds, args.first_tokens
    );
    println!(
        "| scenario | server | req/s | p50 | p99 | CPU µs per request | × floor CPU | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut opaque_ratios = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        for (j, server) in servers.iter().enumerate() {
            let runs = &results[i][j];
            let ratios: Vec<f64> = (0..args.rounds)
                .map(|r| runs[r].cpu_per_request_us() / results[i][0][r].cpu_per_request_us())
                .collect();
            if s.which == Which::Opaque && server.kind == Kind::Api {
                opaque_ratios = ratios.clone();
            }
            let ratio = if server.kind == Kind::Floor {
                "1.00".to_owned()
            } else {
                format!(
                    "**{:.2}** ({})",
                    median(ratios.clone()),
                    ratios
                        .iter()
                        .map(|r| format!("{r:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            println!(
                "| {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.1} | {ratio} | {} |",
                s.label,
                server.kind.name(),
                median(runs.iter().map(|o| o.rps()).collect()),
                median(runs.iter().map(|o| o.p50_ms()).collect()),
                median(runs.iter().map(|o| o.p99_ms()).collect()),
                median(runs.iter().map(Outcome::cpu_per_request_us).collect()),
                runs.iter().map(|o| o.errors).sum::<usize>(),
            );
        }
    }
    if let Some(node) = servers.iter().position(|s| s.kind == Kind::Node) {
        let api = servers
            .iter()
            .position(|s| s.kind == Kind::Api)
            .expect("api");
        println!("\nNode peer's CPU per request over the API's (same round, medians):\n");
        println!("| scenario | node ÷ api |\n|---|---|");
        for (i, s) in scenarios.iter().enumerate() {
            let r = median(
                (0..args.rounds)
                    .map(|r| {
                        results[i][node][r].cpu_per_request_us()
                            / results[i][api][r].cpu_per_request_us()
                    })
                    .collect(),
            );
            println!("| {} | **{r:.2}×** |", s.label);
        }
    }
    if !args.no_otel {
        println!(
            "\nThe traced API exported {} spans to floorbench's OTLP/gRPC sink (every request a sampled root span: the load sends no `traceparent`).",
            sink.spans()
        );
    }
    println!();
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);

    if let Some(max) = args.max_opaque_ratio {
        if opaque_ratios.is_empty() {
            eprintln!(
                "floorbench: FAILED: --max-opaque-ratio needs the opaque scenario (and jobtracker-api)"
            );
            return std::process::ExitCode::FAILURE;
        }
        let best = opaque_ratios.iter().copied().fold(f64::INFINITY, f64::min);
        if best.is_nan() || best > max {
            eprintln!(
                "floorbench: FAILED: the cached-opaque request costs {best:.2}× the floor's CPU in the best of {} rounds (limit {max:.2}×)",
                args.rounds
            );
            return std::process::ExitCode::FAILURE;
        }
        eprintln!(
            "floorbench: cached-opaque CPU over the floor, best of {} rounds: {best:.2}× (limit {max:.2}×)",
            args.rounds
        );
    }
    std::process::ExitCode::SUCCESS
}

/// One server's run of the mix in one round.
struct MixRun {
    outcome: Outcome,
    /// Its cache's hits and misses during the measured part (none for the floor).
    counts: Option<servers::CacheCounts>,
    /// Stopped before the stream's end because its tokens were about to expire.
    cut: bool,
}

/// The mix's table: each server's medians over the rounds, and its cache hit rate over all of
/// them.
fn print_mix(
    settings: &mix::MixSettings,
    plans: &[mix::Plan],
    servers: &[Server],
    results: &[Vec<MixRun>],
) {
    println!("## The production mix\n\n{}\n", settings.describe(plans));
    println!(
        "| server | req/s | p50 | p99 | CPU µs per request | × floor CPU (rounds) | cache hit rate | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let cpu = |j: usize, r: usize| results[j][r].outcome.cpu_per_request_us();
    for (j, server) in servers.iter().enumerate() {
        let runs = &results[j];
        let ratios: Vec<f64> = (0..runs.len()).map(|r| cpu(j, r) / cpu(0, r)).collect();
        let ratio = if server.kind == Kind::Floor {
            "1.00".to_owned()
        } else {
            format!(
                "**{:.2}** ({})",
                median(ratios.clone()),
                ratios
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let hit_rate = if server.kind == Kind::Floor {
            "— (verifies nothing)".to_owned()
        } else {
            let counts: Vec<_> = runs.iter().filter_map(|r| r.counts).collect();
            let (h, m) = counts
                .iter()
                .fold((0, 0), |(h, m), c| (h + c.hits, m + c.misses));
            if counts.len() < runs.len() || h + m == 0 {
                "unknown".to_owned()
            } else {
                format!("{:.1} %", 100.0 * h as f64 / (h + m) as f64)
            }
        };
        let cut = runs.iter().filter(|r| r.cut).count();
        println!(
            "| {}{} | {:.0} | {:.2} ms | {:.2} ms | {:.1} | {ratio} | {hit_rate} | {} |",
            server.kind.name(),
            if cut > 0 {
                format!(" ({cut} round(s) cut short: tokens expiring)")
            } else {
                String::new()
            },
            median(runs.iter().map(|o| o.outcome.rps()).collect()),
            median(runs.iter().map(|o| o.outcome.p50_ms()).collect()),
            median(runs.iter().map(|o| o.outcome.p99_ms()).collect()),
            median(
                runs.iter()
                    .map(|o| o.outcome.cpu_per_request_us())
                    .collect()
            ),
            runs.iter().map(|o| o.outcome.errors).sum::<usize>(),
        );
    }
    let api = servers.iter().position(|s| s.kind == Kind::Api);
    let node = servers.iter().position(|s| s.kind == Kind::Node);
    if let (Some(api), Some(node)) = (api, node) {
        let rounds = results[api].len();
        let r = median((0..rounds).map(|r| cpu(node, r) / cpu(api, r)).collect());
        let p99 = median(
            (0..rounds)
                .map(|r| results[node][r].outcome.p99_ms() / results[api][r].outcome.p99_ms())
                .collect(),
        );
        println!(
            "\nNode peer's CPU per request over the API's on the mix (same round, median): **{r:.2}×**; its p99 over the API's: **{p99:.2}×**."
        );
    }
    println!();
}

/// `/proc/loadavg`'s three averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
