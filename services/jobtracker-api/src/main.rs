//! `jobtracker-api`: see `--help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let config = match m2m_core::config::parse_args::<jobtracker_api::Config>() {
        Ok(config) => config,
        Err(e) => return service_kit::exit("jobtracker-api", Err(e)),
    };
    service_kit::init_tracing(&config.log);
    let result = match jobtracker_api::Server::build(&config).await {
        Ok(app) => app
            .run_until(service_kit::shutdown_signal())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    service_kit::exit("jobtracker-api", result)
}
