//! One error type for the API; every answer is `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use m2m_core::AuthRejection;
use std::sync::LazyLock;

use service_kit::{LogThrottle, problem};

use crate::store::{Conflict, StoreError};

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Authentication failed or the caller is not allowed (401/403/503/500 from m2m-core).
    #[error("authentication: {0:?}")]
    Auth(AuthRejection),
    /// 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the state changed, or the request conflicts with it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 422 with the offending field.
    #[error("invalid {field}: {detail}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// 400: the body is not valid JSON, or similar.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 413.
    #[error("payload too large: {0}")]
    TooLarge(String),
    /// 415.
    #[error("unsupported media type: {0}")]
    Unsupported(String),
    /// 503: the database is unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 503: a bounded resource (upload slots) stayed taken; retry shortly.
    #[error("busy: {0}")]
    Busy(&'static str),
    /// 500: logged with its cause, answered without it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 for `field`.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(e: crate::domain::Invalid) -> Self {
        Self::Invalid {
            field: e.field.to_owned(),
            detail: e.detail,
        }
    }
}

impl From<AuthRejection> for ApiError {
    fn from(r: AuthRejection) -> Self {
        Self::Auth(r)
    }
}

/// The store's failures as answers: a guarded write that changed nothing is a 409 with the
/// store's reason (413 when it is the resume quota's bytes), an unreachable database a 503,
/// anything else a 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what.name()),
            StoreError::Conflict(why @ Conflict::ResumeQuota { .. }) => {
                Self::TooLarge(why.to_string())
            }
            StoreError::Conflict(why) => Self::Conflict(why.to_string()),
            StoreError::Corrupt(detail) => Self::Internal(detail),
            StoreError::Database(
                e @ (sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)),
            ) => Self::Unavailable(e.to_string()),
            StoreError::Database(other) => Self::Internal(format!("database: {other}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Auth(r) => r.into_response(),
            Self::Forbidden(d) => problem(StatusCode::FORBIDDEN, &d, None),
            Self::NotFound(what) => {
                problem(StatusCode::NOT_FOUND, &format!("{what} not found"), None)
            }
            Self::Conflict(d) => problem(StatusCode::CONFLICT, &d, None),
            Self::Invalid { field, detail } => {
                problem(StatusCode::UNPROCESSABLE_ENTITY, &detail, Some(&field))
            }
            Self::BadRequest(d) => problem(StatusCode::BAD_REQUEST, &d, None),
            Self::TooLarge(d) => problem(StatusCode::PAYLOAD_TOO_LARGE, &d, None),
            Self::Unsupported(d) => problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, &d, None),
            Self::Unavailable(cause) => {
                static UNAVAILABLE: LazyLock<LogThrottle> = LazyLock::new(LogThrottle::default);
                if let Some(suppressed) = UNAVAILABLE.admit() {
                    tracing::error!(%cause, suppressed, "database unavailable");
                }
                let mut r = problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable; retry later",
                    None,
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                r
            }
            Self::Busy(detail) => {
                let mut r = problem(StatusCode::SERVICE_UNAVAILABLE, detail, None);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
            Self::Internal(cause) => {
                static INTERNAL: LazyLock<LogThrottle> = LazyLock::new(LogThrottle::default);
                if let Some(suppressed) = INTERNAL.admit() {
                    tracing::error!(%cause, suppressed, "internal error");
                }
                problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
            }
        }
    }
}
