//! The load generator: keep-alive HTTP/1.1 connections (hyper's client), each sending its next
//! request as soon as the previous answer is read, for a fixed time or until a token pool is
//! spent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use super::servers::Server;

/// What goes in the `Authorization` header.
#[derive(Debug, Clone)]
pub enum Tokens {
    /// Nothing.
    None,
    /// The same bearer token on every request.
    One(String),
    /// Each token once, then the run ends.
    Each(Vec<String>),
    /// The tokens in turn, round and round.
    Cycle(Vec<String>),
    /// Request `i` carries `tokens[order[i]]`; the run ends when `order` is spent, or at the
    /// settings' duration if that comes first (a cap, for tokens that expire).
    Stream {
        tokens: Arc<Vec<String>>,
        order: Arc<Vec<u32>>,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub connections: usize,
    pub duration: Duration,
}

/// One run against one server.
#[derive(Debug)]
pub struct Outcome {
    pub requests: usize,
    pub errors: usize,
    wall: Duration,
    /// Server CPU over the run.
    cpu: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }
    pub fn cpu_per_request_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
    fn percentile_ms(&self, p: f64) -> f64 {
        bench::percentile(&self.latencies, p).as_secs_f64() * 1000.0
    }
    pub fn p50_ms(&self) -> f64 {
        self.percentile_ms(50.0)
    }
    pub fn p99_ms(&self) -> f64 {
        self.percentile_ms(99.0)
    }
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("a token is header-safe")
}

/// Loads `server` at `addr` with GET `path` as `settings` and `tokens` say; the server's CPU
/// time is read before the first request and after the last answer.
pub async fn run(
    addr: SocketAddr,
    path: &'static str,
    tokens: &Tokens,
    settings: &Settings,
    server: &Server,
) -> Outcome {
    let headers: Arc<Vec<HeaderValue>> = Arc::new(match tokens {
        Tokens::None => Vec::new(),
        Tokens::One(t) => vec![bearer(t)],
        Tokens::Each(pool) | Tokens::Cycle(pool) => pool.iter().map(|t| bearer(t)).collect(),
        Tokens::Stream { tokens, .. } => tokens.iter().map(|t| bearer(t)).collect(),
    });
    let each = matches!(tokens, Tokens::Each(_));
    let order = match tokens {
        Tokens::Stream { order, .. } => Some(order.clone()),
        _ => None,
    };
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(tokio::sync::Barrier::new(settings.connections + 1));
    let tasks: Vec<_> = (0..settings.connections)
        .map(|_| {
            let (headers, next, stop, start, order) = (
                headers.clone(),
                next.clone(),
                stop.clone(),
                start.clone(),
                order.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 16);
                let mut errors = 0usize;
                let stream = tokio::net::TcpStream::connect(addr).await;
                let sender = match stream {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        match hyper::client::conn::http1::handshake(TokioIo::new(s)).await {
                            Ok((sender, conn)) => {
                                tokio::spawn(conn);
                                Some(sender)
                            }
                            Err(_) => None,
                        }
                    }
                    Err(_) => None,
                };
                start.wait().await;
                let Some(mut sender) = sender else {
                    return (latencies, 1);
                };
                let host = HeaderValue::from_static("127.0.0.1");
                while !stop.load(Ordering::Relaxed) {
                    let auth = if let Some(order) = &order {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        match order.get(i) {
                            Some(&t) => Some(headers[t as usize].clone()),
                            None => break,
                        }
                    } else if each {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        match headers.get(i) {
                            Some(h) => Some(h.clone()),
                            None => break,
                        }
                    } else if headers.is_empty() {
                        None
                    } else {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        Some(headers[i % headers.len()].clone())
                    };
                    let mut req = Request::get(path)
                        .header(header::HOST, host.clone())
                        .body(Empty::<Bytes>::new())
                        .expect("request");
                    if let Some(a) = auth {
                        req.headers_mut().insert(header::AUTHORIZATION, a);
                    }
                    let t = Instant::now();
                    if sender.ready().await.is_err() {
                        errors += 1;
                        break;
                    }
                    match sender.send_request(req).await {
                        Ok(resp) => {
                            let ok = resp.status().is_success();
                            let body = resp.into_body().collect().await;
                            if !ok || body.is_err() {
                                errors += 1;
                            }
                        }
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    // Every connection open; then the clock and the CPU reading start together.
    start.wait().await;
    let cpu0 = server.cpu_snapshot();
    let started = Instant::now();
    if order.is_some() {
        let stop = stop.clone();
        let cap = settings.duration;
        tokio::spawn(async move {
            tokio::time::sleep(cap).await;
            stop.store(true, Ordering::Relaxed);
        });
    } else if !each {
        tokio::time::sleep(settings.duration).await;
        stop.store(true, Ordering::Relaxed);
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("load task");
        latencies.extend(l);
        errors += e;
    }
    let wall = started.elapsed();
    let cpu = server.cpu_snapshot().since(&cpu0);
    latencies.sort();
    Outcome {
        requests: latencies.len(),
        errors,
        wall,
        cpu,
        latencies,
    }
}
