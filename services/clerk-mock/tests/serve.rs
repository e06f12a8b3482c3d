//! The binary's public port is the workspace's server: requests reach the mock, bodies are
//! bounded, a client trickling headers is cut off, and SIGTERM is not held up by one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_clerk-mock");
/// Far longer than any bound under test: a wait that reaches it means the bound did not hold.
const PATIENCE: Duration = Duration::from_secs(15);

struct Mock {
    child: Child,
    port: u16,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(vars: &[(&str, &str)]) -> Mock {
    let port = free_port();
    let child = test_support::cli::bin(BIN)
        .env("CLERK_MOCK_BIND", format!("127.0.0.1:{port}"))
        .envs(vars.iter().copied())
        .spawn()
        .expect("spawn clerk-mock");
    let mock = Mock { child, port };
    let started = Instant::now();
    let http = reqwest::Client::new();
    while http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(started.elapsed() < PATIENCE, "clerk-mock did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mock
}

fn seed() -> serde_json::Value {
    let out = test_support::cli::bin(BIN)
        .arg("--print-seed")
        .output()
        .expect("runs");
    serde_json::from_slice(&out.stdout).expect("seed JSON")
}

/// Sends the start of a request, then one header line every 300 ms until the server closes
/// the connection; returns how long that took, or `None` if it was still open after `PATIENCE`.
async fn trickle(port: u16) -> Option<Duration> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    for i in 0.. {
        if started.elapsed() > PATIENCE {
            return None;
        }
        if stream
            .write_all(format!("x-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            return Some(started.elapsed());
        }
        // End of stream or a reset: closed. Bytes (hyper may answer before it closes) or
        // nothing within 300 ms: send the next line.
        let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            return Some(started.elapsed());
        }
    }
    None
}

#[tokio::test]
async fn the_public_port_serves_the_mock_and_refuses_oversized_bodies() {
    let mock = start(&[]).await;
    let base = format!("http://127.0.0.1:{}", mock.port);
    let http = reqwest::Client::new();
    let jwks: serde_json::Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().expect("keys").is_empty());

    let seed = seed();
    let key = seed["machines"][2]["secret_key"].as_str().expect("key");
    let minted = http
        .post(format!("{base}/v1/m2m_tokens"))
        .bearer_auth(key)
        .json(&serde_json::json!({"seconds_until_expiration": 60}))
        .send()
        .await
        .unwrap();
    assert!(minted.status().is_success(), "{}", minted.status());
    let minted: serde_json::Value = minted.json().await.unwrap();
    assert!(minted["token"].as_str().expect("token").starts_with("mt_"));
    // A wrong key is the mock's own 401, passed through unchanged.
    let refused = http
        .post(format!("{base}/v1/m2m_tokens"))
        .bearer_auth("ak_wrong")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(
        refused
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().contains("json"))
    );

    let big = http
        .post(format!("{base}/v1/m2m_tokens"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(vec![b' '; clerk_mock_service::MAX_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
}

/// One raw HTTP/1.1 request; the status line of the answer.
async fn raw_status(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn only_origin_form_requests_reach_the_mock() {
    let mock = start(&[]).await;
    for request in [
        "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let status = raw_status(mock.port, request).await;
        assert!(status.contains(" 400 "), "{request:?}: {status}");
    }
    // An absolute-form target is answered by the mock for its path, never fetched elsewhere.
    let status = raw_status(
        mock.port,
        "GET http://127.0.0.1:9/healthz HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n",
    )
    .await;
    assert!(status.contains(" 200 "), "{status}");
}

#[tokio::test]
async fn a_client_trickling_headers_is_disconnected_after_the_header_read_timeout() {
    let mock = start(&[("HTTP_HEADER_READ_TIMEOUT_SECONDS", "1")]).await;
    let took = trickle(mock.port).await;
    assert!(took.is_some(), "still connected after {PATIENCE:?}");
}

#[tokio::test]
async fn sigterm_with_a_trickling_client_attached_exits_within_the_grace_period() {
    let mut mock = start(&[
        ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "30"),
        ("SHUTDOWN_GRACE_SECONDS", "1"),
    ])
    .await;
    let port = mock.port;
    let trickler = tokio::spawn(trickle(port));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(mock.child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = mock.child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < PATIENCE, "SIGTERM did not stop it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit}");
    trickler.abort();
}
