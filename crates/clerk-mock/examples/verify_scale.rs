//! Verify latency with many stored tokens (issue 32): mints 300,000 opaque tokens, then times
//! `POST /m2m_tokens/verify` of the newest over HTTP.
//! `cargo run --release -p clerk-mock --example verify_scale`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use clerk_mock::ClerkMock;
use serde_json::json;

const TOKENS: usize = 300_000;
const VERIFIES: usize = 500;

#[tokio::main]
async fn main() {
    let mock = ClerkMock::start_demo().await;
    let applier = mock.machine_by_name("JobApplier.Bot").unwrap();
    let api = mock.machine_by_name("JobTracker.API").unwrap();
    let mut newest = String::new();
    for _ in 0..TOKENS {
        newest = mock.mint(&applier.id, &json!({}))["token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let http = reqwest::Client::new();
    let url = format!("{}/m2m_tokens/verify", mock.uri());
    let mut times = Vec::with_capacity(VERIFIES);
    for _ in 0..VERIFIES {
        let started = Instant::now();
        let answer = http
            .post(&url)
            .bearer_auth(&api.secret_key)
            .json(&json!({ "token": newest }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let _ = answer.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / VERIFIES as u32;
    println!(
        "{TOKENS} tokens stored: verify over HTTP mean {mean:?}, median {:?}, p99 {:?}",
        times[VERIFIES / 2],
        times[VERIFIES * 99 / 100]
    );
}
