//! `init_tracing` exports spans over both OTLP protocols `OTEL_EXPORTER_OTLP_PROTOCOL` names, to
//! a fake collector in this process: `grpc` (the collector's TraceService over tonic) and
//! `http/protobuf` (`POST /v1/traces`, the default when the variable is unset); an unsupported
//! protocol leaves traces off and says so.
//!
//! The exporter reads its settings from the process environment, which a test must not change
//! under other threads, so each case runs this binary again as a child with its own environment
//! (`OTLP_EXPORT_CHILD`): the child sets up logging as a service does, records one span, flushes
//! and exits; the parent's collector says what arrived. No test harness (`harness = false`):
//! `main` is the parent, or the child.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

const CHILD: &str = "OTLP_EXPORT_CHILD";
const SPAN: &str = "otlp-export-test-span";
const SERVICE: &str = "otlp-export-test";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        grpc_exports_a_span().await;
        http_protobuf_exports_a_span().await;
        the_default_protocol_is_http_protobuf().await;
        an_unsupported_protocol_leaves_traces_off().await;
    });
    println!("otlp_export: 4 cases passed");
}

/// The child: a service's logging set-up, one span, the flush a service does at exit.
fn child() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        service_kit::init_tracing(&service_kit::LogArgs::default());
        tracing::info_span!(SPAN, answer = 42).in_scope(|| tracing::info!("inside"));
    });
    service_kit::trace::flush();
}

/// What a collector received: (service.name, span name) pairs.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String)>>>);

impl Received {
    fn record(&self, request: &ExportTraceServiceRequest) {
        let mut spans = self.0.lock().expect("lock");
        for resource in &request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in &resource.scope_spans {
                for span in &scope.spans {
                    spans.push((service.clone(), span.name.clone()));
                }
            }
        }
    }

    fn spans(&self) -> Vec<(String, String)> {
        self.0.lock().expect("lock").clone()
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.record(request.get_ref());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC collector on a free port: (its URL, what it receives).
async fn grpc_collector() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let received = Received::default();
    let service = TraceServiceServer::new(received.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (url, received)
}

/// An OTLP/HTTP collector on a free port: `POST /v1/traces` with a protobuf body, nothing else.
async fn http_collector() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| async move {
            if headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                != Some("application/x-protobuf")
            {
                return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
            }
            match ExportTraceServiceRequest::decode(body) {
                Ok(request) => {
                    store.record(&request);
                    let answer = ExportTraceServiceResponse::default().encode_to_vec();
                    (StatusCode::OK, answer)
                }
                Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Runs the child with `vars` (and none of this process's own `OTEL_*`), at most 60 s.
async fn run_child(vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("this test's path"));
    for (name, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
        if name.starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    command
        .env(CHILD, "1")
        .env("OTEL_SERVICE_NAME", SERVICE)
        .env("RUST_LOG", "info");
    for (name, value) in vars {
        command.env(name, value);
    }
    let run = tokio::task::spawn_blocking(move || command.output());
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the child finished within 60 s")
        .expect("joined")
        .expect("the child ran");
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn expected() -> Vec<(String, String)> {
    vec![(SERVICE.to_owned(), SPAN.to_owned())]
}

async fn grpc_exports_a_span() {
    let (url, received) = grpc_collector().await;
    run_child(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ])
    .await;
    assert_eq!(received.spans(), expected(), "grpc");
}

async fn http_protobuf_exports_a_span() {
    let (url, received) = http_collector().await;
    run_child(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ])
    .await;
    assert_eq!(received.spans(), expected(), "http/protobuf");
}

async fn the_default_protocol_is_http_protobuf() {
    let (url, received) = http_collector().await;
    let output = run_child(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &url)]).await;
    assert_eq!(received.spans(), expected(), "unset protocol");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("http/protobuf"), "{stderr}");
}

async fn an_unsupported_protocol_leaves_traces_off() {
    let (url, received) = http_collector().await;
    let output = run_child(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("traces are off: OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\""),
        "{stderr}"
    );
    assert!(received.spans().is_empty(), "{:?}", received.spans());
}
