//! A team's service adopting Clerk M2M: `GET /jobs` answers only the machines it allows, and
//! [`sender`] is how another service of the team calls it.

use std::sync::Arc;

use axum::{Extension, Router, routing::get};
use m2m_core::config::Env;
use m2m_core::{
    AuthLayer, AuthedClient, M2mClientConfig, Principal, Require, Verifier, VerifierConfig,
};
use m2m_core::{clerk::ClerkClient, clock};

/// The receiver's verifier, from its settings: `VerifierConfig::from_env` (`CLERK_API_BASE_URL`,
/// `CLERK_MACHINE_SECRET_KEY`, `CLERK_MACHINE_ID`) or `VerifierConfig::builder()` in code.
pub fn verifier(config: VerifierConfig) -> Result<Arc<Verifier>, Box<dyn std::error::Error>> {
    let clerk = ClerkClient::new(&config.api_base_url)?;
    Ok(Arc::new(config.build(&clerk, clock::system())))
}

/// Every request needs a verified M2M token of one of the `allowed` machines (`mch_…`).
pub fn app(verifier: Arc<Verifier>, allowed: Vec<String>) -> Router {
    Router::new()
        .route(
            "/jobs",
            get(|Extension(caller): Extension<Principal>| async move { caller.actor() }),
        )
        .layer(AuthLayer::new(verifier).require(Require::machine_ids(allowed)))
}

/// A caller: mints a token with its `CLERK_MACHINE_SECRET_KEY`, caches and refreshes it, and on
/// a 401 replaces it and retries once.
pub fn sender(env: &Env<'_>) -> Result<AuthedClient, Box<dyn std::error::Error>> {
    let config = M2mClientConfig::from_env(env, Some("jobs"))?;
    let clerk = ClerkClient::new(&config.api_base_url)?;
    let tokens = config.token_source(&clerk, clock::system())?;
    Ok(AuthedClient::new(reqwest::Client::new(), tokens))
}
