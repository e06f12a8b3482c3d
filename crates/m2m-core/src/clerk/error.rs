//! Typed errors from Clerk's Backend API.

use std::time::Duration;

use serde::Deserialize;

/// Clerk's error body: `{"errors":[{message,long_message,code,meta}],"clerk_trace_id"}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClerkErrorBody {
    /// The individual errors; the first is the most relevant.
    #[serde(default)]
    pub errors: Vec<ClerkErrorItem>,
    /// Clerk's trace id, for support requests.
    #[serde(default)]
    pub clerk_trace_id: Option<String>,
}

/// One entry of [`ClerkErrorBody::errors`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClerkErrorItem {
    /// Machine-readable code, e.g. `resource_not_found`.
    #[serde(default)]
    pub code: String,
    /// Short message.
    #[serde(default)]
    pub message: String,
    /// Longer message.
    #[serde(default)]
    pub long_message: Option<String>,
    /// Free-form metadata such as `param_name`.
    #[serde(default)]
    pub meta: Option<serde_json::Value>,
}

impl ClerkErrorBody {
    /// The first error's code, if any.
    pub fn code(&self) -> Option<&str> {
        self.errors.first().map(|e| e.code.as_str())
    }

    fn summary(&self) -> String {
        match self.errors.first() {
            Some(e) => {
                let mut s = format!(
                    "{}: {}",
                    e.code,
                    e.long_message.as_deref().unwrap_or(&e.message)
                );
                if let Some(t) = &self.clerk_trace_id {
                    s.push_str(&format!(" (clerk_trace_id {t})"));
                }
                s
            }
            None => "no error body".to_owned(),
        }
    }
}

/// What went wrong talking to Clerk. Messages never contain a token or key.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClerkError {
    /// 401: the key used to call Clerk is wrong, of the wrong kind, or missing.
    #[error("Clerk rejected the credentials (401): {}", .body.summary())]
    Unauthorized {
        /// Clerk's error body.
        body: ClerkErrorBody,
    },
    /// 403: authenticated but not allowed (e.g. listing another machine's tokens).
    #[error("Clerk refused the request (403): {}", .body.summary())]
    Forbidden {
        /// Clerk's error body.
        body: ClerkErrorBody,
    },
    /// 404: the token (or resource) does not exist, is revoked or expired, or is not scoped to
    /// the verifying machine.
    #[error("not found at Clerk (404): {}", .body.summary())]
    NotFound {
        /// Clerk's error body.
        body: ClerkErrorBody,
    },
    /// 400, 409 or 422: the request was invalid; `body.code()` says why.
    #[error("Clerk rejected the request ({status}): {}", .body.summary())]
    BadRequest {
        /// HTTP status.
        status: u16,
        /// Clerk's error body.
        body: ClerkErrorBody,
    },
    /// 429 after the retry budget was spent.
    #[error("rate limited by Clerk (429){}: {}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default(), .body.summary())]
    RateLimited {
        /// Clerk's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// Clerk's error body.
        body: ClerkErrorBody,
    },
    /// Clerk could not be reached or failed: 5xx, timeout, connection refused or reset.
    #[error("Clerk unavailable: {reason}")]
    Unavailable {
        /// What happened, without secrets.
        reason: String,
        /// Clerk's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// Anything else: an unexpected status, or a body that did not parse.
    #[error("unexpected answer from Clerk: {message}")]
    Unexpected {
        /// HTTP status, if a response was received.
        status: Option<u16>,
        /// What was unexpected.
        message: String,
    },
    /// The client itself is misconfigured (e.g. an invalid base URL).
    #[error("Clerk client misconfigured: {0}")]
    Config(String),
}

impl ClerkError {
    /// Whether retrying the same request later may succeed (429, 5xx, network).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable { .. })
    }

    /// The server's `Retry-After`, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Clerk's error code (`errors[0].code`), if the body had one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { body }
            | Self::Forbidden { body }
            | Self::NotFound { body }
            | Self::BadRequest { body, .. }
            | Self::RateLimited { body, .. } => body.code(),
            _ => None,
        }
    }

    pub(crate) fn from_status(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let parsed: ClerkErrorBody = serde_json::from_slice(body).unwrap_or_default();
        match status {
            401 => Self::Unauthorized { body: parsed },
            403 => Self::Forbidden { body: parsed },
            404 => Self::NotFound { body: parsed },
            400 | 409 | 422 => Self::BadRequest {
                status,
                body: parsed,
            },
            429 => Self::RateLimited {
                retry_after,
                body: parsed,
            },
            500..=599 => Self::Unavailable {
                reason: format!("HTTP {status}: {}", parsed.summary()),
                retry_after,
            },
            _ => Self::Unexpected {
                status: Some(status),
                message: format!("HTTP {status}: {}", parsed.summary()),
            },
        }
    }

    pub(crate) fn from_reqwest(err: &reqwest::Error) -> Self {
        // reqwest's Display can include the URL; ours holds no secrets, but keep the text short.
        let kind = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "connection failed"
        } else if err.is_request() || err.is_body() {
            "connection error"
        } else if err.is_decode() {
            return Self::Unexpected {
                status: None,
                message: "response body did not decode".into(),
            };
        } else {
            "transport error"
        };
        let mut source = std::error::Error::source(err);
        let mut detail = String::new();
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        Self::Unavailable {
            reason: if detail.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind}: {detail}")
            },
            retry_after: None,
        }
    }
}
