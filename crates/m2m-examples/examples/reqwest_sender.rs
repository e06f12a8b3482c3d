//! A reqwest-middleware client that mints its M2M token with its machine key and calls the axum
//! example. Against clerk-mock, as the seeded JobApplier.Bot machine:
//!
//! ```text
//! CLERK_API_BASE_URL=http://localhost:8080/v1 \
//! CLERK_MACHINE_SECRET_KEY=ak_job_applier_mock_machine_secret_key_0001 \
//! cargo run -p m2m-examples --example reqwest_sender
//! ```

use m2m_core::M2mClientConfig;
use m2m_core::clerk::ClerkClient;
use m2m_core::config::Env;
use m2m_core::{BearerMiddleware, TokenSource, clock};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

/// Minted tokens (`CLERK_MACHINE_SECRET_KEY`), or a pre-created `CLERK_M2M_TOKEN`.
pub fn tokens(env: &Env<'_>) -> Result<TokenSource, Box<dyn std::error::Error>> {
    let config = M2mClientConfig::from_env(env, Some("reqwest-sender"))?;
    let clerk = ClerkClient::new(&config.api_base_url)?;
    Ok(config.token_source(&clerk, clock::system())?)
}

/// A client that sends a token with every request; on a 401 it replaces exactly that token and
/// tries once more.
pub fn client(tokens: TokenSource) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(BearerMiddleware::new(tokens))
        .build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let http = client(tokens(&Env::process())?);
    let response = http.get("http://127.0.0.1:3000/jobs").send().await?;
    println!("{}: {}", response.status(), response.text().await?);
    Ok(())
}
