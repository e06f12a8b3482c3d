//! The `clerk-mock` service: [`clerk_mock::ClerkMock`] on a fixed port, seeded from a file.

use service_kit::StartupError;
use std::net::SocketAddr;
use std::path::PathBuf;

use clerk_mock::{ClerkMock, Seed};

mod front;
pub use front::{MAX_BODY_BYTES, MockService};

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
    /// Ask the mock already running at this base URL (e.g. `http://clerk-mock:8080`) for a
    /// one-hour session JWT, print it and exit: the token to paste into Swagger UI's Authorize.
    /// The mock must run with the same seed (the instance secret key comes from it).
    #[arg(long, value_name = "URL")]
    pub session_token_from: Option<String>,
    /// The user of `--session-token-from` (default: the seed's first user).
    #[arg(long, value_name = "USER_ID", requires = "session_token_from")]
    pub user: Option<String>,
    /// Logging.
    #[command(flatten)]
    pub log: service_kit::LogArgs,
    /// Timeouts and limits of the public port.
    #[command(flatten)]
    pub server: service_kit::ServerArgs,
}

/// Loads the seed named by the config (or the default one).
pub fn load_seed(config: &Config) -> Result<Seed, StartupError> {
    match config
        .seed
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
    {
        None => Ok(Seed::demo()),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                StartupError::Setting(format!(
                    "CLERK_MOCK_SEED: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            Seed::from_json(&text).map_err(|e| {
                StartupError::Setting(format!("CLERK_MOCK_SEED: {}: {e}", path.display()))
            })
        }
    }
}

/// Starts the mock on `config.bind`, behind the workspace's server (timeouts, connection cap,
/// shutdown deadline: `config.server`). Returns it so the caller decides how long it lives.
pub async fn start(config: &Config) -> Result<MockService, StartupError> {
    let seed = load_seed(config)?;
    let listener = service_kit::bind("CLERK_MOCK_BIND", config.bind).await?;
    // wiremock's own server, reachable only from this host; the public port does not use it.
    let private = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| format!("clerk-mock: cannot listen on a loopback port: {e}"))?;
    let mock = ClerkMock::try_start(seed, Some(private), None)
        .await
        .map_err(|e| StartupError::Setting(e.to_string()))?;
    MockService::start(mock, listener, config.server.clone())
        .map_err(|e| StartupError::Unavailable(format!("clerk-mock: {e}")))
}

/// Mints a session JWT (valid `lifetime_seconds`) for `user` (default: the seed's first user) at
/// the mock running at `base_url`, the way the README's curl does: `POST /v1/sessions`, then
/// `POST /v1/sessions/{id}/tokens`, with the seed's instance secret key. The seed must fix the
/// key and the user ids (the default seed does), as the running mock's must match.
pub async fn session_token(
    seed: Seed,
    base_url: &str,
    user: Option<&str>,
    lifetime_seconds: u64,
) -> Result<(String, String), StartupError> {
    // The effective seed (defaults filled in), as --print-seed shows it.
    let local = ClerkMock::try_start(seed, None, None)
        .await
        .map_err(|e| StartupError::Setting(e.to_string()))?;
    let user = match user {
        Some(u) => u.to_owned(),
        None => local
            .users()
            .into_iter()
            .next()
            .map(|u| u.id)
            .ok_or("the seed has no user")?,
    };
    let key = local.instance_secret_key();
    drop(local);
    let api = format!("{}/v1", base_url.trim_end_matches('/'));
    let http = reqwest::Client::new();
    let post = |url: String, body: serde_json::Value| {
        let request = http.post(url.clone()).bearer_auth(&key).json(&body);
        async move {
            let response = request
                .send()
                .await
                .map_err(|e| format!("{url}: {e} (is the mock running there?)"))?;
            let status = response.status();
            let value: serde_json::Value = response
                .json()
                .await
                .map_err(|e| format!("{url}: {status}: {e}"))?;
            if status.is_success() {
                Ok(value)
            } else {
                Err(format!("{url}: {status}: {value}"))
            }
        }
    };
    let session = post(
        format!("{api}/sessions"),
        serde_json::json!({ "user_id": user }),
    )
    .await?;
    let sid = session["id"].as_str().ok_or("no session id")?;
    let token = post(
        format!("{api}/sessions/{sid}/tokens"),
        serde_json::json!({ "expires_in_seconds": lifetime_seconds }),
    )
    .await?;
    let jwt = token["jwt"].as_str().ok_or("no jwt")?.to_owned();
    Ok((user, jwt))
}

/// Runs the service until Ctrl-C or SIGTERM (or prints the seed, or a session JWT, and returns).
pub async fn run(config: Config) -> Result<(), StartupError> {
    if let Some(url) = &config.session_token_from {
        let seed = load_seed(&config)?;
        let (user, jwt) = session_token(seed, url, config.user.as_deref(), 3600).await?;
        // The token alone on stdout (for scripts); the hint on stderr.
        eprintln!(
            "A session JWT for {user}, valid 1 hour: paste it into Swagger UI's Authorize (http://localhost:5000/swagger)"
        );
        println!("{jwt}");
        return Ok(());
    }
    if config.print_seed {
        let seed = load_seed(&config)?;
        let mock = ClerkMock::try_start(seed, None, None)
            .await
            .map_err(|e| StartupError::Setting(e.to_string()))?;
        let json = serde_json::to_string_pretty(&mock.effective_seed())
            .map_err(|e| StartupError::Unavailable(e.to_string()))?;
        println!("{json}");
        return Ok(());
    }
    let service = start(&config).await?;
    let mock = service.mock();
    let port = config.bind.port();
    let key = mock.instance_secret_key();
    let user = mock.users().into_iter().next();
    tracing::info!(url = %service.api_url(), "clerk-mock listening; set CLERK_API_BASE_URL to this URL");
    if let Some(user) = user {
        tracing::info!(
            "demo session JWT: SID=$(curl -s -X POST -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{\"user_id\":\"{}\"}}' http://localhost:{port}/v1/sessions | sed -E 's/.*\"id\":\"([^\"]+)\".*/\\1/'); curl -s -X POST -H 'Authorization: Bearer {key}' http://localhost:{port}/v1/sessions/$SID/tokens",
            user.id
        );
    }
    tokio::select! {
        () = service_kit::shutdown_signal() => {}
        () = compact_forever(mock) => {}
    }
    tracing::info!("clerk-mock stopping");
    service
        .stop()
        .await
        .map_err(|e| StartupError::Unavailable(format!("clerk-mock: {e}")))
}

/// Runs forever: every minute, frees wiremock's copies of the requests its own server served if
/// it kept more than 10,000 since the last time (see [`ClerkMock::compact`]). The public port
/// never adds to them ([`ClerkMock::respond`]); this bounds only requests sent straight to the
/// in-process wiremock server's private loopback port, which nothing in the project does.
pub async fn compact_forever(mock: &ClerkMock) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        if mock.compact_if_over(10_000).await {
            tracing::warn!(
                "clerk-mock compacted the requests sent to its private wiremock port; clients belong on the public one"
            );
        }
    }
}
