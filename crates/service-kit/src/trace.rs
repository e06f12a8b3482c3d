//! Distributed traces: OpenTelemetry through `tracing`, exported over OTLP (gRPC), and W3C
//! `traceparent` propagation. Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
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

/// The export layer when `endpoint` is set: spans go in batches to the OTLP/gRPC collector at
/// `endpoint` as service `service_name`. Needs a running Tokio runtime (tonic's channel).
pub(crate) fn layer<S>(
    endpoint: Option<&str>,
    service_name: &str,
) -> Option<OpenTelemetryLayer<S, SdkTracer>>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let endpoint = endpoint.map(str::trim).filter(|e| !e.is_empty())?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT: traces are off: {e}");
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
