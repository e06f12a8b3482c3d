//! A tonic client that mints its M2M token with its machine key and calls the gRPC example.
//! Against clerk-mock, as the seeded JobApplier.Bot machine:
//!
//! ```text
//! CLERK_API_BASE_URL=http://localhost:8080/v1 \
//! CLERK_MACHINE_SECRET_KEY=ak_job_applier_mock_machine_secret_key_0001 \
//! cargo run -p m2m-examples --example grpc_client
//! ```

use m2m_core::M2mClientConfig;
use m2m_core::clerk::ClerkClient;
use m2m_core::config::Env;
use m2m_core::grpc::{BearerLayer, BearerService};
use m2m_core::{TokenSource, clock};
use m2m_examples::echo::SayRequest;
use m2m_examples::echo::echo_client::EchoClient;
use tonic::transport::{Channel, Endpoint};
use tower::ServiceBuilder;

/// Minted tokens (`CLERK_MACHINE_SECRET_KEY`), or a pre-created `CLERK_M2M_TOKEN`.
pub fn tokens(env: &Env<'_>) -> Result<TokenSource, Box<dyn std::error::Error>> {
    let config = M2mClientConfig::from_env(env, Some("grpc-client"))?;
    let clerk = ClerkClient::new(&config.api_base_url)?;
    Ok(config.token_source(&clerk, clock::system())?)
}

/// An `Echo` client whose every call carries a token from `tokens`.
pub fn client(
    url: &str,
    tokens: TokenSource,
) -> Result<EchoClient<BearerService<Channel>>, tonic::transport::Error> {
    let channel = Endpoint::from_shared(url.to_owned())?.connect_lazy();
    Ok(EchoClient::new(
        ServiceBuilder::new()
            .layer(BearerLayer::new(tokens))
            .service(channel),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut echo = client("http://127.0.0.1:50051", tokens(&Env::process())?)?;
    let reply = echo
        .say(SayRequest {
            text: "hello".into(),
        })
        .await?
        .into_inner();
    println!("{} (authenticated as {})", reply.text, reply.caller);
    Ok(())
}
