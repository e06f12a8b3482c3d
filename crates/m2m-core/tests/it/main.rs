//! m2m-core integration tests: against wiremock stubs (exact request shapes, failure modes) and
//! against clerk-mock (real Clerk behaviour).

mod auth_layer;
mod authed_client;
#[cfg(feature = "reqwest-middleware")]
mod bearer_middleware;
mod clerk_client;
mod config;
mod fuzz;
#[cfg(feature = "tonic")]
mod grpc_bearer;
mod jwt_cache;
mod receiver;
mod refresh_ahead;
mod support;
mod token_source;
mod verify;
mod verify_attack;
mod verify_http;
