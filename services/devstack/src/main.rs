//! `cargo run --release --bin devstack`: the whole system, offline, on one laptop.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let options = devstack::Options::parse();
    m2m_core::service::init_tracing();
    let running = match devstack::start(&options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("devstack: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", running.banner(&options).await);
    tokio::select! {
        () = m2m_core::service::shutdown_signal() => {}
        () = clerk_mock_service::compact_forever(&running.mock) => {}
    }
    running.stop().await;
    ExitCode::SUCCESS
}
