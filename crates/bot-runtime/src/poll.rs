//! The polling loop: backs off on failures and never dies.

use std::future::Future;
use std::time::Duration;

use jobtracker_client::ClientError;
use tokio::sync::watch;
use tracing::Instrument as _;

/// Longest wait between attempts while the API or Clerk is failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Calls `step` until `stop` turns true. `Ok(true)` (work was done) polls again at once,
/// `Ok(false)` waits `interval`; a transient error doubles the wait up to [`MAX_BACKOFF`], any
/// other error is logged and waits `interval`. The loop itself never fails.
pub async fn poll_loop<F, Fut>(
    name: &'static str,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, ClientError>>,
{
    let mut backoff = interval;
    loop {
        if *stop.borrow() {
            break;
        }
        // One pass, one span: with traces on, one trace holds the pass's API calls (and the
        // API's work for them, and the token mint if one was due).
        let pass = step().instrument(tracing::info_span!("poll", worker = name));
        let wait = match pass.await {
            Ok(true) => {
                backoff = interval;
                continue;
            }
            Ok(false) => {
                backoff = interval;
                interval
            }
            Err(e) if e.is_transient() => {
                backoff = (backoff * 2).min(MAX_BACKOFF).max(interval);
                tracing::warn!(worker = name, error = %e, retry_in_ms = backoff.as_millis() as u64, "transient failure; backing off");
                backoff
            }
            Err(e) => {
                tracing::error!(worker = name, error = %e, "step failed");
                interval
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!(worker = name, "stopped");
}
