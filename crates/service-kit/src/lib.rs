//! What every service of this workspace shares, so each does it the same way:
//!
//! - [`problem`]: `application/problem+json` answers (RFC 9457);
//! - [`request_id`]: which `x-request-id` a client may choose (short, plain);
//! - [`ops`]: `/healthz`, readiness and `/metrics` (the Prometheus text format, through
//!   `prometheus-client`), and the HTTP request metrics every service serves;
//! - with the `server` feature, [`LogArgs`] and [`init_tracing`] (`RUST_LOG`, `LOG_FORMAT`, and
//!   OpenTelemetry traces when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: [`trace`]),
//!   [`LogThrottle`] (log lines a client can cause, at a fixed rate with a count of those held back), [`shutdown_signal`] (Ctrl-C or SIGTERM), [`bind`] and [`serve`] (sheds slow and idle clients within the
//!   bounds of [`ServerArgs`]; finishes in-flight requests, up to a deadline, before it returns), and [`exit`] (how a `main` reports its end).
//!
//! It knows nothing of Clerk or JobTracker: it sits below every other crate of the workspace.

#[cfg(feature = "server")]
mod log;
pub mod ops;
mod problem;
pub mod request_id;
#[cfg(feature = "server")]
mod serve;
#[cfg(feature = "server")]
mod throttle;
#[cfg(feature = "server")]
pub mod trace;

pub use problem::problem;

#[cfg(feature = "server")]
pub use log::{LogArgs, LogFormat, PrettyFields, fmt_layer, init_tracing, subscriber};
#[cfg(feature = "server")]
pub use serve::{ServerArgs, StartupError, bind, exit, serve, shutdown_signal};
#[cfg(feature = "server")]
pub use throttle::LogThrottle;
