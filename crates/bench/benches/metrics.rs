//! What recording one request's metrics costs (one core; criterion):
//! `cargo bench -p bench --bench metrics`.
//!
//! `prometheus-client` (what the services use) beside a replica of the hand-written registry it
//! replaced (two global mutexes, four `String`s per request), and rendering `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use service_kit::ops::{HttpMetrics, LATENCY_BUCKETS, prometheus_client};

/// Bucket counts, sum and count of one replaced histogram series.
type OldHistogram = ([u64; 12], f64, u64);

/// The registry before: `(method, route, status) → count` and `(method, route) → histogram`,
/// each behind one global mutex, keys as owned strings.
#[derive(Default)]
struct HandWritten {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), OldHistogram>>,
}

impl HandWritten {
    fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .expect("lock")
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let mut latency = self.latency.lock().expect("lock");
        let h = latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        let secs = elapsed.as_secs_f64();
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.0[i] += 1;
            }
        }
        h.1 += secs;
        h.2 += 1;
    }
}

fn benches(c: &mut Criterion) {
    let mut registry = prometheus_client::registry::Registry::default();
    let http = HttpMetrics::register(&mut registry);
    let started = Instant::now();
    c.bench_function("record one request: prometheus-client HttpMetrics", |b| {
        b.iter(|| http.record(&Method::GET, None, StatusCode::OK, started))
    });
    let old = HandWritten::default();
    c.bench_function(
        "record one request: the replaced hand-written registry",
        |b| b.iter(|| old.request("GET", "/api/whoami", 200, started.elapsed())),
    );
    // Two threads recording at once (the box has two cores): time per request.
    let two = |b: &mut criterion::Bencher, record: &(dyn Fn() + Sync)| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..iters / 2 {
                            record();
                        }
                    });
                }
            });
            start.elapsed()
        })
    };
    c.bench_function("record, 2 threads: prometheus-client HttpMetrics", |b| {
        two(b, &|| {
            http.record(&Method::GET, None, StatusCode::OK, started)
        })
    });
    c.bench_function(
        "record, 2 threads: the replaced hand-written registry",
        |b| {
            two(b, &|| {
                old.request("GET", "/api/whoami", 200, started.elapsed())
            })
        },
    );
    // A scrape with 20 routes × 3 statuses.
    let mut registry = prometheus_client::registry::Registry::default();
    let many = HttpMetrics::register(&mut registry);
    for method in [Method::GET, Method::POST, Method::PATCH] {
        for status in [200u16, 401, 404] {
            for _ in 0..20 {
                many.record(
                    &method,
                    None,
                    StatusCode::from_u16(status).expect("status"),
                    started,
                );
            }
        }
    }
    c.bench_function("render /metrics (9 series, 3 histograms)", |b| {
        b.iter(|| service_kit::ops::render(&registry))
    });

    // The spans a request opens besides TraceLayer's (`auth`, one or two `store.*`), with the
    // services' subscriber (fmt + EnvFilter `info`, writing nowhere): as they are (target
    // `spans`, DEBUG: only traces enable them) and as they would cost at INFO.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let parent = tracing::info_span!("request", method = "GET", route = "/api/whoami");
        let _in_request = parent.enter();
        c.bench_function("a trace-only span, traces off", |b| {
            b.iter(|| {
                let span = tracing::debug_span!(target: "spans", "auth");
                let _entered = span.enter();
            })
        });
        c.bench_function("the same span enabled (INFO)", |b| {
            b.iter(|| {
                let span = tracing::info_span!("auth");
                let _entered = span.enter();
            })
        });
    });
}

criterion_group! {
    name = metrics;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(metrics);
