//! What both bots share: a polling loop that backs off on failures and never dies, and
//! counters rendered for `/metrics`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::ClientError;

/// Longest wait between attempts while the API or Clerk is failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Named counters.
#[derive(Debug)]
pub struct Counters {
    prefix: &'static str,
    names: &'static [(&'static str, &'static str)],
    values: Vec<AtomicU64>,
}

impl Counters {
    /// Counters `prefix_name_total` with help texts.
    pub fn new(prefix: &'static str, names: &'static [(&'static str, &'static str)]) -> Self {
        Self {
            prefix,
            names,
            values: names.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds one to `name` (unknown names are ignored).
    pub fn inc(&self, name: &str) {
        if let Some(i) = self.names.iter().position(|(n, _)| *n == name) {
            self.values[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> u64 {
        self.names
            .iter()
            .position(|(n, _)| *n == name)
            .map_or(0, |i| self.values[i].load(Ordering::Relaxed))
    }

    /// Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, (name, help)) in self.names.iter().enumerate() {
            let full = format!("{}_{}_total", self.prefix, name);
            out.push_str(&format!(
                "# HELP {full} {help}\n# TYPE {full} counter\n{full} {}\n",
                self.values[i].load(Ordering::Relaxed)
            ));
        }
        out
    }
}

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
        let wait = match step().await {
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
