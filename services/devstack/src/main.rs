//! `cargo run --release --bin devstack`: the whole system, offline, on one laptop.

use std::future::Future;
use std::process::ExitCode;
use std::task::Poll;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let options = devstack::Options::parse();
    service_kit::init_tracing(&service_kit::LogArgs {
        filter: devstack::log_filter(&options.log.filter),
        ..options.log.clone()
    });
    // The Ctrl-C/SIGTERM handlers are installed when this is first polled: poll it once now, so a
    // signal from the moment the banner shows stops the stack cleanly instead of killing it.
    let mut shutdown = std::pin::pin!(service_kit::shutdown_signal());
    let stopped =
        std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx).is_ready())).await;
    let running = match devstack::start(&options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("devstack: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", running.banner(&options).await);
    if !stopped {
        tokio::select! {
            () = shutdown.as_mut() => {}
            () = clerk_mock_service::compact_forever(running.mock.mock()) => {}
        }
    }
    running.stop().await;
    ExitCode::SUCCESS
}
