//! candidate-representer: polls unanswered screening questions and answers them from the
//! candidate's profile ([`rules`]); serves `POST /v1/ask` and `/healthz`, and `/metrics` on its own address.

pub mod rules;

use service_kit::StartupError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use bot_runtime::{Bot, BotArgs, BotMetrics};
use jobtracker_client::{ClientError, JobTrackerClient};
use jobtracker_types::{AnswerInput, UserId, UserProfileInput};
use m2m_core::AuthRejection;
use m2m_core::config::{JwtArgs, parse};
use m2m_core::{Principal, Verifier};
use serde::Deserialize;
use service_kit::LogThrottle;
use tracing::Instrument as _;

/// Settings (`--help` lists the environment variables).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "candidate-representer",
    version,
    about = "Answers screening questions from the candidate's profile"
)]
pub struct Config {
    #[command(flatten)]
    pub common: BotArgs,
    /// How callers of `/v1/ask` are verified: users' session JWTs (and M2M JWTs) with the
    /// instance's public keys, without a network call and with no secret key; opaque M2M tokens
    /// with this bot's machine key.
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Comma-separated machine ids (`mch_…`) that may ask about any candidate on `/v1/ask`.
    /// Empty (the default): no machine may; users may ask about themselves only.
    #[arg(
        long,
        env = "REPRESENTER_ALLOWED_MACHINE_IDS",
        default_value = "",
        hide_default_value = true,
        value_parser = parse::machine_ids
    )]
    pub allowed_machine_ids: ::std::vec::Vec<String>,
    /// Address of `/healthz` and `/v1/ask`.
    #[arg(long, env = "REPRESENTER_BIND", default_value = "0.0.0.0:5100")]
    pub bind: SocketAddr,
    /// Address of `/metrics`, a listener of its own: loopback unless a scraper elsewhere needs
    /// it (compose: `0.0.0.0:9465` inside the container network, not published).
    #[arg(long, env = "METRICS_BIND", default_value = "127.0.0.1:9465")]
    pub metrics_bind: SocketAddr,
}

const COUNTERS: &[(&str, &str)] = &[
    ("questions_answered", "Questions answered from a profile."),
    (
        "questions_flagged",
        "Questions marked for a person's review.",
    ),
    (
        "questions_skipped",
        "Questions left alone (answered meanwhile, or frozen).",
    ),
    ("asks", "Ad-hoc questions answered on /v1/ask."),
];

/// The bot.
#[derive(Debug)]
pub struct Representer {
    client: JobTrackerClient,
    counters: BotMetrics,
    verifier: Option<Arc<Verifier>>,
    allowed_machines: Vec<String>,
}

impl Representer {
    /// A representer using `client`; `verifier` authenticates `/v1/ask`'s callers (without one,
    /// it refuses every request with 500).
    pub fn new(client: JobTrackerClient, verifier: Option<Verifier>) -> Self {
        Self::with_metrics(client, verifier, Self::metrics())
    }

    /// Its metrics, before it exists (its client's Clerk calls are counted in them).
    fn metrics() -> BotMetrics {
        BotMetrics::new(<Self as Bot>::NAME, "representer", COUNTERS)
    }

    fn with_metrics(
        client: JobTrackerClient,
        verifier: Option<Verifier>,
        counters: BotMetrics,
    ) -> Self {
        Self {
            client,
            counters,
            verifier: verifier.map(Arc::new),
            allowed_machines: Vec::new(),
        }
    }

    /// Machines that may ask `/v1/ask` about any candidate (none by default).
    pub fn with_allowed_machines(mut self, machines: Vec<String>) -> Self {
        self.allowed_machines = machines;
        self
    }

    /// Builds it from the settings: errors name the variable.
    pub fn from_config(config: &Config) -> Result<Self, StartupError> {
        let clock = m2m_core::clock::system();
        let metrics = Self::metrics();
        let client = config
            .common
            .client_observed(clock.clone(), Some(metrics.clerk_observer()))
            .map_err(|e| e.to_string())?;
        let verifier = match config.jwt.verifier_config(&config.common.clerk) {
            Ok(vc) => {
                if vc.key_source.is_none() {
                    tracing::warn!(
                        "/v1/ask cannot verify users' session tokens: set CLERK_JWT_KEY or CLERK_JWKS_URL"
                    );
                }
                let clerk = m2m_core::clerk::ClerkClient::new(&vc.api_base_url)
                    .map_err(|e| e.to_string())?;
                Some(vc.build(&clerk, clock))
            }
            Err(e) => {
                tracing::warn!(error = %e, "/v1/ask cannot verify callers and will refuse every request");
                None
            }
        };
        Ok(Self::with_metrics(client, verifier, metrics)
            .with_allowed_machines(config.allowed_machine_ids.clone()))
    }

    /// Answers every unanswered question once. Returns whether any was handled.
    pub async fn run_once(&self) -> Result<bool, ClientError> {
        let mut profiles: HashMap<UserId, Option<UserProfileInput>> = HashMap::new();
        let mut cursor: Option<String> = None;
        let mut handled = false;
        loop {
            let page = self
                .client
                .list_questions(true, cursor.as_deref(), Some(100))
                .await?;
            for item in &page.items {
                let q = &item.question;
                if !profiles.contains_key(&item.user_id) {
                    let profile = match self.client.get_user(&item.user_id).await {
                        Ok(u) => Some(u.profile),
                        Err(ClientError::NotFound(_)) => None,
                        Err(e) => return Err(e),
                    };
                    profiles.insert(item.user_id.clone(), profile);
                }
                let outcome = match profiles.get(&item.user_id).and_then(Option::as_ref) {
                    Some(p) => rules::answer(&q.text, p),
                    None => rules::Outcome {
                        answer: None,
                        review_reason: Some("the candidate has no profile".into()),
                        rule: "none",
                    },
                };
                let input = AnswerInput {
                    needs_review: outcome.answer.is_none(),
                    answer: outcome.answer.clone(),
                    review_reason: outcome.review_reason.clone(),
                };
                // With traces on, the answer is findable by its application's id.
                let span = tracing::info_span!(
                    "application",
                    application_id = %q.application_id,
                    question_id = %q.id
                );
                match self
                    .client
                    .answer_question(&q.application_id, &q.id, &input)
                    .instrument(span)
                    .await
                {
                    Ok(_) => {
                        handled = true;
                        if input.needs_review {
                            self.counters.inc("questions_flagged");
                            tracing::info!(question_id = %q.id, rule = outcome.rule, reason = ?outcome.review_reason, "question marked for review");
                        } else {
                            self.counters.inc("questions_answered");
                            tracing::info!(question_id = %q.id, rule = outcome.rule, "question answered");
                        }
                    }
                    Err(ClientError::Conflict(p)) | Err(ClientError::NotFound(p)) => {
                        self.counters.inc("questions_skipped");
                        tracing::debug!(question_id = %q.id, detail = %p.detail, "question skipped");
                    }
                    Err(e) => return Err(e),
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(handled)
    }
}

impl Bot for Representer {
    const NAME: &'static str = "candidate-representer";

    fn counters(&self) -> &BotMetrics {
        &self.counters
    }

    /// One pass over the unanswered questions; the next waits for the interval.
    async fn step(&self) -> Result<bool, ClientError> {
        self.run_once().await.map(|_| false)
    }

    /// `POST /v1/ask`.
    fn routes(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/ask", post(ask))
            .with_state(self.clone())
    }
}

/// Body of `POST /v1/ask`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    /// The candidate.
    pub user_id: String,
    /// The question.
    pub question: String,
}

fn problem(status: StatusCode, detail: &str) -> axum::response::Response {
    service_kit::problem(status, detail, None)
}

/// The caller of `/v1/ask`, authenticated by m2m-core's extractor and admitted by the
/// representer's own policy before anything else happens: a user (about themselves only, checked
/// once the body is read), or a machine on `REPRESENTER_ALLOWED_MACHINE_IDS`. Everyone else gets
/// 401 or 403 and no call reaches the API.
#[derive(Debug)]
pub struct Asker(Principal);

impl FromRequestParts<Arc<Representer>> for Asker {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        me: &Arc<Representer>,
    ) -> Result<Self, Self::Rejection> {
        let Some(verifier) = &me.verifier else {
            return Err(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this representer cannot verify callers (set CLERK_MACHINE_SECRET_KEY, and CLERK_JWT_KEY or CLERK_JWKS_URL)",
            ));
        };
        let principal = Principal::from_request_parts(parts, verifier)
            .await
            .map_err(IntoResponse::into_response)?;
        if let Principal::Machine(m) = &principal
            && !me.allowed_machines.contains(&m.machine_id)
        {
            static REFUSED: LazyLock<LogThrottle> = LazyLock::new(LogThrottle::default);
            if let Some(suppressed) = REFUSED.admit() {
                tracing::warn!(machine_id = %m.machine_id, suppressed, "/v1/ask refused a machine that is not on REPRESENTER_ALLOWED_MACHINE_IDS");
            }
            return Err(AuthRejection::Forbidden(
                "this machine may not ask the representer (REPRESENTER_ALLOWED_MACHINE_IDS)",
            )
            .into_response());
        }
        Ok(Self(principal))
    }
}

/// Answers an ad-hoc question with the same rules, for a caller [`Asker`] admitted: a user
/// about themselves, or an allowed machine about anyone.
async fn ask(
    Asker(principal): Asker,
    State(me): State<Arc<Representer>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let Ok(req) = serde_json::from_slice::<Ask>(&body) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "expected {\"user_id\": \"user_…\", \"question\": \"…\"}",
        );
    };
    if req.question.trim().is_empty() || req.question.len() > 1000 {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "question must be 1 to 1000 characters",
        );
    }
    if let Principal::User(u) = &principal
        && u.user_id != req.user_id
    {
        return AuthRejection::Forbidden("you may only ask about yourself").into_response();
    }
    // Checked here, not only by the API: the id goes into the API's path.
    let user_id = match UserId::parse(&req.user_id) {
        Ok(id) => id,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let profile = match me.client.get_user(&user_id).await {
        Ok(u) => u.profile,
        Err(ClientError::NotFound(_)) => {
            return problem(StatusCode::NOT_FOUND, "no such candidate");
        }
        Err(ClientError::InvalidInput(p)) => {
            return problem(StatusCode::UNPROCESSABLE_ENTITY, &p.detail);
        }
        Err(e) => {
            static UNREADABLE: LazyLock<LogThrottle> = LazyLock::new(LogThrottle::default);
            if let Some(suppressed) = UNREADABLE.admit() {
                tracing::warn!(error = %e, suppressed, "ask: cannot read the profile");
            }
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the JobTracker API is unavailable; retry later",
            );
        }
    };
    me.counters.inc("asks");
    Json(rules::answer(&req.question, &profile)).into_response()
}

/// Runs the service until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<(), StartupError> {
    let me = Arc::new(Representer::from_config(&config)?);
    let listener = service_kit::bind("REPRESENTER_BIND", config.bind).await?;
    let metrics = service_kit::bind("METRICS_BIND", config.metrics_bind).await?;
    let interval = config.common.poll_interval();
    bot_runtime::serve(
        me,
        listener,
        metrics,
        config.common.server.clone(),
        interval,
        service_kit::shutdown_signal(),
    )
    .await;
    Ok(())
}
