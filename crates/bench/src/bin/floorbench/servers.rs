//! The servers under load, each its own process (its CPU time read from `/proc`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use axum::Json;
use axum::http::HeaderMap;
use axum::routing::get;
use clerk_mock::ClerkMock;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Floor,
    Api,
    /// The API with OpenTelemetry export on (OTLP/gRPC to floorbench's own sink).
    ApiTraced,
    Node,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Floor => "floor (bare axum)",
            Kind::Api => "jobtracker-api",
            Kind::ApiTraced => "jobtracker-api, traces exported",
            Kind::Node => "Node peer",
        }
    }
}

/// A server process; killed (with its process group) when dropped.
pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    /// Where its verification-cache counters are read: the API's `/metrics` listener, the Node
    /// peer's `/__stats`; none for the floor, which verifies nothing.
    stats: Option<SocketAddr>,
    child: Child,
}

/// Requests a server answered from its verification cache, and those it verified (or asked
/// Clerk about), so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
}

impl CacheCounts {
    /// The counts between `earlier` and `self`.
    pub fn since(self, earlier: CacheCounts) -> CacheCounts {
        CacheCounts {
            hits: self.hits.saturating_sub(earlier.hits),
            misses: self.misses.saturating_sub(earlier.misses),
        }
    }
}

/// The sum of the Prometheus samples in `text` named `name` (a counter's `_total` included).
fn prometheus_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (metric, value) = l.rsplit_once(' ')?;
            let bare = metric.split('{').next()?;
            (bare == name || bare.strip_suffix("_total") == Some(name))
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .map(|v| v as u64)
        .sum()
}

impl Drop for Server {
    fn drop(&mut self) {
        // The whole process group (the Node primary and its workers), at once: a graceful
        // shutdown would wait for the load generator's idle keep-alive connections.
        let _ = Command::new("kill")
            .args(["-KILL", "--"])
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node-peer")
}

/// Why the Node peer cannot run.
#[derive(Debug)]
pub enum NodeUnavailable {
    /// `@clerk/backend` is not installed in this directory.
    ClerkBackendMissing(PathBuf),
    /// `node --version` does not run.
    NoNode,
}

impl std::fmt::Display for NodeUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClerkBackendMissing(dir) => write!(
                f,
                "@clerk/backend is not installed (npm install --prefix {})",
                dir.display()
            ),
            Self::NoNode => f.write_str("`node` does not run"),
        }
    }
}

impl std::error::Error for NodeUnavailable {}

/// `Ok` when `node` runs and `@clerk/backend` is installed beside the peer's script.
pub fn node_available() -> Result<(), NodeUnavailable> {
    let dir = node_peer_dir();
    if !dir.join("node_modules/@clerk/backend").is_dir() {
        return Err(NodeUnavailable::ClerkBackendMissing(dir));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(NodeUnavailable::NoNode),
    }
}

/// A publishable key naming `issuer`'s host as the frontend API (`pk_test_` + base64 of
/// `host$`), which @clerk/backend insists on having.
fn publishable_key(issuer: &str) -> String {
    use base64::Engine;
    let host = issuer
        .split("://")
        .nth(1)
        .unwrap_or(issuer)
        .trim_end_matches('/');
    format!(
        "pk_test_{}",
        base64::engine::general_purpose::STANDARD.encode(format!("{host}$"))
    )
}

impl Server {
    /// Starts `kind`; `otlp` is the collector [`Kind::ApiTraced`] exports to.
    pub async fn start(kind: Kind, mock: &ClerkMock, dir: &Path, otlp: Option<SocketAddr>) -> Self {
        let machine = |n: &str| mock.machine_by_name(n).expect("machine");
        let mut cmd = match kind {
            Kind::Floor | Kind::Api | Kind::ApiTraced => {
                let mut c = Command::new(std::env::current_exe().expect("own path"));
                c.arg("--serve")
                    .arg(if kind == Kind::Floor { "floor" } else { "api" });
                c
            }
            Kind::Node => {
                let mut c = Command::new("node");
                c.arg("server.mjs").current_dir(node_peer_dir());
                c
            }
        };
        // Only what is set here: the benchmark's own environment (RUST_LOG, …) stays out.
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .process_group(0)
            .stdout(Stdio::piped());
        let log =
            std::fs::File::create(dir.join(format!("{}.log", kind_file(kind)))).expect("log file");
        cmd.stderr(log);
        let api = machine("JobTracker.API");
        let mut node_port = None;
        match kind {
            Kind::Floor => {}
            Kind::Api | Kind::ApiTraced => {
                if kind == Kind::ApiTraced {
                    let otlp = otlp.expect("the OTLP sink's address");
                    // The sink speaks OTLP/gRPC (the exporter's default is http/protobuf).
                    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
                        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
                        .env("OTEL_SERVICE_NAME", "jobtracker-api");
                }
                // Production defaults, from the environment as the service's main reads it.
                cmd.env("JOBTRACKER_BIND", "127.0.0.1:0")
                    .env("METRICS_BIND", "127.0.0.1:0")
                    .env(
                        "DATABASE_URL",
                        format!("sqlite://{}/api.db?mode=rwc", dir.display()),
                    )
                    .env("CLERK_API_BASE_URL", mock.api_url())
                    .env("CLERK_MACHINE_SECRET_KEY", &api.secret_key)
                    .env("CLERK_MACHINE_ID", &api.id)
                    .env("CLERK_SECRET_KEY", mock.instance_secret_key())
                    .env("CLERK_AUTHORIZED_PARTIES", mock.authorized_party())
                    .env("CLERK_ISSUER", mock.issuer())
                    .env(
                        "CANDIDATE_REPRESENTER_MACHINE_ID",
                        machine("CandidateRepresenter.Bot").id,
                    )
                    .env("JOB_APPLIER_MACHINE_ID", machine("JobApplier.Bot").id)
                    .env("RUST_LOG", "info")
                    .env("LOG_FORMAT", "json");
            }
            Kind::Node => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port();
                cmd.env("PORT", port.to_string())
                    .env("CLERK_API_URL", mock.uri())
                    .env("CLERK_SECRET_KEY", mock.instance_secret_key())
                    .env("CLERK_MACHINE_SECRET_KEY", &api.secret_key)
                    .env("CLERK_JWT_KEY", mock.public_key_pem())
                    .env("CLERK_PUBLISHABLE_KEY", publishable_key(&mock.issuer()))
                    .env("CLERK_AUTHORIZED_PARTY", mock.authorized_party())
                    .env(
                        "CANDIDATE_REPRESENTER_MACHINE_ID",
                        machine("CandidateRepresenter.Bot").id,
                    )
                    .env("JOB_APPLIER_MACHINE_ID", machine("JobApplier.Bot").id)
                    .env("NODE_ENV", "production")
                    // A development key: the SDK would otherwise report telemetry to Clerk.
                    .env("CLERK_TELEMETRY_DISABLED", "1");
                node_port = Some(port);
            }
        }
        let mut child = cmd.spawn().expect("server starts");
        let stdout = child.stdout.take().expect("stdout");
        // The address (ours) or `ready` (Node's); anything else the SDK prints is skipped.
        // Ours print their address and their metrics address on one line.
        let first = |l: &str| l.split_whitespace().next().unwrap_or_default().to_owned();
        let line = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            lines
                .find_map(|l| {
                    let l = l.ok()?;
                    (l.trim() == "ready" || first(&l).parse::<SocketAddr>().is_ok()).then_some(l)
                })
                .unwrap_or_default()
        });
        let line = tokio::time::timeout(Duration::from_secs(60), line)
            .await
            .unwrap_or_else(|_| panic!("{} did not start within 60 s", kind.name()))
            .expect("reader");
        let addr = match node_port {
            Some(p) if line.trim() == "ready" => SocketAddr::from(([127, 0, 0, 1], p)),
            _ => first(&line).parse().unwrap_or_else(|_| {
                panic!(
                    "{} did not start: {line:?} (see {}/{}.log)",
                    kind.name(),
                    dir.display(),
                    kind_file(kind)
                )
            }),
        };
        let stats = match kind {
            Kind::Floor => None,
            Kind::Node => Some(addr),
            Kind::Api | Kind::ApiTraced => line
                .split_whitespace()
                .nth(1)
                .and_then(|m| m.parse::<SocketAddr>().ok()),
        };
        Self {
            kind,
            addr,
            stats,
            child,
        }
    }

    /// The server's verification-cache counters now: the API's opaque and JWT caches (from its
    /// `/metrics`), the Node peer's verdict `Map`s (every worker's). `None` for the floor, or
    /// when they cannot be read.
    pub async fn cache_counts(&self, http: &reqwest::Client) -> Option<CacheCounts> {
        let at = self.stats?;
        let url = match self.kind {
            Kind::Node => format!("http://{at}/__stats"),
            _ => format!("http://{at}/metrics"),
        };
        let text = http.get(url).send().await.ok()?.text().await.ok()?;
        match self.kind {
            Kind::Node => {
                let v: serde_json::Value = serde_json::from_str(&text).ok()?;
                Some(CacheCounts {
                    hits: v["hits"].as_u64()?,
                    misses: v["misses"].as_u64()?,
                })
            }
            _ => Some(CacheCounts {
                hits: prometheus_sum(&text, "m2m_jwt_cache_hits")
                    + prometheus_sum(&text, "m2m_verify_cache_hits"),
                misses: prometheus_sum(&text, "m2m_jwt_cache_misses")
                    + prometheus_sum(&text, "m2m_verify_cache_misses"),
            }),
        }
    }

    /// CPU time so far of every thread of the process and of its children (the Node workers),
    /// by thread id, from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds, kept by the
    /// scheduler; `/proc/<pid>/stat` counts in 10 ms ticks, too coarse for a short run).
    pub fn cpu_snapshot(&self) -> CpuSnapshot {
        let pid = self.child.id();
        let mut threads = HashMap::new();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return CpuSnapshot(threads);
        };
        for p in procs.flatten() {
            let Some(n) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{n}/stat")) else {
                continue;
            };
            // After the command name in parentheses: state, then ppid.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if n != pid && ppid != Some(pid) {
                continue;
            }
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{n}/task")) else {
                continue;
            };
            for t in tasks.flatten() {
                let ns = std::fs::read_to_string(t.path().join("schedstat"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
                if let (Some(tid), Some(ns)) = (t.file_name().to_str(), ns) {
                    threads.insert(tid.to_owned(), ns);
                }
            }
        }
        CpuSnapshot(threads)
    }
}

/// CPU nanoseconds by thread id.
pub struct CpuSnapshot(HashMap<String, u64>);

impl CpuSnapshot {
    /// CPU time spent between `earlier` and `self`: threads started since count whole; a thread
    /// that ended in between loses only its own last moments.
    pub fn since(&self, earlier: &CpuSnapshot) -> Duration {
        Duration::from_nanos(
            self.0
                .iter()
                .map(|(tid, ns)| ns.saturating_sub(earlier.0.get(tid).copied().unwrap_or(0)))
                .sum(),
        )
    }
}

fn kind_file(kind: Kind) -> &'static str {
    match kind {
        Kind::Floor => "floor",
        Kind::Api => "api",
        Kind::ApiTraced => "api-traced",
        Kind::Node => "node",
    }
}

/// The `--serve` side: runs one server in this process and prints its address.
pub fn serve(kind: &str) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match kind {
            "floor" => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                println!("{}", listener.local_addr().expect("addr"));
                axum::serve(listener, floor_router())
                    .with_graceful_shutdown(service_kit::shutdown_signal())
                    .await
                    .expect("serve");
                ExitCode::SUCCESS
            }
            "api" => {
                // What jobtracker-api's main does, from the environment the parent set.
                let config = match <jobtracker_api::Config as clap::Parser>::try_parse_from([
                    "jobtracker-api",
                ]) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::FAILURE;
                    }
                };
                service_kit::init_tracing(&config.log);
                let result = match jobtracker_api::Server::build(&config).await {
                    Ok(app) => {
                        println!("{} {}", app.local_addr(), app.metrics_addr());
                        app.run_until(service_kit::shutdown_signal())
                            .await
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
                service_kit::exit("jobtracker-api", result)
            }
            other => {
                eprintln!("floorbench: unknown server {other}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The floor: the same route shape, reading the `Authorization` header, a small JSON answer.
fn floor_router() -> axum::Router {
    axum::Router::new()
        .route(
            "/api/whoami",
            get(|headers: HeaderMap| async move {
                let bearer = headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map_or(0, str::len);
                Json(json!({"kind": "floor", "token_length": bearer}))
            }),
        )
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
}

/// An OTLP/gRPC trace collector that keeps nothing, only counts: where the traced API's spans
/// go. It runs in floorbench's own process, so its CPU is not the API's.
pub mod otlp_sink {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };

    /// Spans received so far.
    #[derive(Default, Clone)]
    pub struct Sink(Arc<AtomicU64>);

    impl Sink {
        pub fn spans(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[tonic::async_trait]
    impl TraceService for Sink {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let spans: usize = request
                .get_ref()
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            self.0.fetch_add(spans as u64, Ordering::Relaxed);
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    /// Starts the sink on a free loopback port.
    pub fn start() -> (SocketAddr, Sink) {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let sink = Sink::default();
        let service = TraceServiceServer::new(sink.clone());
        tokio::spawn(async move {
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(service)
                .serve(addr)
                .await
            {
                eprintln!("floorbench: the OTLP sink stopped: {e}");
            }
        });
        (addr, sink)
    }
}
