//! `cargo run --release --bin devstack`: the whole system, offline, on one laptop.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let options = devstack::Options::parse();
    service_kit::init_tracing(&service_kit::LogArgs {
        filter: devstack::log_filter(&options.log.filter),
        ..options.log.clone()
    });
    let running = match devstack::start(&options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("devstack: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", running.banner(&options).await);
    tokio::select! {
        () = service_kit::shutdown_signal() => {}
        () = clerk_mock_service::compact_forever(running.mock.mock()) => {}
    }
    running.stop().await;
    ExitCode::SUCCESS
}
