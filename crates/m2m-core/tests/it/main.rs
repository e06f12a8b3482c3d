//! m2m-core integration tests: against wiremock stubs (exact request shapes, failure modes) and
//! against clerk-mock (real Clerk behaviour). Each module is compiled with the features it tests,
//! so `cargo test -p m2m-core --no-default-features --features client` (a sender-only build)
//! runs the sending side's tests alone (docs/m2m-core.md, *Features*).

#[cfg(all(feature = "tower", feature = "axum"))]
mod auth_layer;
#[cfg(feature = "client")]
mod authed_client;
#[cfg(feature = "reqwest-middleware")]
mod bearer_middleware;
#[cfg(feature = "verify")]
mod builder;
mod clerk_client;
#[cfg(all(feature = "cli", feature = "client", feature = "verify"))]
mod config;
#[cfg(all(feature = "tower", feature = "axum"))]
mod fair_budget;
#[cfg(feature = "axum")]
mod fuzz;
#[cfg(feature = "tonic")]
mod grpc_bearer;
#[cfg(feature = "verify")]
mod jwks_authoritative;
#[cfg(feature = "verify")]
mod jwt_cache;
#[cfg(all(feature = "cli", feature = "client", feature = "verify"))]
mod key_rotation;
#[cfg(feature = "admin")]
mod machines;
#[cfg(feature = "verify")]
mod receiver;
#[cfg(feature = "verify")]
mod refresh_ahead;
mod support;
#[cfg(feature = "client")]
mod token_source;
#[cfg(feature = "verify")]
mod verify;
#[cfg(feature = "verify")]
mod verify_attack;
#[cfg(feature = "axum")]
mod verify_http;
