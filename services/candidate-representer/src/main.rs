//! `candidate-representer`: see `--help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let config = candidate_representer::Config::parse();
    service_kit::init_tracing(&config.common.log);
    match candidate_representer::serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("candidate-representer: {e}");
            ExitCode::FAILURE
        }
    }
}
