//! A typed async client for every JobTracker API route, authenticated through m2m-core: minted
//! (cached, refreshed, replaced once on a 401), static, or disabled.
//!
//! Idempotent calls (GET, PUT, DELETE) are retried on 429, 5xx and connection failures with
//! backoff; POST and PATCH are not, so nothing is done twice.

use std::sync::Arc;
use std::time::Duration;

use jobtracker_types::{
    AnswerInput, Application, ApplicationId, ApplicationStatus, ClaimedApplication,
    CreateApplication, Event, LeaseId, LeaseRelease, LeaseRequest, Page, Problem, QuestionId,
    QuestionWithContext, Resume, ResumeId, StatusUpdate, User, UserId, UserProfileInput, Whoami,
};
use m2m_core::{AuthedClient, AuthedRequestError, TokenSource};
use rand::Rng;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tracing::Instrument as _;

/// The `traceparent` (and `tracestate`) of `span` through the global OpenTelemetry propagator:
/// empty unless the binary turned traces on (service-kit's `init_tracing` with
/// `OTEL_EXPORTER_OTLP_ENDPOINT`), or the span is not exported.
fn trace_context(span: &tracing::Span) -> reqwest::header::HeaderMap {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let mut headers = reqwest::header::HeaderMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(
            &span.context(),
            &mut opentelemetry_http::HeaderInjector(&mut headers),
        )
    });
    headers
}

/// What went wrong, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// 404.
    #[error("not found: {}", .0.detail)]
    NotFound(Problem),
    /// 403: this caller may not do that.
    #[error("forbidden: {}", .0.detail)]
    Forbidden(Problem),
    /// 409: the state changed, or the change is impossible.
    #[error("conflict: {}", .0.detail)]
    Conflict(Problem),
    /// 401 even after a fresh token.
    #[error("unauthorized: {}", .0.detail)]
    Unauthorized(Problem),
    /// 400, 413, 415 or 422: the request itself is wrong.
    #[error("invalid input: {}", .0.detail)]
    InvalidInput(Problem),
    /// 429, 5xx or the API unreachable, after retries where allowed.
    #[error("API unavailable: {0}")]
    Unavailable(String),
    /// No token could be obtained from Clerk.
    #[error(transparent)]
    Token(#[from] m2m_core::TokenError),
    /// Anything else (an unexpected status, a body that does not parse, a local I/O error).
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// Whether trying again later may help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Token(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Filters of [`JobTrackerClient::list_applications`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplicationFilter {
    /// Only this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationStatus>,
    /// Only this user's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Retries of idempotent calls.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts in total (default 3).
    pub attempts: u32,
    /// First delay, doubled each time and jittered (default 200 ms).
    pub base_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(200),
        }
    }
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JobTrackerClient {
    base: Arc<str>,
    authed: AuthedClient,
    retry: Retry,
}

impl JobTrackerClient {
    /// A client for `base_url` (e.g. `http://localhost:5000`) authenticating with `tokens`.
    pub fn new(base_url: &str, tokens: TokenSource) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("jobtracker-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unexpected(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').into(),
            authed: AuthedClient::new(http, tokens),
            retry: Retry::default(),
        })
    }

    /// Overrides the retry policy.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The token source (e.g. to warm it up at start).
    pub fn tokens(&self) -> &TokenSource {
        self.authed.tokens()
    }

    /// The API base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        let idempotent = matches!(
            method,
            Method::GET | Method::PUT | Method::DELETE | Method::HEAD
        );
        let attempts = if idempotent {
            self.retry.attempts.max(1)
        } else {
            1
        };
        let url = format!("{}{}", self.base, path);
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                let delay = self
                    .retry
                    .base_delay
                    .saturating_mul(1 << (attempt - 1).min(10))
                    .mul_f64(rand::rng().random_range(0.5..=1.0));
                tokio::time::sleep(delay).await;
            }
            // One client span per attempt; with traces on, its W3C `traceparent` goes along, so
            // the API's request span becomes its child.
            let span = tracing::info_span!(
                "jobtracker",
                otel.kind = "client",
                method = method.as_str(),
                path,
                attempt
            );
            let trace_headers = trace_context(&span);
            let result = self
                .authed
                .send(|http| {
                    build(http.request(method.clone(), &url)).headers(trace_headers.clone())
                })
                .instrument(span)
                .await;
            match result {
                Ok(r)
                    if r.status() == StatusCode::TOO_MANY_REQUESTS
                        || r.status().is_server_error() =>
                {
                    last = format!("{} {path} answered {}", method, r.status());
                    if attempt + 1 == attempts {
                        return Err(ClientError::Unavailable(last));
                    }
                }
                Ok(r) => return Ok(r),
                Err(AuthedRequestError::Token(e)) => return Err(ClientError::Token(e)),
                Err(AuthedRequestError::Http(e)) => {
                    last = format!(
                        "{} {path}: {}",
                        method,
                        if e.is_timeout() {
                            "timed out"
                        } else {
                            "connection failed"
                        }
                    );
                    if !idempotent && !e.is_connect() {
                        // The request may have reached the API: never repeat a POST/PATCH.
                        return Err(ClientError::Unavailable(last));
                    }
                }
                // A kind of failure m2m-core may add later: not known to be safe to repeat.
                Err(other) => {
                    return Err(ClientError::Unavailable(format!(
                        "{method} {path}: {other}"
                    )));
                }
            }
        }
        Err(ClientError::Unavailable(last))
    }

    async fn json<T: DeserializeOwned>(&self, response: Response) -> Result<T, ClientError> {
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unavailable(format!("reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Unexpected(format!("answer did not parse: {e}")));
        }
        Err(error_for(status, &bytes))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(method, path, build).await?;
        self.json(response).await
    }

    /// `GET /api/whoami`.
    pub async fn whoami(&self) -> Result<Whoami, ClientError> {
        self.call(Method::GET, "/api/whoami", |b| b).await
    }

    /// `POST /api/users`.
    pub async fn upsert_profile(&self, profile: &UserProfileInput) -> Result<User, ClientError> {
        self.call(Method::POST, "/api/users", |b| b.json(profile))
            .await
    }

    /// `GET /api/users/me`.
    pub async fn me(&self) -> Result<User, ClientError> {
        self.call(Method::GET, "/api/users/me", |b| b).await
    }

    /// `GET /api/users/{user_id}`.
    pub async fn get_user(&self, user_id: &UserId) -> Result<User, ClientError> {
        self.call(Method::GET, &format!("/api/users/{user_id}"), |b| b)
            .await
    }

    /// `POST /api/users/{user_id}/resumes?file_name=…` with the raw file.
    pub async fn upload_resume(
        &self,
        user_id: &UserId,
        file_name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Resume, ClientError> {
        let body = bytes::Bytes::from(bytes);
        self.call(
            Method::POST,
            &format!("/api/users/{user_id}/resumes"),
            |b| {
                b.query(&[("file_name", file_name)])
                    .header("content-type", content_type)
                    .body(body.clone())
            },
        )
        .await
    }

    /// `GET /api/users/{user_id}/resumes`.
    pub async fn list_resumes(
        &self,
        user_id: &UserId,
        cursor: Option<&str>,
    ) -> Result<Page<Resume>, ClientError> {
        self.call(Method::GET, &format!("/api/users/{user_id}/resumes"), |b| {
            b.query(&[("cursor", cursor)])
        })
        .await
    }

    /// Downloads a resume into memory, checked against the SHA-256 the API sent. Nothing is
    /// written to disk: a resume is personal data, and a file would outlive a crash.
    pub async fn download_resume(
        &self,
        resume_id: &ResumeId,
    ) -> Result<ResumeContent, ClientError> {
        let response = self
            .send(
                Method::GET,
                &format!("/api/resumes/{resume_id}/content"),
                |b| b,
            )
            .await?;
        let status = response.status();
        let expected = response
            .headers()
            .get("x-content-sha256")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unavailable(format!("reading the resume: {e}")))?;
        if !status.is_success() {
            return Err(error_for(status, &bytes));
        }
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if expected.as_deref().is_some_and(|e| e != sha) {
            return Err(ClientError::Unavailable(
                "the resume arrived corrupted (checksum mismatch)".into(),
            ));
        }
        Ok(ResumeContent {
            bytes: Vec::from(bytes),
            sha256: sha,
        })
    }

    /// `POST /api/job-applications`.
    pub async fn create_application(
        &self,
        input: &CreateApplication,
    ) -> Result<Application, ClientError> {
        self.call(Method::POST, "/api/job-applications", |b| b.json(input))
            .await
    }

    /// `GET /api/job-applications`.
    pub async fn list_applications(
        &self,
        filter: &ApplicationFilter,
    ) -> Result<Page<Application>, ClientError> {
        self.call(Method::GET, "/api/job-applications", |b| b.query(filter))
            .await
    }

    /// `GET /api/job-applications/{id}`.
    pub async fn get_application(&self, id: &ApplicationId) -> Result<Application, ClientError> {
        self.call(Method::GET, &format!("/api/job-applications/{id}"), |b| b)
            .await
    }

    /// `GET /api/job-applications/{id}/events`.
    pub async fn list_events(
        &self,
        id: &ApplicationId,
        cursor: Option<&str>,
    ) -> Result<Page<Event>, ClientError> {
        self.call(
            Method::GET,
            &format!("/api/job-applications/{id}/events"),
            |b| b.query(&[("cursor", cursor)]),
        )
        .await
    }

    /// `PATCH /api/job-applications/{id}/status`.
    pub async fn update_status(
        &self,
        id: &ApplicationId,
        update: &StatusUpdate,
    ) -> Result<Application, ClientError> {
        self.call(
            Method::PATCH,
            &format!("/api/job-applications/{id}/status"),
            |b| b.json(update),
        )
        .await
    }

    /// `POST /api/job-applications/claim`: `None` when nothing is ready. The answer carries the
    /// claim's `lease_id`: pass it to [`update_status`](Self::update_status) (in the
    /// [`StatusUpdate`]), [`renew_lease`](Self::renew_lease) and
    /// [`release_lease`](Self::release_lease); once another claim supersedes it they get 409.
    pub async fn claim(&self, lease: Duration) -> Result<Option<ClaimedApplication>, ClientError> {
        let body = LeaseRequest {
            lease_seconds: Some(lease.as_secs() as u32),
            lease_id: None,
        };
        let response = self
            .send(Method::POST, "/api/job-applications/claim", |b| {
                b.json(&body)
            })
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        self.json(response).await.map(Some)
    }

    /// `PUT /api/job-applications/{id}/lease`: extends the live claim `lease_id`.
    pub async fn renew_lease(
        &self,
        id: &ApplicationId,
        lease_id: &LeaseId,
        lease: Duration,
    ) -> Result<Application, ClientError> {
        let body = LeaseRequest {
            lease_seconds: Some(lease.as_secs() as u32),
            lease_id: Some(lease_id.to_string()),
        };
        self.call(
            Method::PUT,
            &format!("/api/job-applications/{id}/lease"),
            |b| b.json(&body),
        )
        .await
    }

    /// `DELETE /api/job-applications/{id}/lease`: gives the claim `lease_id` back.
    pub async fn release_lease(
        &self,
        id: &ApplicationId,
        lease_id: &LeaseId,
    ) -> Result<(), ClientError> {
        let body = LeaseRelease {
            lease_id: Some(lease_id.to_string()),
        };
        let response = self
            .send(
                Method::DELETE,
                &format!("/api/job-applications/{id}/lease"),
                |b| b.json(&body),
            )
            .await?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        Err(error_for(status, &bytes))
    }

    /// `GET /api/questions`.
    pub async fn list_questions(
        &self,
        unanswered: bool,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<QuestionWithContext>, ClientError> {
        self.call(Method::GET, "/api/questions", |b| {
            b.query(&[("unanswered", Some(unanswered.to_string()))])
                .query(&[("cursor", cursor)])
                .query(&[("limit", limit)])
        })
        .await
    }

    /// `PUT /api/job-applications/{id}/questions/{qid}/answer`.
    pub async fn answer_question(
        &self,
        application_id: &ApplicationId,
        question_id: &QuestionId,
        answer: &AnswerInput,
    ) -> Result<Application, ClientError> {
        self.call(
            Method::PUT,
            &format!("/api/job-applications/{application_id}/questions/{question_id}/answer"),
            |b| b.json(answer),
        )
        .await
    }
}

fn error_for(status: StatusCode, body: &[u8]) -> ClientError {
    let problem: Problem = serde_json::from_slice(body).unwrap_or_else(|_| Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        detail: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        field: None,
    });
    match status.as_u16() {
        401 => ClientError::Unauthorized(problem),
        403 => ClientError::Forbidden(problem),
        404 => ClientError::NotFound(problem),
        409 => ClientError::Conflict(problem),
        400 | 413 | 415 | 422 => ClientError::InvalidInput(problem),
        429 | 500..=599 => ClientError::Unavailable(format!("{status}: {}", problem.detail)),
        _ => ClientError::Unexpected(format!("{status}: {}", problem.detail)),
    }
}

/// A downloaded resume: its bytes and their hex SHA-256 (checked against the API's).
#[derive(Clone, PartialEq, Eq)]
pub struct ResumeContent {
    /// The file.
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
}

impl std::fmt::Debug for ResumeContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Personal data: only its size and checksum.
        f.debug_struct("ResumeContent")
            .field("len", &self.bytes.len())
            .field("sha256", &self.sha256)
            .finish()
    }
}
