//! An axum service: `GET /whoami` for any authenticated caller, `GET /jobs` only for the machines
//! in `ALLOWED_MACHINE_IDS`. Against clerk-mock (`cargo run -p clerk-mock-service`), as the
//! seeded JobTracker.API machine (swap in your own values for real Clerk):
//!
//! ```text
//! CLERK_API_BASE_URL=http://localhost:8080/v1 \
//! CLERK_MACHINE_SECRET_KEY=ak_jobtracker_api_mock_machine_secret_key_0001 \
//! CLERK_MACHINE_ID=mch_2JobTrackerApi0000000000000 \
//! ALLOWED_MACHINE_IDS=mch_2JobApplierBot0000000000000 \
//! cargo run -p m2m-examples --example axum_receiver
//! ```

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Json, Router};
use m2m_core::clerk::ClerkClient;
use m2m_core::config::Env;
use m2m_core::{AuthLayer, Principal, Require, Verifier, VerifierConfig, clock};
use serde_json::{Value, json};

/// The verifier: `CLERK_API_BASE_URL`, `CLERK_MACHINE_SECRET_KEY`, `CLERK_MACHINE_ID` (and the
/// other settings of docs/verification.md).
pub fn verifier(env: &Env<'_>) -> Result<Arc<Verifier>, Box<dyn std::error::Error>> {
    let config = VerifierConfig::from_env(env)?;
    let clerk = ClerkClient::new(&config.api_base_url)?;
    Ok(Arc::new(config.build(&clerk, clock::system())))
}

/// Every route needs a verified caller; `/jobs` needs one of the `allowed` machines.
pub fn app(verifier: Arc<Verifier>, allowed: Vec<String>) -> Router {
    let bots_only = AuthLayer::new(verifier.clone()).require(Require::machine_ids(allowed));
    Router::new()
        .route("/whoami", get(hello))
        .route("/jobs", get(hello).route_layer(bots_only))
        .layer(AuthLayer::new(verifier))
}

async fn hello(Extension(caller): Extension<Principal>) -> Json<Value> {
    Json(json!({ "caller": caller.actor() }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::process();
    let allowed = env.get("ALLOWED_MACHINE_IDS").unwrap_or_default();
    let allowed = allowed.split(',').map(str::to_owned).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(verifier(&env)?, allowed)).await?;
    Ok(())
}
