//! `grpc::BearerLayer` over a fake channel: the token on every call; on UNAUTHENTICATED exactly
//! that token is invalidated, and a call whose request body is complete is sent once more.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use bytes::Bytes;
use clerk_mock::{ClerkMock, Endpoint};
use futures::SinkExt;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use m2m_core::clock::ManualClock;
use m2m_core::grpc::BearerLayer;
use m2m_core::settings::MintSettings;
use m2m_core::{BearerToken, TokenSource};
use tonic::body::Body;
use tower::{Layer, Service, ServiceExt};

use crate::support::{client, minted};

/// What the fake server saw: (authorization, body) per call.
type Seen = Arc<Mutex<Vec<(String, Bytes)>>>;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Trailers-only UNAUTHENTICATED for the first token it sees; the others are accepted.
    RefuseFirst,
    /// UNAUTHENTICATED for every token.
    RefuseAll,
    /// Every token accepted.
    AcceptAll,
}

/// A gRPC server. It reads a body only when it accepts the call, and signals `arrived` when a
/// call's headers are in, before reading its body.
fn server(
    seen: Seen,
    mode: Mode,
    arrived: Arc<Notify>,
) -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    tower::service_fn(move |req: Request<Body>| {
        let (seen, first, arrived) = (seen.clone(), first.clone(), arrived.clone());
        async move {
            arrived.notify_one();
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .unwrap_or_default();
            let refuse = match mode {
                Mode::RefuseAll => true,
                Mode::AcceptAll => false,
                Mode::RefuseFirst => {
                    let mut first = first.lock().expect("lock");
                    first.get_or_insert_with(|| auth.clone()) == &auth
                }
            };
            let response = Response::builder().header("content-type", "application/grpc");
            if refuse {
                seen.lock().expect("lock").push((auth, Bytes::new()));
                let r = response
                    .header("grpc-status", "16")
                    .header("grpc-message", "token-revoked")
                    .body(Body::empty())
                    .expect("response");
                return Ok(r);
            }
            let body = req.into_body().collect().await.expect("body").to_bytes();
            seen.lock().expect("lock").push((auth, body.clone()));
            Ok(response
                .header("grpc-status", "0")
                .body(Body::new(Full::new(body)))
                .expect("response"))
        }
    })
}

async fn minted_tokens(mock: &ClerkMock, clock: &ManualClock) -> TokenSource {
    let key = mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .secret_key;
    TokenSource::Minted(minted(
        client(&mock.api_url(), clock),
        &key,
        MintSettings::default(),
        clock,
    ))
}

fn unary(message: &'static [u8]) -> Request<Body> {
    Request::builder()
        .uri("http://api/echo.v1.Echo/Say")
        .header("content-type", "application/grpc")
        .body(Body::new(Full::new(Bytes::from_static(message))))
        .expect("request")
}

fn status(r: &Response<Body>) -> &str {
    r.headers()["grpc-status"].to_str().unwrap_or_default()
}

#[tokio::test]
async fn unauthenticated_replaces_that_token_and_a_unary_call_is_sent_once_more() {
    let mock = ClerkMock::start_demo().await;
    let clock = ManualClock::new();
    let seen = Seen::default();
    let tokens = minted_tokens(&mock, &clock).await;
    let channel =
        BearerLayer::new(tokens).layer(server(seen.clone(), Mode::RefuseFirst, Arc::default()));
    let response = channel
        .oneshot(unary(b"\0\0\0\0\x02hi"))
        .await
        .expect("answer");
    assert_eq!(status(&response), "0");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].0.starts_with("Bearer mt_") && seen[1].0.starts_with("Bearer mt_"));
    assert_ne!(seen[0].0, seen[1].0, "the retry carries a fresh token");
    assert_eq!(
        seen[1].1,
        Bytes::from_static(b"\0\0\0\0\x02hi"),
        "the body was replayed"
    );
    assert_eq!(mock.calls(Endpoint::CreateToken), 2);
}

#[tokio::test]
async fn a_second_unauthenticated_is_returned_not_looped_and_a_static_token_is_not_retried() {
    let mock = ClerkMock::start_demo().await;
    let clock = ManualClock::new();
    let seen = Seen::default();
    let channel = BearerLayer::new(minted_tokens(&mock, &clock).await).layer(server(
        seen.clone(),
        Mode::RefuseAll,
        Arc::default(),
    ));
    let response = channel.oneshot(unary(b"x")).await.expect("answer");
    assert_eq!(status(&response), "16");
    assert_eq!(seen.lock().expect("lock").len(), 2);

    let seen = Seen::default();
    let precreated = TokenSource::Static(BearerToken::new("mt_precreated"));
    let channel =
        BearerLayer::new(precreated).layer(server(seen.clone(), Mode::RefuseAll, Arc::default()));
    let response = channel.oneshot(unary(b"x")).await.expect("answer");
    assert_eq!(status(&response), "16");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        vec![("Bearer mt_precreated".to_owned(), Bytes::new())]
    );
}

#[tokio::test]
async fn an_open_client_stream_is_not_retried_but_its_token_is_replaced() {
    let mock = ClerkMock::start_demo().await;
    let clock = ManualClock::new();
    let seen = Seen::default();
    let tokens = minted_tokens(&mock, &clock).await;
    let first = tokens.token().await.expect("token").expect("some");
    let channel = BearerLayer::new(tokens.clone()).layer(server(
        seen.clone(),
        Mode::RefuseFirst,
        Arc::default(),
    ));
    // One message is ready; the stream stays open (the sender is kept).
    let (mut tx, rx) =
        futures::channel::mpsc::channel::<Result<http_body::Frame<Bytes>, tonic::Status>>(4);
    tx.send(Ok(http_body::Frame::data(Bytes::from_static(b"one"))))
        .await
        .expect("send");
    let request = Request::builder()
        .uri("http://api/echo.v1.Echo/Stream")
        .header("content-type", "application/grpc")
        .body(Body::new(StreamBody::new(rx)))
        .expect("request");
    let response = channel.oneshot(request).await.expect("answer");
    assert_eq!(status(&response), "16", "passed on, not retried");
    assert_eq!(seen.lock().expect("lock").len(), 1);
    let next = tokens.token().await.expect("token").expect("some");
    assert_ne!(next, first, "the rejected token was invalidated");
    drop(tx);
}

#[tokio::test]
async fn a_streamed_body_reaches_the_server_whole_read_frames_first() {
    let seen = Seen::default();
    let arrived = Arc::new(Notify::new());
    let precreated = TokenSource::Static(BearerToken::new("mt_precreated"));
    let channel =
        BearerLayer::new(precreated).layer(server(seen.clone(), Mode::AcceptAll, arrived.clone()));
    let (mut tx, rx) =
        futures::channel::mpsc::channel::<Result<http_body::Frame<Bytes>, tonic::Status>>(4);
    tx.send(Ok(http_body::Frame::data(Bytes::from_static(b"one-"))))
        .await
        .expect("send");
    let request = Request::builder()
        .uri("http://api/echo.v1.Echo/Stream")
        .header("content-type", "application/grpc")
        .body(Body::new(StreamBody::new(rx)))
        .expect("request");
    let call = tokio::spawn(channel.oneshot(request));
    // The call reached the server while its stream was still open; the rest follows.
    arrived.notified().await;
    tx.send(Ok(http_body::Frame::data(Bytes::from_static(b"two"))))
        .await
        .expect("send");
    drop(tx);
    let response = call.await.expect("task").expect("answer");
    assert_eq!(status(&response), "0");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        vec![(
            "Bearer mt_precreated".to_owned(),
            Bytes::from_static(b"one-two")
        )]
    );
}

#[tokio::test]
async fn no_token_fails_the_call_with_unavailable_before_it_is_sent() {
    let mock = ClerkMock::start_demo().await;
    mock.set_outage(Some(503));
    let clock = ManualClock::new();
    let tokens = TokenSource::Minted(minted(
        client(&mock.api_url(), &clock),
        "ak_any",
        MintSettings {
            lifetime: Duration::from_secs(60),
            refresh_buffer: Duration::from_secs(10),
            ..Default::default()
        },
        &clock,
    ));
    let seen = Seen::default();
    let channel =
        BearerLayer::new(tokens).layer(server(seen.clone(), Mode::RefuseFirst, Arc::default()));
    let err = channel.oneshot(unary(b"x")).await.expect_err("no token");
    let status = tonic::Status::from_error(err);
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(seen.lock().expect("lock").is_empty());
}
