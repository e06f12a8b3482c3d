//! One application's trace, across the bot → API hop: the bot's client spans carry W3C
//! `traceparent`, the API's request spans continue the caller's trace, and under them the
//! authentication (with its Clerk verification on a cache miss) and the store; the bot's token
//! mint and its Clerk call are in the same trace. Spans are collected with the OpenTelemetry
//! SDK's in-memory exporter.
//!
//! Its own test binary, with the process-wide subscriber, like a service: with a thread-local
//! subscriber (`set_default`) inside the e2e binary, where other tests run services on other
//! threads at the same time, some of this test's API spans were never exported (tracing's
//! per-callsite interest is process-wide state).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use e2e::Stack;
use jobtracker_api_testing::Backend;
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

struct Trace {
    spans: Vec<SpanData>,
}

impl Trace {
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a SpanData> + 'a {
        self.spans.iter().filter(move |s| s.name == name)
    }

    fn children<'a>(&'a self, parent: &'a SpanData) -> impl Iterator<Item = &'a SpanData> + 'a {
        let id = parent.span_context.span_id();
        self.spans.iter().filter(move |s| s.parent_span_id == id)
    }

    fn by_id(&self) -> HashMap<SpanId, &SpanData> {
        self.spans
            .iter()
            .map(|s| (s.span_context.span_id(), s))
            .collect()
    }

    /// Whether `ancestor` is above `span` (by parent links within this trace).
    fn is_under(&self, span: &SpanData, ancestor: &SpanData) -> bool {
        let ids = self.by_id();
        let target = ancestor.span_context.span_id();
        let mut parent = span.parent_span_id;
        while parent != SpanId::INVALID {
            if parent == target {
                return true;
            }
            match ids.get(&parent) {
                Some(p) => parent = p.parent_span_id,
                None => return false,
            }
        }
        false
    }
}

#[tokio::test]
async fn one_trace_follows_an_application_from_the_bot_through_the_api_to_clerk() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(format!(
            "info{}",
            service_kit::trace::SPANS_DIRECTIVE
        )))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("e2e")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber here");
    service_kit::trace::install_propagator();

    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let alice = stack.alice.clone();
    let app_id = stack.new_application(&alice, &[]).await;
    let applier = stack.applier(|_| {});
    // One pass, in the span the bot's poll loop gives every pass.
    let worked = applier
        .run_once()
        .instrument(tracing::info_span!("poll", worker = "job-applier"))
        .await
        .expect("the pass works");
    assert!(worked);
    assert_eq!(
        stack.application(&alice, &app_id).await["status"],
        "submitted"
    );
    // The API ends a request's span once the response body is sent, which can be a moment
    // after the bot has read it: wait (boundedly) until every request's span has ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (trace_id, trace) = loop {
        let _ = provider.force_flush();
        let spans = exporter.get_finished_spans().expect("spans");
        let trace_id = spans
            .iter()
            .find(|s| {
                s.name == "application" && attr(s, "application_id").as_deref() == Some(&app_id)
            })
            .map(|s| s.span_context.trace_id());
        // Complete: the status change was served, and every client span has its server span.
        let complete = |t: TraceId| {
            let count = |name: &str| {
                spans
                    .iter()
                    .filter(|s| s.span_context.trace_id() == t && s.name == name)
                    .count()
            };
            let status_served = spans.iter().any(|s| {
                s.span_context.trace_id() == t
                    && s.name == "request"
                    && attr(s, "route").as_deref() == Some("/api/job-applications/{id}/status")
            });
            status_served && count("request") == count("jobtracker")
        };
        if let Some(t) = trace_id
            && complete(t)
        {
            let spans = spans
                .into_iter()
                .filter(|s| s.span_context.trace_id() == t)
                .collect();
            break (t, Trace { spans });
        }
        assert!(
            Instant::now() < deadline,
            "the application's trace is incomplete: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(trace_id, TraceId::INVALID);
    let names: Vec<&str> = trace.spans.iter().map(|s| s.name.as_ref()).collect();

    // The bot's side: the pass holds the claim, and the application's span the rest.
    let poll = trace.named("poll").next().expect("poll span");
    let application = trace.named("application").next().expect("application span");
    assert_eq!(application.parent_span_id, poll.span_context.span_id());
    let clients: Vec<&SpanData> = trace.named("jobtracker").collect();
    assert!(clients.len() >= 4, "claim, user, resume, status: {names:?}");
    for c in &clients {
        assert_eq!(c.span_kind, SpanKind::Client);
        assert!(trace.is_under(c, poll), "{names:?}");
    }

    // The hop: every API request span is the child of the bot's client span that sent it,
    // learned from `traceparent` (a remote parent), not from sharing a process.
    let requests: Vec<&SpanData> = trace.named("request").collect();
    assert_eq!(requests.len(), clients.len(), "{names:?}");
    for r in &requests {
        assert_eq!(r.span_kind, SpanKind::Server);
        assert!(r.parent_span_is_remote, "{r:#?}");
        let parent = clients
            .iter()
            .find(|c| c.span_context.span_id() == r.parent_span_id)
            .unwrap_or_else(|| panic!("no client span is the parent of {r:#?}"));
        assert!(attr(parent, "path").is_some(), "{parent:#?}");
    }

    // The claim: auth (its Clerk verification, the token being new) and the store under it.
    let claim = requests
        .iter()
        .find(|r| attr(r, "route").as_deref() == Some("/api/job-applications/claim"))
        .expect("claim request span");
    let auth = trace
        .children(claim)
        .find(|s| s.name == "auth")
        .expect("auth under the claim");
    let verify = trace
        .children(auth)
        .find(|s| s.name == "clerk")
        .expect("Clerk verification under auth");
    assert_eq!(attr(verify, "operation").as_deref(), Some("verify"));
    assert_eq!(attr(verify, "outcome").as_deref(), Some("ok"));
    assert_eq!(verify.span_kind, SpanKind::Client);
    let store = trace.named("store.claim").next().expect("store.claim span");
    assert!(trace.is_under(store, claim), "{names:?}");
    // Later requests reuse the cached verdict: their auth spans have no Clerk call.
    let status = requests
        .iter()
        .find(|r| attr(r, "route").as_deref() == Some("/api/job-applications/{id}/status"))
        .expect("status request span");
    let status_auth = trace
        .children(status)
        .find(|s| s.name == "auth")
        .expect("auth under the status change");
    assert_eq!(trace.children(status_auth).count(), 0, "{names:?}");
    assert!(
        trace
            .named("store.change_status")
            .any(|s| trace.is_under(s, status)),
        "{names:?}"
    );

    // The bot's token mint (due at its first request) and its Clerk call, in the same trace.
    let mint = trace.named("m2m.mint").next().expect("mint span");
    assert!(trace.is_under(mint, poll), "{names:?}");
    let create = trace
        .children(mint)
        .find(|s| s.name == "clerk")
        .expect("Clerk create under the mint");
    assert_eq!(attr(create, "operation").as_deref(), Some("create"));

    // No secret on any span: not the machine key, not a bearer token or JWT.
    let key = stack
        .mock
        .machine_by_name("JobApplier.Bot")
        .expect("machine")
        .secret_key;
    for s in &trace.spans {
        for kv in &s.attributes {
            let v = kv.value.to_string();
            assert!(
                !v.contains(&key)
                    && !v.contains("Bearer")
                    && !v.contains("eyJ")
                    && !v.contains("ak_"),
                "{}: {} = {v}",
                s.name,
                kv.key
            );
        }
    }
    let _ = provider.shutdown();
}
