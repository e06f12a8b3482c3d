//! Distributed traces: OpenTelemetry through `tracing`, exported over OTLP (`http/protobuf` by
//! default, or `grpc`), and W3C `traceparent` propagation. Off unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.
//!
//! [`init_tracing`](crate::init_tracing) adds the export layer when the endpoint is set and
//! installs the W3C trace-context propagator; [`set_parent_from`] makes a server's request span a
//! child of the caller's span named in `traceparent`. Senders inject the header through the
//! global propagator (`jobtracker-client` does), which stays a no-op until a binary turns traces
//! on. docs/operations.md, *Traces*.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};
use tracing_subscriber::registry::LookupSpan;

/// What [`init_tracing`](crate::init_tracing) adds to the log filter when traces are exported:
/// spans that serve only traces (per request: `auth`, `store.*`) have the target `spans` and the
/// level DEBUG, so without traces they are disabled at their call site and cost nothing.
pub const SPANS_DIRECTIVE: &str = ",spans=debug";

static PROPAGATING: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Makes the process read and write W3C `traceparent`/`tracestate` headers (the global
/// OpenTelemetry propagator). [`init_tracing`](crate::init_tracing) calls it when traces are
/// exported; tests that collect spans in memory call it themselves.
pub fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    PROPAGATING.store(true, Ordering::Release);
}

/// Whether [`install_propagator`] ran: without it, extracting and injecting is skipped.
pub fn propagating() -> bool {
    PROPAGATING.load(Ordering::Acquire)
}

/// Makes `span` (a server's request span) a child of the remote span that `headers`'
/// `traceparent` names. Nothing happens unless traces are on, or the header is absent or bad.
pub fn set_parent_from(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !propagating() || !headers.contains_key("traceparent") {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    let _ = span.set_parent(cx);
}

/// Sets an attribute on `span`'s exported (OpenTelemetry) span only, when traces are on: for a
/// value learnt after the span was made (a request's route template, known once routing
/// matched), which as a `tracing` field would make the JSON log format re-parse and re-write
/// the span's fields on every request.
pub fn set_attribute(span: &tracing::Span, key: &'static str, value: &str) {
    if propagating() {
        span.set_attribute(key, value.to_owned());
    }
}

/// OTLP's two transports, as `OTEL_EXPORTER_OTLP_PROTOCOL` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OtlpProtocol {
    /// `grpc`: over tonic, to a collector's port 4317.
    Grpc,
    /// `http/protobuf`, the specification's default: `POST …/v1/traces`, to a collector's 4318.
    HttpProtobuf,
}

impl OtlpProtocol {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// What the standard `OTEL_*` variables ask of the exporter, read before it is built: whether to
/// export at all (an endpoint variable is set), over which protocol, and whether the timeout is
/// left to us. The exporter itself (`opentelemetry-otlp`) reads the endpoint, timeout and headers
/// again from the same variables; docs/operations.md, *Traces*, lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OtlpSettings {
    pub(crate) protocol: OtlpProtocol,
    /// The collector's host, for the start-up log line: an endpoint URL may carry credentials.
    pub(crate) collector_host: String,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` or `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` is set; else 5 s (the
    /// SDK's default of 10 s holds the last spans too long at shutdown).
    pub(crate) timeout_from_env: bool,
}

/// Why traces stay off although an endpoint is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnsupportedProtocol {
    variable: &'static str,
    value: String,
}

impl std::fmt::Display for UnsupportedProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={:?} is not a protocol this build exports with (grpc, http/protobuf)",
            self.variable, self.value
        )
    }
}

impl std::error::Error for UnsupportedProtocol {}

impl OtlpSettings {
    /// From the variables `get` returns (the process environment in a binary). `Ok(None)`: no
    /// endpoint variable, traces off. The signal-specific `OTEL_EXPORTER_OTLP_TRACES_*` variables
    /// take precedence over the general ones, as the specification says; blank counts as unset.
    /// An unknown protocol (`http/json`, a typo) is refused rather than guessed.
    pub(crate) fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, UnsupportedProtocol> {
        let first = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                get(name)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .map(|v| (name, v))
            })
        };
        let Some((_, endpoint)) = first([
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]) else {
            return Ok(None);
        };
        let protocol = match first([
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]) {
            None => OtlpProtocol::HttpProtobuf,
            Some((_, v)) if v.eq_ignore_ascii_case("http/protobuf") => OtlpProtocol::HttpProtobuf,
            Some((_, v)) if v.eq_ignore_ascii_case("grpc") => OtlpProtocol::Grpc,
            Some((variable, value)) => return Err(UnsupportedProtocol { variable, value }),
        };
        let collector_host = endpoint
            .parse::<axum::http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned))
            .unwrap_or_default();
        let timeout_from_env = first([
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ])
        .is_some();
        Ok(Some(Self {
            protocol,
            collector_host,
            timeout_from_env,
        }))
    }
}

/// The exporter `settings` describe. The endpoint, headers and (when set) timeout come from the
/// environment through `opentelemetry-otlp`; over HTTP, `OTEL_EXPORTER_OTLP_ENDPOINT` is the
/// collector's base URL and `/v1/traces` is appended, while `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
/// is used as is.
fn exporter(
    settings: &OtlpSettings,
) -> Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError> {
    let timeout = (!settings.timeout_from_env).then_some(Duration::from_secs(5));
    let builder = opentelemetry_otlp::SpanExporter::builder();
    match settings.protocol {
        OtlpProtocol::Grpc => {
            let mut b = builder.with_tonic();
            if let Some(t) = timeout {
                b = b.with_timeout(t);
            }
            b.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let mut b = builder
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            if let Some(t) = timeout {
                b = b.with_timeout(t);
            }
            b.build()
        }
    }
}

/// The export layer when `settings` ask for traces: spans go in batches to the OTLP collector as
/// service `service_name`. Needs a running Tokio runtime (tonic's channel).
pub(crate) fn layer<S>(
    settings: Option<&OtlpSettings>,
    service_name: &str,
) -> Option<OpenTelemetryLayer<S, SdkTracer>>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let settings = settings?;
    let exporter = match exporter(settings) {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("OTEL_EXPORTER_OTLP_*: traces are off: {e}");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer(service_name.to_owned());
    if PROVIDER.set(provider).is_err() {
        // A second set-up in one process (tests): the first one exports.
        return None;
    }
    install_propagator();
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Sends the spans still buffered (at most a few seconds); [`exit`](crate::exit) calls it.
pub fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        eprintln!("could not send the last spans: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{OtlpProtocol, OtlpSettings};

    fn settings(vars: &[(&str, &str)]) -> Result<Option<OtlpSettings>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OtlpSettings::from_lookup(|name| vars.get(name).cloned()).map_err(|e| e.to_string())
    }

    fn protocol(vars: &[(&str, &str)]) -> OtlpProtocol {
        settings(vars)
            .expect("supported")
            .expect("exporting")
            .protocol
    }

    const ENDPOINT: (&str, &str) = (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://user:pw@otel.example:4318",
    );

    #[test]
    fn no_endpoint_no_export_whatever_else_is_set() {
        assert_eq!(settings(&[]), Ok(None));
        assert_eq!(
            settings(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "  "),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ]),
            Ok(None)
        );
    }

    #[test]
    fn either_endpoint_variable_turns_export_on_and_only_the_host_is_kept() {
        let on = settings(&[ENDPOINT]).expect("ok").expect("on");
        assert_eq!(on.collector_host, "otel.example");
        let traces_only = settings(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://traces.example/custom/v1/traces",
        )])
        .expect("ok")
        .expect("on");
        assert_eq!(traces_only.collector_host, "traces.example");
    }

    #[test]
    fn the_protocol_defaults_to_http_protobuf_as_the_specification_says() {
        assert_eq!(protocol(&[ENDPOINT]), OtlpProtocol::HttpProtobuf);
        assert_eq!(
            protocol(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", " ")]),
            OtlpProtocol::HttpProtobuf
        );
        assert_eq!(
            protocol(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]),
            OtlpProtocol::HttpProtobuf
        );
        assert_eq!(
            protocol(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", "GRPC")]),
            OtlpProtocol::Grpc
        );
    }

    #[test]
    fn the_traces_protocol_variable_wins_over_the_general_one() {
        assert_eq!(
            protocol(&[
                ENDPOINT,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ]),
            OtlpProtocol::Grpc
        );
        assert_eq!(
            protocol(&[
                ENDPOINT,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ]),
            OtlpProtocol::HttpProtobuf
        );
    }

    #[test]
    fn an_unsupported_protocol_is_refused_naming_the_variable() {
        assert_eq!(
            settings(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
            Err("OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\" is not a protocol this build exports with (grpc, http/protobuf)".to_owned())
        );
        assert!(
            settings(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc-web")])
                .expect_err("refused")
                .starts_with("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=")
        );
    }

    #[test]
    fn a_timeout_variable_replaces_the_five_second_default() {
        let timeout =
            |vars: &[(&str, &str)]| settings(vars).expect("ok").expect("on").timeout_from_env;
        assert!(!timeout(&[ENDPOINT]));
        assert!(timeout(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")]));
        assert!(timeout(&[
            ENDPOINT,
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000")
        ]));
    }
}
