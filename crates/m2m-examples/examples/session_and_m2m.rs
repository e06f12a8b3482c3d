//! One axum router for people and services: a browser's Clerk session JWT and a bot's M2M token
//! reach the same routes, and each route says who may call it. `GET /me` is for signed-in users
//! only; `GET /jobs` for users and the machines in `ALLOWED_MACHINE_IDS`; `/healthz` is public.
//! Against clerk-mock (`cargo run -p clerk-mock-service`), as the seeded JobTracker.API machine:
//!
//! ```text
//! CLERK_API_BASE_URL=http://localhost:8080/v1 \
//! CLERK_SECRET_KEY=sk_test_jobtracker_mock_instance_secret_key \
//! CLERK_MACHINE_SECRET_KEY=ak_jobtracker_api_mock_machine_secret_key_0001 \
//! CLERK_MACHINE_ID=mch_2JobTrackerApi0000000000000 \
//! CLERK_AUTHORIZED_PARTIES=http://localhost:5000 \
//! ALLOWED_MACHINE_IDS=mch_2JobApplierBot0000000000000 \
//! cargo run -p m2m-examples --example session_and_m2m
//! ```
//!
//! Session JWTs are checked locally against the instance's JWKS (fetched with `CLERK_SECRET_KEY`,
//! or `CLERK_JWT_KEY` for no network at all), with `azp` among `CLERK_AUTHORIZED_PARTIES`; M2M
//! tokens at Clerk with this machine's key, so Clerk checks the token is scoped to it.

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Json, Router};
use m2m_core::auth_axum::RequireUser;
use m2m_core::clerk::ClerkClient;
use m2m_core::config::Env;
use m2m_core::{AuthLayer, Principal, Require, Verifier, VerifierConfig, clock};
use serde_json::{Value, json};

/// The verifier, for both kinds of token (the settings of docs/verification.md).
pub fn verifier(env: &Env<'_>) -> Result<Arc<Verifier>, Box<dyn std::error::Error>> {
    let config = VerifierConfig::from_env(env)?;
    let clerk = ClerkClient::new(&config.api_base_url)?;
    Ok(Arc::new(config.build(&clerk, clock::system())))
}

/// The routes and who may call them; any other path needs an authenticated caller of either kind.
pub fn app(verifier: Arc<Verifier>, machines: Vec<String>) -> Router {
    let auth = AuthLayer::new(verifier.clone())
        .public("/healthz")
        .require_for("/me", Require::user())
        .require_for("/jobs", Require::user().or(Require::machine_ids(machines)));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/me", get(me))
        .route("/jobs", get(jobs))
        .layer(auth)
        // The extractors' verifier, for routes without the layer (here the layer's principal
        // is reused).
        .with_state(verifier)
}

/// People only: the extractor refuses a machine too, with or without the layer.
async fn me(RequireUser(user): RequireUser) -> Json<Value> {
    Json(json!({ "user_id": user.user_id, "session_id": user.session_id }))
}

/// Either kind, told apart by the principal the layer put in the request.
async fn jobs(Extension(caller): Extension<Principal>) -> Json<Value> {
    match caller {
        Principal::User(user) => Json(json!({ "for": "user", "id": user.user_id })),
        Principal::Machine(machine) => Json(json!({ "for": "machine", "id": machine.machine_id })),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::process();
    let machines = env.get("ALLOWED_MACHINE_IDS").unwrap_or_default();
    let machines = machines.split(',').map(str::to_owned).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(verifier(&env)?, machines)).await?;
    Ok(())
}
