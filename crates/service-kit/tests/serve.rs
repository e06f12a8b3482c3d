//! `serve` sheds slow and idle clients within the bounds of `ServerArgs`, and returns within the
//! shutdown grace period. Each test uses small bounds and waits at most a few times them.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use service_kit::ServerArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Far longer than any bound under test: a wait that reaches it means the bound did not hold.
const PATIENCE: Duration = Duration::from_secs(15);

fn limits() -> ServerArgs {
    ServerArgs {
        http_header_read_timeout_seconds: 30,
        http_request_timeout_seconds: 60,
        http_idle_timeout_seconds: 60,
        http_max_connections: 64,
        http_max_connections_per_client: None,
        shutdown_grace_seconds: 30,
    }
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    /// One message each time `/slow` starts.
    slow_started: mpsc::UnboundedReceiver<()>,
}

/// `/` answers at once, `/slow` after `slow`; `POST /echo` answers its body once it has all
/// of it; `/stall` works 1.2 s before its first await and never answers; `/peer` answers the
/// client's address as `serve` gives it to handlers.
async fn start(limits: ServerArgs, slow: Duration) -> Running {
    let (started_tx, slow_started) = mpsc::unbounded_channel();
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/slow",
            get(move || {
                let started = started_tx.clone();
                async move {
                    let _ = started.send(());
                    tokio::time::sleep(slow).await;
                    "slow ok"
                }
            }),
        )
        .route("/echo", axum::routing::post(|body: String| async { body }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/stall",
            get(|| async {
                // Busy for 1.2 s before its first await, then never answers.
                std::thread::sleep(Duration::from_millis(1200));
                std::future::pending::<()>().await;
                "never"
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(service_kit::serve(listener, router, limits, async {
        let _ = stop_rx.await;
    }));
    Running {
        addr,
        stop,
        server,
        slow_started,
    }
}

fn request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").into_bytes()
}

/// Reads one response (headers and a `content-length` body) off a keep-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a full response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// Connects to `addr`, sends `bytes`, and reads one response: the connection (still open) and
/// the response.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let response = timeout(PATIENCE, read_response(&mut stream)).await.unwrap();
    (stream, response)
}

/// Resolves when the peer closes the connection (or resets it).
async fn closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
}

#[tokio::test]
async fn a_normal_request_is_served() {
    let server = start(limits(), Duration::ZERO).await;
    let (_stream, response) = exchange(server.addr, &request("/")).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
}

#[tokio::test]
async fn a_client_trickling_headers_is_disconnected_after_the_header_timeout() {
    let server = start(
        ServerArgs {
            http_header_read_timeout_seconds: 2,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // One header line a second, for longer than we wait: the server must hang up first.
    let trickle = tokio::spawn(async move {
        write.write_all(b"GET / HTTP/1.1\r\n").await?;
        for i in 0..60 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            write
                .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut rest = Vec::new();
    let hung_up = timeout(PATIENCE, read.read_to_end(&mut rest)).await;
    assert!(hung_up.is_ok(), "still connected after {PATIENCE:?}");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        !text.contains("200 OK"),
        "the trickled request was served: {text}"
    );
    trickle.abort();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(
        ServerArgs {
            http_idle_timeout_seconds: 1,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let (mut stream, response) = exchange(server.addr, &request("/")).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Keep-alive: the connection stays open for more requests, until it has been idle 1 s.
    assert!(
        timeout(PATIENCE, closed(&mut stream)).await.is_ok(),
        "idle connection still open after {PATIENCE:?}"
    );
}

#[tokio::test]
async fn a_slow_request_gets_408_after_the_request_timeout() {
    let server = start(
        ServerArgs {
            http_request_timeout_seconds: 1,
            ..limits()
        },
        Duration::from_secs(3600),
    )
    .await;
    let (_stream, response) = exchange(server.addr, &request("/slow")).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
}

#[tokio::test]
async fn a_request_whose_body_never_arrives_gets_408_after_the_request_timeout() {
    // The handler waits for the body from its first poll: the timer armed then bounds it.
    let server = start(
        ServerArgs {
            http_request_timeout_seconds: 1,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 10\r\n\r\nab")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = timeout(PATIENCE, read_response(&mut stream)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "408 before the timeout: {:?}",
        started.elapsed()
    );

    // With the whole body, the same route answers.
    let (_stream, response) = exchange(
        server.addr,
        b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 2\r\n\r\nab",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ab"), "{response}");
}

#[tokio::test]
async fn the_request_timeout_counts_from_arrival_not_from_the_first_await() {
    // The handler's first poll takes 1.2 s; with a 1 s timeout the 408 comes as soon as it
    // yields, not a whole timeout later.
    let server = start(
        ServerArgs {
            http_request_timeout_seconds: 1,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let sent = std::time::Instant::now();
    let (_stream, response) = exchange(server.addr, &request("/stall")).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        sent.elapsed() < Duration::from_millis(2000),
        "408 only after {:?}: timed from the first await, not from arrival",
        sent.elapsed()
    );
}

#[tokio::test]
async fn the_largest_request_timeout_a_setting_allows_serves_requests() {
    // u64::MAX seconds cannot be added to an instant: the timer must not panic, only never
    // fire (the handler answers after 100 ms, past its first poll, so the timer is armed).
    let server = start(
        ServerArgs {
            http_request_timeout_seconds: u64::MAX,
            ..limits()
        },
        Duration::from_millis(100),
    )
    .await;
    let (_stream, response) = exchange(server.addr, &request("/slow")).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let server = start(
        ServerArgs {
            http_max_connections: 1,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first.write_all(&request("/")).await.unwrap();
    let response = timeout(PATIENCE, read_response(&mut first)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // The first connection is open (keep-alive): the second waits in the backlog, unserved.
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    second.write_all(&request("/")).await.unwrap();
    let mut byte = [0u8; 1];
    let early = timeout(Duration::from_millis(700), second.peek(&mut byte)).await;
    assert!(early.is_err(), "connection 2 was served while 1 was open");

    drop(first);
    let response = timeout(PATIENCE, read_response(&mut second))
        .await
        .expect("connection 2 served once 1 closed");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn shutdown_lets_a_short_request_finish() {
    let mut server = start(limits(), Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&request("/slow")).await.unwrap();
    timeout(PATIENCE, server.slow_started.recv()).await.unwrap();
    let _ = server.stop.send(());
    let response = timeout(PATIENCE, read_response(&mut stream)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let result = timeout(PATIENCE, server.server).await.unwrap().unwrap();
    assert!(result.is_ok());
    // No longer accepting.
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_abandons_a_slow_request_after_the_grace_period() {
    let mut server = start(
        ServerArgs {
            shutdown_grace_seconds: 1,
            ..limits()
        },
        Duration::from_secs(3600),
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&request("/slow")).await.unwrap();
    timeout(PATIENCE, server.slow_started.recv()).await.unwrap();
    let _ = server.stop.send(());
    let returned = timeout(PATIENCE, server.server).await;
    assert!(returned.is_ok(), "serve still waiting after {PATIENCE:?}");
    assert!(returned.unwrap().unwrap().is_ok());
    // The abandoned request's connection is closed, unanswered.
    let mut rest = Vec::new();
    let _ = timeout(PATIENCE, stream.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&rest).contains("slow ok"));
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let server = start(
        ServerArgs {
            http_header_read_timeout_seconds: 1,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    // Nothing at all, and only HTTP/2's connection preface: neither may hold a slot for the
    // idle timeout (60 s here).
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut preface = TcpStream::connect(server.addr).await.unwrap();
    preface
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(
        timeout(PATIENCE, closed(&mut silent)).await.is_ok(),
        "a silent connection still open after {PATIENCE:?}"
    );
    assert!(
        timeout(PATIENCE, closed(&mut preface)).await.is_ok(),
        "a preface-only connection still open after {PATIENCE:?}"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_a_response_is_dropped() {
    // An 8 MiB answer to a client whose receive buffer is small and who never reads: the
    // server's writes stall; the connection must be dropped once they have for the request
    // timeout (1 s here), not held.
    let router = Router::new().route("/big", get(|| async { vec![b'x'; 8 << 20] }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let limits = ServerArgs {
        http_header_read_timeout_seconds: 1,
        http_request_timeout_seconds: 1,
        ..limits()
    };
    let server = tokio::spawn(service_kit::serve(listener, router, limits, async {
        let _ = stop_rx.await;
    }));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(&request("/big")).await.unwrap();
    // Not reading for longer than the bound.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut received = Vec::new();
    let read = timeout(PATIENCE, stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the stalled connection was still open");
    assert!(
        received.len() < 8 << 20,
        "the whole body arrived ({} bytes): the connection was not dropped",
        received.len()
    );
    let _ = stop.send(());
    let _ = server.await;
}

#[tokio::test]
async fn an_idle_http1_connection_waits_for_its_next_request_no_longer_than_the_header_timeout() {
    // hyper times the wait for the next request's head on a keep-alive HTTP/1 connection as
    // header-read time: with the idle timeout far longer, the header-read timeout closes it
    // (docs/operations.md says so).
    let server = start(
        ServerArgs {
            http_header_read_timeout_seconds: 1,
            http_idle_timeout_seconds: 60,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let (mut stream, response) = exchange(server.addr, &request("/")).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let idle = std::time::Instant::now();
    assert!(
        timeout(PATIENCE, closed(&mut stream)).await.is_ok(),
        "idle connection still open after {PATIENCE:?}"
    );
    assert!(
        idle.elapsed() < Duration::from_secs(5),
        "closed only after {:?}, not by the 1 s header-read timeout",
        idle.elapsed()
    );
}

#[tokio::test]
async fn handlers_get_the_peer_address_as_connect_info() {
    let server = start(limits(), Duration::ZERO).await;
    let (stream, response) = exchange(server.addr, &request("/peer")).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let me = stream.local_addr().unwrap().to_string();
    assert!(response.ends_with(&me), "expected {me}: {response}");
}

/// An HTTP/2 client over plain TCP (prior knowledge): its request handle, its PING handle, and
/// the task driving its connection, which ends when the server closes the connection.
async fn h2_client(
    addr: SocketAddr,
    builder: h2::client::Builder,
) -> (h2::client::SendRequest<Bytes>, h2::PingPong, JoinHandle<()>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, mut connection) = builder.handshake::<_, Bytes>(tcp).await.unwrap();
    let ping = connection.ping_pong().expect("the first ping_pong");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (send, ping, driver)
}

/// Sends `GET path` on `send`: the response, its body not read.
async fn h2_get(
    send: &mut h2::client::SendRequest<Bytes>,
    path: &str,
) -> axum::http::Response<h2::RecvStream> {
    let request = axum::http::Request::get(format!("http://test{path}"))
        .body(())
        .unwrap();
    let (response, _) = send
        .clone()
        .ready()
        .await
        .unwrap()
        .send_request(request, true)
        .unwrap();
    timeout(PATIENCE, response).await.unwrap().unwrap()
}

#[tokio::test]
async fn an_http2_connection_kept_alive_only_by_pings_is_closed_after_the_idle_timeout() {
    // One request, then a PING every 250 ms: PINGs are not activity, so the connection is
    // idle and must be closed 1 s (+ a quarter) later; the close itself is bounded by the
    // header-read timeout (1 s) even if the client never acknowledges it.
    let server = start(
        ServerArgs {
            http_idle_timeout_seconds: 1,
            http_header_read_timeout_seconds: 1,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let (mut send, mut ping, driver) = h2_client(server.addr, h2::client::Builder::new()).await;
    let response = h2_get(&mut send, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let pinger = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if ping.ping(h2::Ping::opaque()).await.is_err() {
                break;
            }
        }
    });
    assert!(
        timeout(PATIENCE, driver).await.is_ok(),
        "a connection sending only PINGs still open after {PATIENCE:?}"
    );
    pinger.abort();
    // Held until here: dropping every handle would make the client close it itself.
    drop(send);
}

/// A download as the API serves resumes: a slot of a small pool, held by the body until the
/// body is dropped (sent to the end, or abandoned with its connection).
struct Download {
    data: Option<Bytes>,
    _slot: OwnedSemaphorePermit,
}

impl http_body::Body for Download {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.data.take().map(|d| Ok(http_body::Frame::data(d))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        // A content-length, so that `read_response` knows where the body ends.
        http_body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// `/download` answers 64 KiB while one of `slots` is free, else 503.
async fn start_downloads(limits: ServerArgs, slots: usize) -> (SocketAddr, oneshot::Sender<()>) {
    let slots = Arc::new(Semaphore::new(slots));
    let router = Router::new().route(
        "/download",
        get(move || {
            let slots = slots.clone();
            async move {
                match slots.try_acquire_owned() {
                    Ok(slot) => Response::new(Body::new(Download {
                        data: Some(Bytes::from(vec![b'x'; 64 << 10])),
                        _slot: slot,
                    })),
                    Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = oneshot::channel::<()>();
    tokio::spawn(service_kit::serve(listener, router, limits, async {
        let _ = stop_rx.await;
    }));
    (addr, stop)
}

#[tokio::test]
async fn a_zero_window_http2_download_is_dropped_after_the_request_timeout_and_frees_its_slot() {
    // The client grants its streams no flow-control window: hyper never writes a DATA frame,
    // so no socket write waits and the write-stall bound never applies. The body, never
    // polled, must cost the connection after the request timeout (1 s), and give its slot
    // back. The idle timeout (60 s) is far off: it must not be what frees the slot.
    let (addr, _stop) = start_downloads(
        ServerArgs {
            http_request_timeout_seconds: 1,
            ..limits()
        },
        1,
    )
    .await;
    let mut zero = h2::client::Builder::new();
    zero.initial_window_size(0);
    let (mut send, mut ping, driver) = h2_client(addr, zero).await;
    let response = h2_get(&mut send, "/download").await;
    assert_eq!(response.status(), StatusCode::OK);
    // The client stays busy (PINGs), as the attack did.
    let pinger = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if ping.ping(h2::Ping::opaque()).await.is_err() {
                break;
            }
        }
    });

    let (_other, busy) = exchange(addr, &request("/download")).await;
    assert!(
        busy.starts_with("HTTP/1.1 503"),
        "the slot was free: {busy}"
    );

    assert!(
        timeout(PATIENCE, driver).await.is_ok(),
        "the stalled download's connection still open after {PATIENCE:?}"
    );
    pinger.abort();
    drop(send);
    let freed = timeout(PATIENCE, async {
        loop {
            let (_stream, answer) = exchange(addr, &request("/download")).await;
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the slot freed once the stalled connection was dropped");
    assert!(freed.ends_with(&"x".repeat(64 << 10)));
}

#[tokio::test]
async fn an_http2_download_read_at_once_is_served_whole() {
    // The body watch must not cut a client that takes what it asked for.
    let (addr, _stop) = start_downloads(
        ServerArgs {
            http_request_timeout_seconds: 1,
            ..limits()
        },
        1,
    )
    .await;
    let (mut send, _ping, _driver) = h2_client(addr, h2::client::Builder::new()).await;
    for _ in 0..3 {
        let response = h2_get(&mut send, "/download").await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut got = 0;
        while let Some(chunk) = timeout(PATIENCE, body.data()).await.unwrap() {
            let chunk = chunk.unwrap();
            got += chunk.len();
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        assert_eq!(got, 64 << 10);
    }
}

/// A connection from `source` (a loopback address) to `addr`.
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn one_client_address_holds_no_more_than_its_share_of_connections() {
    // Keep-alive connections that send a request now and then (the attack: one /healthz every
    // 8 s on each) from one address take at most its share (2 of 8 here); another address is
    // still served. Loopback is no exception.
    let server = start(
        ServerArgs {
            http_max_connections: 8,
            http_max_connections_per_client: Some(2),
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let (stream, response) = exchange(server.addr, &request("/")).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        held.push(stream);
    }

    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let _ = third.write_all(&request("/")).await;
    let mut rest = Vec::new();
    let closed = timeout(PATIENCE, third.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "a third connection from one address was held open"
    );
    assert!(
        rest.is_empty(),
        "a third connection from one address was served: {}",
        String::from_utf8_lossy(&rest)
    );

    let mut other = connect_from("127.0.0.2", server.addr).await;
    other.write_all(&request("/")).await.unwrap();
    let response = timeout(PATIENCE, read_response(&mut other)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // The two held ones go on being served, and closing one gives its place back.
    for stream in &mut held {
        stream.write_all(&request("/")).await.unwrap();
        let response = timeout(PATIENCE, read_response(stream)).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    drop(held.pop());
    let served = timeout(PATIENCE, async {
        loop {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            let _ = stream.write_all(&request("/")).await;
            let mut buf = [0u8; 12];
            if stream.read_exact(&mut buf).await.is_ok() {
                return buf;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a place freed by a closed connection");
    assert_eq!(&served, b"HTTP/1.1 200");
}
