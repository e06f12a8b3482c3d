//! A tonic gRPC service whose `echo.v1.Echo/Say` only the machines in `ALLOWED_MACHINE_IDS` may
//! call. Same settings as the axum example (`axum_receiver.rs`), then:
//! `cargo run -p m2m-examples --example grpc_server` (listens on 127.0.0.1:50051).

use std::sync::Arc;

use m2m_core::clerk::ClerkClient;
use m2m_core::config::Env;
use m2m_core::{AuthLayer, Principal, Require, Verifier, VerifierConfig, clock};
use m2m_examples::echo::echo_server::{Echo, EchoServer};
use m2m_examples::echo::{SayReply, SayRequest};
use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};
use tonic::{Request, Response, Status};

/// The verifier, from the environment (as in `axum_receiver.rs`).
pub fn verifier(env: &Env<'_>) -> Result<Arc<Verifier>, Box<dyn std::error::Error>> {
    let config = VerifierConfig::from_env(env)?;
    let clerk = ClerkClient::new(&config.api_base_url)?;
    Ok(Arc::new(config.build(&clerk, clock::system())))
}

struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn say(&self, request: Request<SayRequest>) -> Result<Response<SayReply>, Status> {
        // The layer put the verified caller in the request's extensions.
        let caller = request
            .extensions()
            .get::<Principal>()
            .map(Principal::actor);
        let text = request.into_inner().text;
        Ok(Response::new(SayReply {
            text,
            caller: caller.unwrap_or_default(),
        }))
    }
}

/// Serves `Echo` on `listener`; `Say` is for the `allowed` machines only.
pub async fn serve(
    verifier: Arc<Verifier>,
    allowed: Vec<String>,
    listener: TcpListener,
) -> Result<(), tonic::transport::Error> {
    let auth =
        AuthLayer::new(verifier).require_for("/echo.v1.Echo/Say", Require::machine_ids(allowed));
    Server::builder()
        .layer(auth)
        .add_service(EchoServer::new(EchoService))
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::process();
    let allowed = env.get("ALLOWED_MACHINE_IDS").unwrap_or_default();
    let allowed = allowed.split(',').map(str::to_owned).collect();
    let listener = TcpListener::bind("127.0.0.1:50051").await?;
    serve(verifier(&env)?, allowed, listener).await?;
    Ok(())
}
