//! Measures what HTTP/2 clients can hold past `serve`'s bounds (issue 32): connections kept
//! open by PINGs after the idle timeout, and download slots held by a zero flow-control window
//! after the request timeout. `cargo run -p service-kit --features server --example held`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use service_kit::ServerArgs;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const CONNECTIONS: usize = 200;
const SLOTS: usize = 16;

/// A body that holds its slot until dropped.
struct Download(Option<Bytes>, #[allow(dead_code)] OwnedSemaphorePermit);

impl http_body::Body for Download {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|d| Ok(http_body::Frame::data(d))))
    }
}

/// Opens an HTTP/2 connection with `window`, sends `GET path`, waits for the answer's head,
/// then PINGs every second. Resolves when the server closes the connection.
async fn hold(addr: std::net::SocketAddr, path: &'static str, window: u32) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, mut conn) = h2::client::Builder::new()
        .initial_window_size(window)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let mut ping = conn.ping_pong().unwrap();
    let driver = tokio::spawn(conn);
    let request = axum::http::Request::get(format!("http://held{path}"))
        .body(())
        .unwrap();
    let (response, _) = send
        .clone()
        .ready()
        .await
        .unwrap()
        .send_request(request, true)
        .unwrap();
    let _response = response.await;
    tokio::spawn(async move {
        while ping.ping(h2::Ping::opaque()).await.is_ok() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let _ = driver.await;
    drop(send);
}

#[tokio::main]
async fn main() {
    let slots = Arc::new(Semaphore::new(SLOTS));
    let router = Router::new().route("/", get(|| async { "ok" })).route(
        "/download",
        get({
            let slots = slots.clone();
            move || {
                let slots = slots.clone();
                async move {
                    match slots.try_acquire_owned() {
                        Ok(slot) => Response::new(Body::new(Download(
                            Some(Bytes::from(vec![b'x'; 1 << 20])),
                            slot,
                        ))),
                        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    }
                }
            }
        }),
    );
    let limits = ServerArgs {
        http_header_read_timeout_seconds: 2,
        http_request_timeout_seconds: 2,
        http_idle_timeout_seconds: 2,
        http_max_connections: 1024,
        http_max_connections_per_client: Some(1024),
        shutdown_grace_seconds: 1,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(service_kit::serve(
        listener,
        router,
        limits,
        std::future::pending(),
    ));

    let pinging: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(hold(addr, "/", 65_535)))
        .collect();
    let zero: Vec<_> = (0..SLOTS)
        .map(|_| tokio::spawn(hold(addr, "/download", 0)))
        .collect();
    // Idle and request timeouts 2 s; a quarter more, the 2 s close bound, and a margin.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let open = pinging.iter().filter(|h| !h.is_finished()).count();
    let held = SLOTS - slots.available_permits();
    let zero_open = zero.iter().filter(|h| !h.is_finished()).count();
    println!(
        "after 8 s (idle and request timeouts 2 s): {open} of {CONNECTIONS} PINGing connections open; \
         {held} of {SLOTS} download slots held by zero-window clients ({zero_open} connections open)"
    );
}
