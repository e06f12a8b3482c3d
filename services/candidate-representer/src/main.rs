//! `candidate-representer`: see `--help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let config = match m2m_core::config::parse_args::<candidate_representer::Config>() {
        Ok(config) => config,
        Err(e) => return service_kit::exit("candidate-representer", Err(e)),
    };
    service_kit::init_tracing(&config.common.log);
    service_kit::exit(
        "candidate-representer",
        candidate_representer::serve(config).await,
    )
}
