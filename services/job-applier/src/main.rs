//! `job-applier`: see `--help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let config = match m2m_core::config::parse_args::<job_applier::Config>() {
        Ok(config) => config,
        Err(e) => return service_kit::exit("job-applier", Err(e)),
    };
    service_kit::init_tracing(&config.common.log);
    service_kit::exit("job-applier", job_applier::serve(config).await)
}
