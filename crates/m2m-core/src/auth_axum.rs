//! axum glue: `Principal` as an extractor, and rejections as RFC 6750 + RFC 9457 responses.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::verify::{MachinePrincipal, Principal, UserPrincipal, Verifier, VerifyError};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRejection {
    /// Authentication failed.
    Verify(VerifyError),
    /// Authenticated, but this caller may not do this (403).
    Forbidden(&'static str),
}

impl From<VerifyError> for AuthRejection {
    fn from(e: VerifyError) -> Self {
        Self::Verify(e)
    }
}

fn problem(status: StatusCode, detail: &str) -> Response {
    service_kit::problem(status, detail, None)
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Verify(VerifyError::Missing) => {
                let mut r = problem(StatusCode::UNAUTHORIZED, "missing bearer token");
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            Self::Verify(e @ (VerifyError::Malformed(_) | VerifyError::Invalid(_))) => {
                let description = e.description().unwrap_or("invalid token");
                let mut r = problem(StatusCode::UNAUTHORIZED, description);
                // The description is one of our fixed strings: nothing from the token.
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "Bearer error=\"invalid_token\", error_description=\"{description}\""
                )) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
            Self::Verify(VerifyError::Unavailable { retry_after, .. }) => {
                let mut r = problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "authentication is temporarily unavailable; retry later",
                );
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                );
                r
            }
            Self::Verify(VerifyError::Misconfigured(_)) => problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server cannot verify credentials",
            ),
            Self::Forbidden(detail) => {
                let mut r = problem(StatusCode::FORBIDDEN, detail);
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
                );
                r
            }
        }
    }
}

impl<S> FromRequestParts<S> for Principal
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let verifier = Arc::<Verifier>::from_ref(state);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        let principal = verifier
            .verify_header(header)
            .await
            .inspect_err(|e| match e {
                VerifyError::Misconfigured(m) => {
                    tracing::error!(error = %m, "cannot verify credentials")
                }
                // The cause (Clerk down, budget spent, JWKS unreachable) is logged where it
                // happens, rate-limited: one line per request would let a flood flood the log.
                VerifyError::Unavailable { reason, .. } => {
                    tracing::debug!(%reason, "credentials could not be verified now")
                }
                other => tracing::debug!(reason = %other, "credentials rejected"),
            })?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// Extractor that requires a user.
#[derive(Debug, Clone)]
pub struct RequireUser(pub UserPrincipal);

impl<S> FromRequestParts<S> for RequireUser
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::User(u) => Ok(Self(u)),
            Principal::Machine(_) => Err(AuthRejection::Forbidden("this route is for users")),
        }
    }
}

/// Extractor that requires a machine (of any id; check with [`require_machine`] for an
/// allow-list).
#[derive(Debug, Clone)]
pub struct RequireMachine(pub MachinePrincipal);

impl<S> FromRequestParts<S> for RequireMachine
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Machine(m) => Ok(Self(m)),
            Principal::User(_) => Err(AuthRejection::Forbidden("this route is for machines")),
        }
    }
}

/// The machine, if it is one of `allowed`; otherwise 403. An authenticated machine that is not
/// on the list is never silently trusted.
pub fn require_machine<'a>(
    principal: &'a Principal,
    allowed: &[&str],
) -> Result<&'a MachinePrincipal, AuthRejection> {
    principal
        .machine_in(allowed)
        .ok_or(AuthRejection::Forbidden(
            "this machine is not allowed to call this route",
        ))
}
