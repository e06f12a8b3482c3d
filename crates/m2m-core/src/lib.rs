//! Clerk machine-to-machine (M2M) authentication for Rust services: send a token, verify one.
//!
//! # Receiving: verify callers (axum, tonic, any tower/hyper service)
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Extension, Router, routing::get};
//! use m2m_core::{AuthLayer, Principal, Require, VerifierConfig, clerk::ClerkClient, clock, config::Env};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // CLERK_API_BASE_URL, CLERK_MACHINE_SECRET_KEY, CLERK_MACHINE_ID, … (docs/verification.md)
//! let config = VerifierConfig::from_env(&Env::process())?;
//! let verifier = Arc::new(config.build(&ClerkClient::new(&config.api_base_url)?, clock::system()));
//! let app = Router::new()
//!     .route("/jobs", get(|Extension(caller): Extension<Principal>| async move { caller.actor() }))
//!     .layer(AuthLayer::new(verifier).require(Require::machine_ids(["mch_2JobApplierBot0000000000000"])));
//! axum::serve(tokio::net::TcpListener::bind("0.0.0.0:3000").await?, app).await?;
//! # Ok(()) }
//! ```
//!
//! [`AuthLayer`] is a tower layer: the same line guards a tonic server
//! (`Server::builder().layer(..)`, with [`AuthLayer::require_for`] per gRPC method, answering
//! `UNAUTHENTICATED` / `PERMISSION_DENIED` / `UNAVAILABLE`) or a hyper service. In axum handlers,
//! [`Principal`] and the extractors of [`auth_axum`] work with or without the layer.
//!
//! # Sending: attach a token (reqwest, reqwest-middleware, tonic)
//!
//! ```no_run
//! use m2m_core::{AuthedClient, M2mClientConfig, clerk::ClerkClient, clock, config::Env};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // CLERK_API_BASE_URL and CLERK_MACHINE_SECRET_KEY (mints), or a pre-created CLERK_M2M_TOKEN
//! let config = M2mClientConfig::from_env(&Env::process(), Some("job-applier"))?;
//! let tokens = config.token_source(&ClerkClient::new(&config.api_base_url)?, clock::system())?;
//! let api = AuthedClient::new(reqwest::Client::new(), tokens);
//! let response = api.send(|http| http.get("https://jobs.example.com/api/whoami")).await?;
//! # Ok(()) }
//! ```
//!
//! The [`TokenSource`] mints with the machine key, caches the token and refreshes it before it
//! expires (one Clerk call however many callers), and on a 401 `AuthedClient` replaces exactly
//! the rejected token and retries once. The same source plugs into a `reqwest_middleware` stack
//! (`BearerMiddleware`, feature `reqwest-middleware`) or a tonic channel (`grpc::BearerLayer`,
//! feature `tonic`).
//!
//! # Features
//!
//! | feature | gives | default |
//! |---|---|---|
//! | `client` | [`TokenSource`], [`MintedTokenSource`], [`AuthedClient`], [`M2mClientConfig`], [`config::ServiceTokens`] | yes |
//! | `verify` | [`Verifier`], [`VerifierConfig`], [`Principal`], [`Require`], [`AuthRejection`], [`verifier`]; pulls in jsonwebtoken, moka, governor | yes |
//! | `axum` | [`auth_axum`] extractors; implies `verify` | yes |
//! | `tower` | [`AuthLayer`]; implies `verify` | yes |
//! | `cli` | the settings as clap groups and the `from_env` constructors ([`config`]) | yes |
//! | `tonic` | `grpc::BearerLayer` for tonic channels; implies `client` | no |
//! | `reqwest-middleware` | `BearerMiddleware`; implies `client` | no |
//! | `admin` | `clerk::MachineAdmin`: machines, scopes and secret keys with the instance key | no |
//!
//! A sender-only service takes `default-features = false, features = ["client", "cli"]` and
//! compiles none of the verification stack.
//!
//! # Configuring in code
//!
//! The `from_env` constructors and the clap groups live in [`config`]; the settings themselves
//! (caches, budgets, key sources, token lifetimes) are plain structs in [`settings`], with the
//! library's defaults. A verifier configured in code, without the environment:
//!
//! ```
//! use m2m_core::{VerifierConfig, clerk::ClerkClient, clock};
//! use secrecy::SecretString;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = VerifierConfig::builder()
//!     .api_base_url("https://api.clerk.com/v1")
//!     .machine_secret_key(SecretString::from("ak_0123456789abcdef"))
//!     .machine_id("mch_2JobTrackerApi00000000000")
//!     .build()?;
//! let verifier = config.build(&ClerkClient::new(&config.api_base_url)?, clock::system());
//! # drop(verifier);
//! # Ok(()) }
//! ```
//!
//! No token or key is ever logged; `Debug` of every secret-bearing type is redacted. Runnable
//! examples against clerk-mock or Clerk: `crates/m2m-examples`.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "verify")]
mod auth;
#[cfg(feature = "axum")]
pub mod auth_axum;
#[cfg(feature = "tower")]
mod auth_tower;
#[cfg(feature = "client")]
mod authed_client;
pub mod clerk;
pub mod clock;
pub mod config;
#[cfg(feature = "verify")]
pub mod dangerous;
mod error;
#[cfg(feature = "tonic")]
pub mod grpc;
mod machine_key;
#[cfg(feature = "reqwest-middleware")]
mod reqwest_mw;
mod secret;
pub mod settings;
mod token_format;
#[cfg(feature = "client")]
mod token_source;
mod values;
#[cfg(feature = "verify")]
pub mod verifier;
#[cfg(feature = "verify")]
mod verify;

#[cfg(feature = "verify")]
pub use auth::{AuthRejection, Require};
#[cfg(feature = "tower")]
pub use auth_tower::AuthLayer;
#[cfg(feature = "client")]
pub use authed_client::{AuthedClient, AuthedRequestError};
pub use machine_key::MachineKey;
#[cfg(feature = "reqwest-middleware")]
pub use reqwest_mw::BearerMiddleware;
pub use secret::BearerToken;
#[cfg(feature = "client")]
pub use token_source::{M2mClientConfig, MintedTokenSource, TokenError, TokenSource};
#[cfg(feature = "verify")]
pub use verify::{Principal, Verifier, VerifierConfig, VerifyError};
