//! `clerk-mock`: serves the Clerk Backend API fake on a port, seeded from a file.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let config = clerk_mock_service::Config::parse();
    service_kit::init_tracing(&config.log);
    service_kit::exit("clerk-mock", clerk_mock_service::run(config).await)
}
