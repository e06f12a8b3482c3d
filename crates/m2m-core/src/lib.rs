//! Clerk machine-to-machine (M2M) authentication for Rust services.
//!
//! - [`clerk::ClerkClient`]: typed calls to Clerk's `/m2m_tokens` endpoints and JWKS, with typed
//!   errors and bounded retries of transient failures.
//! - [`TokenSource`]: where a caller's token comes from — [`MintedTokenSource`] (minted with the
//!   machine secret key, cached, refreshed `refresh_buffer` before expiry, single-flight, serving
//!   the current token through refresh failures), a pre-created static token, or none.
//! - [`Verifier`]: verification of incoming Clerk session JWTs and M2M tokens (opaque, cached
//!   by hash, single-flight; JWT, locally with the JWKS), with an axum extractor in [`auth_axum`].
//! - [`AuthedClient`]: reqwest glue that adds the token and, on a 401, replaces exactly that token
//!   and retries once.
//!
//! # Token lifecycle (minted)
//!
//! ```text
//! t=0            first token(): POST /m2m_tokens → cache {token, expires_at, refresh_at}
//! 0..L-B         token() returns the cached token (lock-free read, no Clerk call)
//! L-B            first caller after refresh_at takes the refresh lock and mints; concurrent
//!                callers wait for it and share its result (one create call)
//! refresh fails  the still-valid token keeps being served; next attempt after a backoff
//! L              with no valid token left, token() returns TokenError
//! 401 from API   AuthedClient calls invalidate(&that_token), mints, retries once
//! ```
//! (`L` = lifetime from Clerk's own `expiration - created_at`, `B` = refresh buffer.)
//!
//! No token or key is ever logged; `Debug` of every secret-bearing type is redacted.

mod auth;
#[cfg(feature = "axum")]
pub mod auth_axum;
#[cfg(feature = "tower")]
mod auth_tower;
mod authed_client;
pub mod clerk;
pub mod clock;
pub mod config;
#[cfg(feature = "tonic")]
pub mod grpc;
#[cfg(feature = "reqwest-middleware")]
mod reqwest_mw;
mod secret;
pub mod token_source;
pub mod verify;

pub use auth::{AuthRejection, Require};
#[cfg(feature = "tower")]
pub use auth_tower::{AuthBody, AuthLayer, AuthService};
pub use authed_client::{AuthedClient, AuthedRequestError};
pub use clerk::{ClerkClient, ClerkError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, Env, M2mClientConfig};
#[cfg(feature = "reqwest-middleware")]
pub use reqwest_mw::BearerMiddleware;
pub use secret::{BearerToken, fingerprint};
pub use token_source::{
    MintSettings, MintedTokenSource, ServiceTokens, TokenError, TokenSource,
    service_tokens_env_name,
};
pub use verify::{
    MachinePrincipal, Principal, UserPrincipal, Verifier, VerifierConfig, VerifyError,
};
