//! `job-applier`: see `--help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let config = job_applier::Config::parse();
    service_kit::init_tracing(&config.common.log);
    match job_applier::serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("job-applier: {e}");
            ExitCode::FAILURE
        }
    }
}
