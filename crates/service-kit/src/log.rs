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

/// Logs to stderr as `log` says; a filter that does not parse falls back to `info`. A second
/// call (several services in one process, tests) changes nothing.
pub fn init_tracing(log: &LogArgs) {
    let filter = Some(log.filter.trim())
        .filter(|f| !f.is_empty())
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(LogArgs::DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match log.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
