//! The `clerk-mock` service: [`clerk_mock::ClerkMock`] on a fixed port, seeded from a file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clerk_mock::{ClerkMock, Seed};

/// Command line and environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "clerk-mock",
    version,
    about = "A stateful fake of Clerk's Backend API (M2M tokens, machines, JWKS, sessions) for offline development and tests"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CLERK_MOCK_BIND", default_value = "0.0.0.0:8080")]
    pub bind: SocketAddr,
    /// Seed file (JSON); the repository's default seed when unset or empty.
    #[arg(long, env = "CLERK_MOCK_SEED")]
    pub seed: Option<String>,
    /// Print the effective seed (keys, machines, users) as JSON and exit.
    #[arg(long)]
    pub print_seed: bool,
}

/// Loads the seed named by the config (or the default one).
pub fn load_seed(config: &Config) -> Result<Seed, String> {
    match config
        .seed
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
    {
        None => Ok(Seed::demo()),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("CLERK_MOCK_SEED: cannot read {}: {e}", path.display()))?;
            Seed::from_json(&text).map_err(|e| format!("CLERK_MOCK_SEED: {}: {e}", path.display()))
        }
    }
}

/// Starts the mock on `config.bind`. Returns it so the caller decides how long it lives.
pub async fn start(config: &Config) -> Result<ClerkMock, String> {
    let seed = load_seed(config)?;
    let listener = std::net::TcpListener::bind(config.bind)
        .map_err(|e| format!("CLERK_MOCK_BIND: cannot listen on {}: {e}", config.bind))?;
    ClerkMock::try_start(seed, Some(listener), None).await
}

/// Runs the service until Ctrl-C or SIGTERM (or prints the seed and returns).
pub async fn run(config: Config) -> Result<(), String> {
    if config.print_seed {
        let seed = load_seed(&config)?;
        let mock = ClerkMock::try_start(seed, None, None).await?;
        let json =
            serde_json::to_string_pretty(&mock.effective_seed()).map_err(|e| e.to_string())?;
        println!("{json}");
        return Ok(());
    }
    let mock = start(&config).await?;
    let port = config.bind.port();
    let key = mock.instance_secret_key();
    let user = mock.users().into_iter().next();
    tracing::info!(url = %mock.api_url(), "clerk-mock listening; set CLERK_API_BASE_URL to this URL");
    if let Some(user) = user {
        tracing::info!(
            "demo session JWT: SID=$(curl -s -X POST -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{\"user_id\":\"{}\"}}' http://localhost:{port}/v1/sessions | sed -E 's/.*\"id\":\"([^\"]+)\".*/\\1/'); curl -s -X POST -H 'Authorization: Bearer {key}' http://localhost:{port}/v1/sessions/$SID/tokens",
            user.id
        );
    }
    tokio::select! {
        () = m2m_core::service::shutdown_signal() => {}
        () = compact_forever(&mock) => {}
    }
    tracing::info!("clerk-mock stopping");
    drop(mock);
    Ok(())
}

/// Runs forever: every minute, frees wiremock's copies of the requests served if more than
/// 10,000 came in since the last time (see [`ClerkMock::compact`]).
pub async fn compact_forever(mock: &ClerkMock) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        if mock.compact_if_over(10_000).await {
            tracing::debug!("clerk-mock compacted its request log");
        }
    }
}
