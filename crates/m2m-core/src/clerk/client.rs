//! The HTTP client for Clerk's Backend API: M2M tokens, JWKS and (feature `admin`) machines.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::ClerkError;
use super::models::{
    CreateM2mTokenRequest, CreatedM2mToken, ListM2mTokensQuery, M2mToken, M2mTokenList,
};
use crate::clock::{self, Clock};

/// Clerk's production Backend API base URL.
pub const DEFAULT_API_BASE_URL: &str = "https://api.clerk.com/v1";

/// The Clerk API version this client speaks (sent as `Clerk-API-Version`).
pub const CLERK_API_VERSION: &str = "2026-05-12";

/// Which Clerk call is being made; used in logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /m2m_tokens`
    CreateToken,
    /// `POST /m2m_tokens/verify`
    VerifyToken,
    /// `POST /m2m_tokens/{id}/revoke`
    RevokeToken,
    /// `GET /m2m_tokens`
    ListTokens,
    /// `GET /jwks` or a JWKS URL
    Jwks,
    /// `GET /machines`
    ListMachines,
    /// `GET /machines/{id}`
    GetMachine,
    /// `POST /machines`
    CreateMachine,
    /// `PATCH /machines/{id}`
    UpdateMachine,
    /// `DELETE /machines/{id}`
    DeleteMachine,
    /// `GET /machines/{id}/secret_key`
    GetMachineSecretKey,
    /// `POST /machines/{id}/secret_key/rotate`
    RotateMachineSecretKey,
    /// `POST /machines/{id}/scopes`
    CreateMachineScope,
    /// `DELETE /machines/{id}/scopes/{other}`
    DeleteMachineScope,
}

impl Operation {
    /// A stable label (`create`, `verify`, `revoke`, `list`, `jwks`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateToken => "create",
            Self::VerifyToken => "verify",
            Self::RevokeToken => "revoke",
            Self::ListTokens => "list",
            Self::Jwks => "jwks",
            Self::ListMachines => "machines_list",
            Self::GetMachine => "machines_get",
            Self::CreateMachine => "machines_create",
            Self::UpdateMachine => "machines_update",
            Self::DeleteMachine => "machines_delete",
            Self::GetMachineSecretKey => "machines_secret_key",
            Self::RotateMachineSecretKey => "machines_rotate_secret_key",
            Self::CreateMachineScope => "machines_add_scope",
            Self::DeleteMachineScope => "machines_remove_scope",
        }
    }

    /// Whether a second attempt after an unknown outcome (timeout, 5xx) could do harm: a
    /// duplicate machine, or a rotated key whose new secret nobody saw.
    fn retry_needs_proof_of_no_effect(self) -> bool {
        matches!(self, Self::CreateMachine | Self::RotateMachineSecretKey)
    }
}

/// Called once per finished Clerk call (after retries) with the operation and an outcome label
/// (`ok`, `unauthorized`, `not_found`, `bad_request`, `rate_limited`, `unavailable`, …).
pub type CallObserver = Arc<dyn Fn(Operation, &'static str) + Send + Sync>;

/// Bounded exponential backoff with jitter for transient failures (429, 5xx, network).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled each time, then jittered to 50–100 %.
    pub base_delay: Duration,
    /// Upper bound for one computed delay.
    pub max_delay: Duration,
    /// Upper bound for all waiting; a `Retry-After` beyond what is left is not waited for.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_total_wait: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_delay);
        exp.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// Builder for [`ClerkClient`].
pub struct ClerkClientBuilder {
    base_url: String,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    observer: Option<CallObserver>,
}

impl fmt::Debug for ClerkClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClerkClientBuilder")
            .field("base_url", &self.base_url)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClerkClientBuilder {
    /// Total time for one HTTP attempt (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time to establish a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retry policy for transient failures.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Clock used for backoff sleeps.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Observer notified of every call's outcome (metrics).
    pub fn observer(mut self, observer: CallObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<ClerkClient, ClerkError> {
        let base = self.base_url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| ClerkError::Config(format!("invalid Clerk API base URL {base:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClerkError::Config(format!(
                "Clerk API base URL must be http(s), got {base:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("m2m-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClerkError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(ClerkClient {
            inner: Arc::new(Inner {
                http,
                base,
                retry: self.retry,
                clock: self.clock,
                observer: self.observer,
            }),
        })
    }
}

/// A typed client for Clerk's M2M token endpoints and JWKS. Cheap to clone (one shared
/// connection pool).
#[derive(Clone)]
pub struct ClerkClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    observer: Option<CallObserver>,
}

impl fmt::Debug for ClerkClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClerkClient")
            .field("base_url", &self.inner.base)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl ClerkClient {
    /// A builder with defaults: 10 s timeout, 5 s connect timeout, [`RetryPolicy::default`].
    pub fn builder(base_url: impl Into<String>) -> ClerkClientBuilder {
        ClerkClientBuilder {
            base_url: base_url.into(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            clock: clock::system(),
            observer: None,
        }
    }

    /// A client with defaults for `base_url` (e.g. `https://api.clerk.com/v1`).
    pub fn new(base_url: impl Into<String>) -> Result<Self, ClerkError> {
        Self::builder(base_url).build()
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The shared HTTP client (e.g. for fetching a JWKS URL with the same pool).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// `POST /m2m_tokens`, authenticated with the creating machine's secret key (`ak_…`).
    pub async fn create_m2m_token(
        &self,
        machine_secret_key: &SecretString,
        request: &CreateM2mTokenRequest,
    ) -> Result<CreatedM2mToken, ClerkError> {
        let (mut created, headers): (CreatedM2mToken, HeaderMap) = self
            .call(
                Operation::CreateToken,
                Method::POST,
                "/m2m_tokens",
                machine_secret_key,
                |b| b.json(request),
            )
            .await?;
        created.server_time_ms = server_date_ms(&headers);
        Ok(created)
    }

    /// `POST /m2m_tokens/verify` with `{"token": …}`, authenticated with the receiving machine's
    /// secret key (only tokens scoped to it verify) or the instance secret key (any token).
    pub async fn verify_m2m_token(
        &self,
        key: &SecretString,
        token: &str,
    ) -> Result<M2mToken, ClerkError> {
        let body = json!({ "token": token });
        self.call(
            Operation::VerifyToken,
            Method::POST,
            "/m2m_tokens/verify",
            key,
            |b| b.json(&body),
        )
        .await
        .map(|(t, _)| t)
    }

    /// `POST /m2m_tokens/{id}/revoke`. `token_id` is the `mt_` + 32 hex id, not the bearer value.
    pub async fn revoke_m2m_token(
        &self,
        key: &SecretString,
        token_id: &str,
        reason: Option<&str>,
    ) -> Result<M2mToken, ClerkError> {
        if !is_token_id(token_id) {
            return Err(ClerkError::BadRequest {
                status: 400,
                body: super::error::ClerkErrorBody {
                    errors: vec![super::error::ClerkErrorItem {
                        code: "invalid_token_id".into(),
                        message: "token id must be mt_ followed by 32 hex characters".into(),
                        ..Default::default()
                    }],
                    clerk_trace_id: None,
                },
            });
        }
        let body = json!({ "revocation_reason": reason });
        let path = format!("/m2m_tokens/{token_id}/revoke");
        self.call(Operation::RevokeToken, Method::POST, &path, key, |b| {
            b.json(&body)
        })
        .await
        .map(|(t, _)| t)
    }

    /// `GET /m2m_tokens?subject=…` (opaque tokens only, newest first).
    pub async fn list_m2m_tokens(
        &self,
        key: &SecretString,
        query: &ListM2mTokensQuery,
    ) -> Result<M2mTokenList, ClerkError> {
        self.call(
            Operation::ListTokens,
            Method::GET,
            "/m2m_tokens",
            key,
            |b| b.query(query),
        )
        .await
        .map(|(t, _)| t)
    }

    /// `GET /jwks` with the instance secret key (`sk_…`).
    #[cfg(feature = "verify")]
    pub(crate) async fn jwks(
        &self,
        instance_secret_key: &SecretString,
    ) -> Result<jsonwebtoken::jwk::JwkSet, ClerkError> {
        self.call(
            Operation::Jwks,
            Method::GET,
            "/jwks",
            instance_secret_key,
            |b| b,
        )
        .await
        .map(|(t, _)| t)
    }

    /// `GET` a public JWKS URL (e.g. the Frontend API's `/.well-known/jwks.json`), no auth.
    #[cfg(feature = "verify")]
    pub(crate) async fn jwks_from_url(
        &self,
        url: &str,
    ) -> Result<jsonwebtoken::jwk::JwkSet, ClerkError> {
        self.execute(Operation::Jwks, || self.inner.http.get(url))
            .await
            .map(|(t, _)| t)
    }

    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        key: &SecretString,
        customize: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<(T, HeaderMap), ClerkError> {
        let url = format!("{}{}", self.inner.base, path);
        self.execute(op, || {
            customize(
                self.inner
                    .http
                    .request(method.clone(), &url)
                    .bearer_auth(key.expose_secret())
                    .header("Clerk-API-Version", CLERK_API_VERSION),
            )
        })
        .await
    }

    /// One call, retries included, in a `clerk` span (its `outcome` recorded at the end): with
    /// OpenTelemetry on, a client span under whatever made the call. Nothing secret is on it.
    async fn execute<T: DeserializeOwned>(
        &self,
        op: Operation,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<(T, HeaderMap), ClerkError> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            "clerk",
            otel.kind = "client",
            operation = op.as_str(),
            outcome = tracing::field::Empty
        );
        self.execute_in_span(op, build).instrument(span).await
    }

    async fn execute_in_span<T: DeserializeOwned>(
        &self,
        op: Operation,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<(T, HeaderMap), ClerkError> {
        let policy = &self.inner.retry;
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = self.attempt::<T>(op, build()).await;
            let err = match result {
                Ok(ok) => {
                    self.observe(op, "ok");
                    return Ok(ok);
                }
                Err(err) => err,
            };
            // A 429 on verify is never retried: the verify path runs per incoming request,
            // and Clerk has just said to slow down (the verifier pauses instead).
            let no_retry = (op == Operation::VerifyToken
                && matches!(err, ClerkError::RateLimited { .. }))
                // Only a 429 proves Clerk did not act on the request.
                || (op.retry_needs_proof_of_no_effect()
                    && !matches!(err, ClerkError::RateLimited { .. }));
            // Verify runs on a caller's request and the miss budget admits it once: one retry
            // at most, so a 5xx storm cannot multiply the budget's calls by the policy's count.
            let max_attempts = match op {
                Operation::VerifyToken => policy.max_attempts.clamp(1, 2),
                _ => policy.max_attempts.max(1),
            };
            if no_retry || !err.is_transient() || attempt >= max_attempts {
                self.observe(op, outcome_label(&err));
                return Err(err);
            }
            let delay = err
                .retry_after()
                .unwrap_or_else(|| policy.backoff(attempt - 1));
            if waited + delay > policy.max_total_wait {
                tracing::warn!(op = op.as_str(), attempt, error = %err, "Clerk call failed; retry budget exhausted");
                self.observe(op, outcome_label(&err));
                return Err(err);
            }
            tracing::warn!(op = op.as_str(), attempt, delay_ms = delay.as_millis() as u64, error = %err, "Clerk call failed; retrying");
            self.inner.clock.sleep(delay).await;
            waited += delay;
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        op: Operation,
        request: RequestBuilder,
    ) -> Result<(T, HeaderMap), ClerkError> {
        let response = request
            .send()
            .await
            .map_err(|e| ClerkError::from_reqwest(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| ClerkError::from_reqwest(&e))?;
        tracing::debug!(op = op.as_str(), status = status.as_u16(), "Clerk answered");
        if status.is_success() {
            let value = serde_json::from_slice(&body).map_err(|e| ClerkError::Unexpected {
                status: Some(status.as_u16()),
                message: format!("response body did not match the expected shape: {e}"),
            })?;
            return Ok((value, headers));
        }
        Err(ClerkError::from_status(
            status.as_u16(),
            retry_after(&headers, status),
            &body,
        ))
    }

    fn observe(&self, op: Operation, outcome: &'static str) {
        tracing::Span::current().record("outcome", outcome);
        if let Some(observer) = &self.inner.observer {
            observer(op, outcome);
        }
    }
}

fn outcome_label(err: &ClerkError) -> &'static str {
    match err {
        ClerkError::Unauthorized { .. } => "unauthorized",
        ClerkError::Forbidden { .. } => "forbidden",
        ClerkError::NotFound { .. } => "not_found",
        ClerkError::BadRequest { .. } => "bad_request",
        ClerkError::RateLimited { .. } => "rate_limited",
        ClerkError::Unavailable { .. } => "unavailable",
        ClerkError::Unexpected { .. } | ClerkError::Config(_) => "unexpected",
    }
}

fn retry_after(headers: &HeaderMap, status: StatusCode) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return None;
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn server_date_ms(headers: &HeaderMap) -> Option<i64> {
    let value = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let at = httpdate::parse_http_date(value).ok()?;
    at.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}

/// Whether `id` has the shape of an M2M token id: `mt_` + 32 hex characters.
pub(crate) fn is_token_id(id: &str) -> bool {
    id.strip_prefix("mt_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
