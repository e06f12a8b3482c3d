/// Logging settings (`#[command(flatten)]` them into a service's own).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log filter, e.g. `info` or `info,jobtracker_api=debug`.
    #[arg(long = "rust-log", env = "RUST_LOG", default_value = LogArgs::DEFAULT_FILTER)]
    pub filter: String,
    /// `json` for machines; anything else (`pretty`) for people.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", value_parser = LogFormat::parse)]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// The filter when `RUST_LOG` is unset or blank.
    pub const DEFAULT_FILTER: &str = "info";
}

impl Default for LogArgs {
    fn default() -> Self {
        Self {
            filter: Self::DEFAULT_FILTER.to_owned(),
            log_format: LogFormat::Pretty,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people.
    #[default]
    Pretty,
    /// One JSON object a line, for machines.
    Json,
}

impl LogFormat {
    /// `json` (any case) is [`Json`](Self::Json); anything else [`Pretty`](Self::Pretty).
    fn parse(s: &str) -> Result<Self, std::convert::Infallible> {
        Ok(if s.trim().eq_ignore_ascii_case("json") {
            Self::Json
        } else {
            Self::Pretty
        })
    }
}

/// Logs to stderr as `log` says; a filter that does not parse falls back to `info`. With the
/// OpenTelemetry SDK's standard `OTEL_EXPORTER_OTLP_ENDPOINT` set in the environment, spans (as
/// the same filter lets through) are also exported as OpenTelemetry traces, named by
/// `OTEL_SERVICE_NAME` (default: the program's name), and W3C `traceparent` headers are read
/// and sent ([`trace`](crate::trace)); call it inside the Tokio runtime. A second call (several
/// services in one process, tests) changes nothing.
///
/// The `OTEL_*` variables are read from the environment as every OpenTelemetry SDK reads them,
/// not as settings of the binary: the SDK itself reads more of them (the sampler, for one).
pub fn init_tracing(log: &LogArgs) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(program_name);
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    let otel = crate::trace::layer(endpoint.as_deref(), &service_name);
    // With traces on, the spans that exist only for them (target `spans`) are enabled too.
    let extra = if otel.is_some() {
        crate::trace::SPANS_DIRECTIVE
    } else {
        ""
    };
    let filter = Some(log.filter.trim())
        .filter(|f| !f.is_empty())
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(format!("{f}{extra}")).ok())
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::new(format!("{}{extra}", LogArgs::DEFAULT_FILTER))
        });
    let exporting = otel.is_some();
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = match log.log_format {
        LogFormat::Json => registry.with(fmt.json()).try_init(),
        LogFormat::Pretty => registry.with(fmt).try_init(),
    };
    if exporting {
        // The collector's host only: an endpoint URL may carry credentials.
        let host = endpoint
            .as_deref()
            .and_then(|e| e.parse::<axum::http::Uri>().ok())
            .and_then(|u| u.host().map(str::to_owned))
            .unwrap_or_default();
        tracing::info!(collector = %host, service_name, "exporting traces (OTLP/gRPC)");
    }
}

/// The running program's file name, for the default `OTEL_SERVICE_NAME`.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_stem)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown_service".to_owned())
}
