//! Shutdown is bounded by the grace period even when the item in hand never finishes (an API
//! that hangs): the bot abandons it rather than holding the process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bot_runtime::{Bot, BotMetrics};
use jobtracker_client::ClientError;
use service_kit::ServerArgs;
use tokio::sync::mpsc;

/// Far longer than the bound under test.
const PATIENCE: Duration = Duration::from_secs(15);

struct Stuck {
    counters: BotMetrics,
    started: mpsc::UnboundedSender<()>,
}

impl Bot for Stuck {
    const NAME: &'static str = "stuck";

    fn counters(&self) -> &BotMetrics {
        &self.counters
    }

    async fn step(&self) -> Result<bool, ClientError> {
        let _ = self.started.send(());
        std::future::pending().await
    }
}

#[tokio::test]
async fn shutdown_abandons_a_step_that_never_ends_after_the_grace_period() {
    let (started, mut started_rx) = mpsc::unbounded_channel();
    let bot = Arc::new(Stuck {
        counters: BotMetrics::new("stuck", "stuck", &[]),
        started,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let limits = ServerArgs {
        shutdown_grace_seconds: 1,
        ..ServerArgs::default()
    };
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bot_runtime::serve(
        bot,
        listener,
        metrics,
        limits,
        Duration::from_secs(1),
        async {
            let _ = stop_rx.await;
        },
    ));
    tokio::time::timeout(PATIENCE, started_rx.recv())
        .await
        .expect("the step started");
    let _ = stop.send(());
    let returned = tokio::time::timeout(PATIENCE, serving).await;
    assert!(
        returned.is_ok(),
        "serve still waiting for the stuck step after {PATIENCE:?}"
    );
}

/// The status and body of `GET path` at `addr`, over a plain HTTP/1.1 connection.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let (started, _started_rx) = mpsc::unbounded_channel();
    let bot = Arc::new(Stuck {
        counters: BotMetrics::new("stuck", "stuck", &[("passes", "Passes.")]),
        started,
    });
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (public_addr, metrics_addr) = (public.local_addr().unwrap(), metrics.local_addr().unwrap());
    let limits = ServerArgs {
        shutdown_grace_seconds: 0,
        ..ServerArgs::default()
    };
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bot_runtime::serve(
        bot,
        public,
        metrics,
        limits,
        Duration::from_secs(1),
        async {
            let _ = stop_rx.await;
        },
    ));
    assert_eq!(get(public_addr, "/healthz").await.0, 200);
    assert_eq!(get(public_addr, "/metrics").await.0, 404);
    let (status, text) = get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("stuck_passes_total 0"), "{text}");
    assert_eq!(get(metrics_addr, "/healthz").await.0, 404);
    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, serving)
        .await
        .expect("serve returns")
        .expect("serve task");
}
