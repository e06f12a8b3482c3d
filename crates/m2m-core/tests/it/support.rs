//! Helpers shared by the test modules; each feature set uses a different subset of them.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "client")]
use m2m_core::MintedTokenSource;
use m2m_core::clerk::{ClerkClient, RetryPolicy};
use m2m_core::clock::ManualClock;
#[cfg(feature = "client")]
use m2m_core::settings::MintSettings;
#[cfg(feature = "client")]
use secrecy::SecretString;
use serde_json::json;
use wiremock::ResponseTemplate;

pub const KEY: &str = "ak_test_machine_key_0123456789";

/// A client with fast retries whose sleeps go through `clock`.
pub fn client(base: &str, clock: &ManualClock) -> ClerkClient {
    ClerkClient::builder(base)
        .timeout(Duration::from_secs(5))
        .clock(Arc::new(clock.clone()))
        .retry(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_total_wait: Duration::from_secs(10),
        })
        .build()
        .expect("client")
}

#[cfg(feature = "client")]
pub fn minted(
    client: ClerkClient,
    key: &str,
    settings: MintSettings,
    clock: &ManualClock,
) -> MintedTokenSource {
    MintedTokenSource::new(
        client,
        SecretString::from(key.to_owned()),
        settings,
        Arc::new(clock.clone()),
    )
}

/// A 201 create answer as Clerk sends it, for a token with `lifetime_secs`.
pub fn created(token: &str, id_digit: char, lifetime_secs: i64) -> ResponseTemplate {
    // Current time: the client cross-checks created_at against the HTTP Date header.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let body = json!({
        "object": "machine_to_machine_token",
        "id": format!("mt_{}", id_digit.to_string().repeat(32)),
        "subject": "mch_2xhFjEI5X2qWRvtV13BzSj8H6Dk",
        "claims": null,
        "scopes": ["mch_2yGkLpQ7Y3rXSwtU24CzTk9I7Em"],
        "token": token,
        "revoked": false,
        "revocation_reason": null,
        "expired": false,
        "expiration": now + lifetime_secs * 1000,
        "last_used_at": null,
        "created_at": now,
        "updated_at": now
    });
    ResponseTemplate::new(201).set_body_raw(body.to_string(), "application/json")
}

pub fn clerk_error(status: u16, code: &str) -> ResponseTemplate {
    let body = json!({"errors": [{"message": code, "long_message": format!("{code} long"), "code": code}], "clerk_trace_id": "trace123"});
    ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/json")
}

/// Drops wiremock's server on a thread of its own. Its `Drop` checks the expectations with a
/// blocking wait on a tokio lock; at the end of a test that has just awaited hundreds of
/// `JoinHandle`s the task's cooperative budget is spent, and that wait then spins forever (a
/// CI run hung there). A failed expectation still fails the test: its panic is passed on.
#[allow(dead_code)]
pub fn drop_server(server: wiremock::MockServer) {
    if let Err(panic) = std::thread::spawn(move || drop(server)).join() {
        std::panic::resume_unwind(panic);
    }
}
