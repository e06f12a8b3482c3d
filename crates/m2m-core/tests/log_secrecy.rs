//! No token or key reaches the logs at any level, through a whole mint–use–refresh–401 cycle.
//!
//! Its own test binary with a global subscriber: a thread-local one would miss events whose
//! callsites other tests, running in parallel without a subscriber, had already registered.
#![cfg(feature = "client")]

#[path = "it/support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clerk_mock::ClerkMock;
use m2m_core::clock::ManualClock;
use m2m_core::settings::MintSettings;
use m2m_core::{AuthedClient, TokenSource};
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use support::{client, minted};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_token_or_key_is_logged_at_any_level() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber in this process");

    let mock = ClerkMock::start_demo().await;
    let key = mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .secret_key;
    let clock = ManualClock::new();
    let source = minted(
        client(&mock.api_url(), &clock),
        &key,
        MintSettings::default(),
        &clock,
    );
    let authed = AuthedClient::new(reqwest::Client::new(), TokenSource::Minted(source.clone()));
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;

    let mut seen = Vec::new();
    let url = api.uri();
    for _ in 0..3 {
        authed.send(|h| h.get(&url)).await.expect("sent");
        seen.push(source.token().await.expect("token"));
    }
    clock.advance(Duration::from_secs(3301));
    seen.push(source.token().await.expect("refreshed"));
    mock.set_outage(Some(503));
    clock.advance(Duration::from_secs(3301));
    seen.push(source.token().await.expect("stale served"));
    mock.set_outage(None);

    let logs = String::from_utf8(capture.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .expect("utf8");
    assert!(
        logs.contains("M2M token created"),
        "the cycle was logged:\n{logs}"
    );
    assert!(
        logs.contains("refresh failed"),
        "the failed refresh was logged"
    );
    assert!(
        logs.contains("using cached M2M token"),
        "cache use at DEBUG"
    );
    assert!(!logs.contains(&key), "machine key leaked into logs");
    assert!(!logs.contains(&mock.instance_secret_key()));
    for t in &seen {
        assert!(!logs.contains(t.expose()), "token leaked into logs");
    }
}
