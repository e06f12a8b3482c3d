//! `devstack`: the whole system in one process, on the same default ports as docker compose.
//! The bots are wired through the environment variables compose sets (`.env.example` lists
//! them); the API through [`jobtracker_api_testing::mock_config`], the one function the tests
//! also start their API from, moved to devstack's ports and the mock's public front door.

use service_kit::StartupError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use m2m_core::config::Env;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{oneshot, watch};

pub mod seed;

/// Ports and storage.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "devstack",
    version,
    about = "Runs clerk-mock, jobtracker-api, candidate-representer and job-applier together, offline"
)]
pub struct Options {
    /// Address of the mock Clerk.
    #[arg(long, env = "CLERK_MOCK_BIND", default_value = "127.0.0.1:8080")]
    pub clerk_mock_bind: String,
    /// Address of the API.
    #[arg(long, env = "JOBTRACKER_BIND", default_value = "127.0.0.1:5000")]
    pub api_bind: String,
    /// Address of the representer.
    #[arg(long, env = "REPRESENTER_BIND", default_value = "127.0.0.1:5100")]
    pub representer_bind: String,
    /// Address of the applier.
    #[arg(long, env = "APPLIER_BIND", default_value = "127.0.0.1:5200")]
    pub applier_bind: String,
    /// Address of the API's `/metrics` (its `METRICS_BIND`).
    #[arg(long, env = "API_METRICS_BIND", default_value = "127.0.0.1:9464")]
    pub api_metrics_bind: String,
    /// Address of the representer's `/metrics` (its `METRICS_BIND`).
    #[arg(
        long,
        env = "REPRESENTER_METRICS_BIND",
        default_value = "127.0.0.1:9465"
    )]
    pub representer_metrics_bind: String,
    /// Address of the applier's `/metrics` (its `METRICS_BIND`).
    #[arg(long, env = "APPLIER_METRICS_BIND", default_value = "127.0.0.1:9466")]
    pub applier_metrics_bind: String,
    /// Where SQLite and the outbox live (kept between runs).
    #[arg(long, env = "DEVSTACK_DATA_DIR", default_value = "./data")]
    pub data_dir: String,
    /// The API's database; SQLite under the data dir when unset.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,
    /// Seconds between the bots' polls.
    #[arg(long, env = "POLL_INTERVAL_SECONDS", default_value_t = 2)]
    pub poll_interval_seconds: u64,
    /// Logging (of every service: they share one process).
    #[command(flatten)]
    pub log: service_kit::LogArgs,
    /// Timeouts and limits of the API's and the bots' HTTP servers.
    #[command(flatten)]
    pub server: service_kit::ServerArgs,
}

/// The log filter devstack runs with: `filter` (`RUST_LOG`), with the mock's test-library server
/// (wiremock logs "Mock server shutting down" at info when it stops) kept to warnings, unless
/// `filter` says something about wiremock itself.
pub fn log_filter(filter: &str) -> String {
    if filter.contains("wiremock") {
        return filter.to_owned();
    }
    let filter = filter.trim();
    let base = if filter.is_empty() {
        service_kit::LogArgs::DEFAULT_FILTER
    } else {
        filter
    };
    format!("{base},wiremock::mock_server::hyper=warn")
}

/// Parses a service's own `Config` from environment-variable pairs, the way its binary reads
/// its environment: the service sees exactly what it would see in compose.
pub fn config_from_env<C: CommandFactory + FromArgMatches>(
    binary: &str,
    vars: &BTreeMap<&str, String>,
) -> Result<C, StartupError> {
    Env::from_fn(|k| vars.get(k).cloned())
        .parse()
        .map_err(|e| StartupError::Setting(format!("{binary}: {e}")))
}

fn local(bind: &str) -> String {
    let port = bind.rsplit(':').next().unwrap_or("80");
    format!("http://localhost:{port}")
}

/// What a running stack gives its user.
#[derive(Debug)]
pub struct Running {
    /// The mock, on its public port.
    pub mock: clerk_mock_service::MockService,
    /// API base URL.
    pub api_url: String,
    stop: watch::Sender<bool>,
    api_stop: oneshot::Sender<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The API's settings: [`jobtracker_api_testing::mock_config`] (the settings the tests' API
/// starts from, so devstack's API trusts the mock exactly as theirs does) on devstack's
/// addresses and database, reaching the mock through its public front door.
pub fn api_config(
    o: &Options,
    service: &clerk_mock_service::MockService,
) -> Result<jobtracker_api::Config, String> {
    let database_url = o.database_url.as_ref().map_or_else(
        || {
            format!(
                "sqlite://{}/jobtracker.db?mode=rwc",
                o.data_dir.trim_end_matches('/')
            )
        },
        |url| url.expose_secret().to_owned(),
    );
    let mut config = jobtracker_api_testing::mock_config(service.mock(), &database_url);
    config.bind = o
        .api_bind
        .parse()
        .map_err(|e| format!("JOBTRACKER_BIND: {e}"))?;
    config.metrics_bind = o
        .api_metrics_bind
        .parse()
        .map_err(|e| format!("API_METRICS_BIND: {e}"))?;
    config.clerk.clerk_api_base_url = service.api_url();
    config.server = o.server.clone();
    Ok(config)
}

/// The variables each bot gets, as compose sets them (representer, applier).
/// The services reach the mock through its public front door, like any other client (bounded:
/// timeouts, connection cap), never through wiremock's private port.
pub fn service_env(
    o: &Options,
    service: &clerk_mock_service::MockService,
) -> [BTreeMap<&'static str, String>; 2] {
    let mock = service.mock();
    let machine = |n: &str| {
        mock.machine_by_name(n)
            .map(|m| (m.id, m.secret_key))
            .unwrap_or_default()
    };
    let (rep_id, rep_key) = machine("CandidateRepresenter.Bot");
    let (_, app_key) = machine("JobApplier.Bot");
    let clerk = service.api_url();
    let api_url = local(&o.api_bind);
    let bot = |key: String| {
        BTreeMap::from([
            ("JOBTRACKER_API_URL", api_url.clone()),
            ("CLERK_API_BASE_URL", clerk.clone()),
            ("CLERK_MACHINE_SECRET_KEY", key),
            ("POLL_INTERVAL_SECONDS", o.poll_interval_seconds.to_string()),
        ])
    };
    let mut representer = bot(rep_key);
    representer.insert("REPRESENTER_BIND", o.representer_bind.clone());
    representer.insert("METRICS_BIND", o.representer_metrics_bind.clone());
    // Session tokens on /v1/ask are verified with the instance's public keys: no secret key.
    representer.insert("CLERK_JWKS_URL", service.jwks_url());
    representer.insert("CLERK_MACHINE_ID", rep_id);
    representer.insert("CLERK_AUTHORIZED_PARTIES", mock.authorized_party());
    let mut applier = bot(app_key);
    applier.insert("APPLIER_BIND", o.applier_bind.clone());
    applier.insert("METRICS_BIND", o.applier_metrics_bind.clone());
    applier.insert(
        "APPLIER_OUTBOX_DIR",
        format!("{}/outbox", o.data_dir.trim_end_matches('/')),
    );
    [representer, applier]
}

/// Starts everything.
pub async fn start(o: &Options) -> Result<Running, StartupError> {
    let mock_config = clerk_mock_service::Config {
        bind: o
            .clerk_mock_bind
            .parse()
            .map_err(|e| format!("CLERK_MOCK_BIND: {e}"))?,
        seed: None,
        print_seed: false,
        session_token_from: None,
        user: None,
        log: o.log.clone(),
        server: o.server.clone(),
    };
    let mock = clerk_mock_service::start(&mock_config).await?;
    let [rep_env, app_env] = service_env(o, &mock);

    let api = jobtracker_api::Server::build(&api_config(o, &mock)?).await?;
    let api_url = local(&o.api_bind);
    let (api_stop, api_rx) = oneshot::channel::<()>();
    let api_task = tokio::spawn(async move {
        if let Err(e) = api
            .run_until(async {
                let _ = api_rx.await;
            })
            .await
        {
            tracing::error!(error = %e, "jobtracker-api stopped");
        }
    });

    let (stop, stop_rx) = watch::channel(false);
    let interval = Duration::from_secs(o.poll_interval_seconds.max(1));
    let mut rep_config: candidate_representer::Config =
        config_from_env("candidate-representer", &rep_env)?;
    rep_config.common.server = o.server.clone();
    let representer = Arc::new(candidate_representer::Representer::from_config(
        &rep_config,
    )?);
    let mut app_config: job_applier::Config = config_from_env("job-applier", &app_env)?;
    app_config.common.server = o.server.clone();
    let applier = Arc::new(job_applier::Applier::from_config(&app_config)?);

    let rep_listener = service_kit::bind("REPRESENTER_BIND", rep_config.bind).await?;
    let rep_metrics =
        service_kit::bind("REPRESENTER_METRICS_BIND", rep_config.metrics_bind).await?;
    let app_listener = service_kit::bind("APPLIER_BIND", app_config.bind).await?;
    let app_metrics = service_kit::bind("APPLIER_METRICS_BIND", app_config.metrics_bind).await?;
    let until_stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let tasks = vec![
        api_task,
        tokio::spawn(bot_runtime::serve(
            representer,
            rep_listener,
            rep_metrics,
            rep_config.common.server.clone(),
            interval,
            until_stopped(),
        )),
        tokio::spawn(bot_runtime::serve(
            applier,
            app_listener,
            app_metrics,
            app_config.common.server.clone(),
            interval,
            until_stopped(),
        )),
    ];
    Ok(Running {
        mock,
        api_url,
        stop,
        api_stop,
        tasks,
    })
}

impl Running {
    /// Stops the bots (after the item in hand, within the grace period), then the API, then the
    /// mock.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.api_stop.send(());
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.mock.stop().await {
            tracing::warn!(error = %e, "clerk-mock stopped with an error");
        }
    }

    /// A one-hour session JWT for the first demo user, minted the way the README's curl does.
    pub async fn demo_session_token(&self) -> Option<(String, String)> {
        let user = self.mock.mock().users().into_iter().next()?;
        let http = reqwest::Client::new();
        let key = self.mock.mock().instance_secret_key();
        let session: serde_json::Value = http
            .post(format!("{}/sessions", self.mock.api_url()))
            .bearer_auth(&key)
            .json(&serde_json::json!({"user_id": user.id}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let token: serde_json::Value = http
            .post(format!(
                "{}/sessions/{}/tokens",
                self.mock.api_url(),
                session["id"].as_str()?
            ))
            .bearer_auth(&key)
            .json(&serde_json::json!({"expires_in_seconds": 3600}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        Some((user.id, token["jwt"].as_str()?.to_owned()))
    }

    /// What to tell the person who started it.
    pub async fn banner(&self, o: &Options) -> String {
        let key = self.mock.mock().instance_secret_key();
        let mock = self.mock.url().replace("127.0.0.1", "localhost");
        let applier = self
            .mock
            .mock()
            .machine_by_name("JobApplier.Bot")
            .map(|m| m.secret_key)
            .unwrap_or_default();
        let (user, token) = self.demo_session_token().await.unwrap_or_default();
        format!(
            "\nJobTracker M2M is running (Ctrl-C stops everything; data is kept in {data}).\n\n\
             \x20 Swagger UI         {api}/swagger\n\
             \x20 API                {api}        (OpenAPI: {api}/openapi.json)\n\
             \x20 mock Clerk         {mock}/v1\n\
             \x20 representer        {rep}/healthz  POST /v1/ask\n\
             \x20 applier            {app}/healthz  (outbox: {data}/outbox)\n\
             \x20 /metrics           {api_metrics}/metrics  {rep_metrics}/metrics  {app_metrics}/metrics\n\n\
             A session JWT for {user} (valid 1 hour; paste it into Swagger UI's Authorize):\n\n{token}\n\n\
             Get another one:\n\
             \x20 SID=$(curl -s -X POST -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n\
             \x20   -d '{{\"user_id\":\"{user}\"}}' {mock}/v1/sessions | sed -E 's/.*\"id\":\"([^\"]+)\".*/\\1/')\n\
             \x20 curl -s -X POST -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n\
             \x20   -d '{{\"expires_in_seconds\":3600}}' {mock}/v1/sessions/$SID/tokens\n\n\
             An M2M token as the job-applier (the API accepts it too):\n\
             \x20 curl -s -X POST -H 'Authorization: Bearer {applier}' -H 'Content-Type: application/json' -d '{{}}' {mock}/v1/m2m_tokens\n",
            data = o.data_dir,
            api = self.api_url,
            rep = local(&o.representer_bind),
            app = local(&o.applier_bind),
            api_metrics = local(&o.api_metrics_bind),
            rep_metrics = local(&o.representer_metrics_bind),
            app_metrics = local(&o.applier_metrics_bind),
        )
    }
}
