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
    let limits = ServerArgs {
        shutdown_grace_seconds: 1,
        ..ServerArgs::default()
    };
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bot_runtime::serve(
        bot,
        listener,
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
