//! `jobtracker-api`: see `--help` for every setting.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let config = jobtracker_api::Config::parse();
    service_kit::init_tracing(&config.log);
    let app = match jobtracker_api::Application::build(&config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("jobtracker-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until(service_kit::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobtracker-api: {e}");
            ExitCode::FAILURE
        }
    }
}
