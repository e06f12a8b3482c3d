//! Why a request's credentials were not accepted.

use std::fmt;
use std::time::Duration;

/// A verification failure. Every variant's text is fixed or built from our own values: never
/// from the presented token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Authorization` header (401, no error code per RFC 6750 §3.1).
    #[error("missing bearer token")]
    Missing,
    /// The header or token is not well-formed (401 `invalid_token`).
    #[error("malformed credentials: {0}")]
    Malformed(Reason),
    /// The token is well-formed but not acceptable (401 `invalid_token`).
    #[error("invalid token: {0}")]
    Invalid(Reason),
    /// The token cannot be checked now: Clerk or the JWKS endpoint is unreachable and nothing
    /// usable is cached (503 with `Retry-After`).
    #[error("token verification unavailable: {reason}")]
    Unavailable {
        /// What failed (no secrets).
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// This server cannot verify tokens: its own key was rejected or no key source is
    /// configured (500; logged at ERROR; never blamed on the caller).
    #[error("server authentication misconfigured: {0}")]
    Misconfigured(String),
}

impl VerifyError {
    /// The reason, if this is a 401 for bad credentials.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Self::Malformed(r) | Self::Invalid(r) => Some(*r),
            _ => None,
        }
    }

    /// The RFC 6750 `error_description` (a stable reason), if this is a 401.
    pub fn description(&self) -> Option<&'static str> {
        self.reason().map(Reason::as_str)
    }
}

/// Why credentials were refused with a 401: the RFC 6750 `error_description`, and the `detail` of
/// the problem+json body or the gRPC `grpc-message`. [`as_str`](Self::as_str) gives the stable
/// wire string; the token-rule reasons follow Clerk's `TokenVerificationErrorReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Past `exp` (with 5 s skew).
    Expired,
    /// Structurally wrong, or a required claim missing or of the wrong type.
    Invalid,
    /// `alg` not RS256/RS384/RS512.
    Algorithm,
    /// `azp` missing or not listed.
    AuthorizedParties,
    /// The signature does not verify.
    Signature,
    /// `nbf` in the future (beyond skew).
    NotActiveYet,
    /// `iat` in the future (beyond skew).
    IatInFuture,
    /// `iss` differs from `CLERK_ISSUER`.
    Issuer,
    /// `typ` present and not `JWT`.
    Type,
    /// A token of another kind on this path (M2M as session, template, OAuth, API key, …).
    TypeMismatch,
    /// `sts: "pending"`: the session has unfinished tasks.
    PendingSession,
    /// No key with the token's `kid`, even after refetching the JWKS.
    Kid,
    /// A kind of token this service is not configured to verify (e.g. a JWT where only M2M
    /// tokens are accepted).
    TypeNotAccepted,
    /// Clerk does not know the opaque token (or it is revoked, expired, or not for us).
    NotFound,
    /// Clerk says revoked.
    Revoked,
    /// An M2M token whose scopes do not name this service's machine (`CLERK_MACHINE_ID`), or
    /// any M2M token that needs that check while this service's machine id is not configured.
    NotScoped,
    // Malformed credentials (`VerifyError::Malformed`).
    /// The `Authorization` header is longer than the limit (8 KiB).
    HeaderTooLarge,
    /// The header has bytes outside visible ASCII.
    HeaderNotAscii,
    /// The scheme is not `Bearer` (case-insensitive).
    SchemeNotBearer,
    /// `Bearer` with no token.
    EmptyToken,
    /// The token is not an RFC 6750 `b64token`.
    InvalidCharacters,
    /// `mt_…` but not 32 letters and digits after it.
    MalformedM2mToken,
    /// Not `header.payload.signature`.
    NotThreeParts,
    /// A part of the JWT is empty.
    EmptyParts,
    /// A part of the JWT is not base64url.
    BadBase64,
    /// The header or payload is not a JSON object.
    NotJsonObjects,
}

impl Reason {
    /// The stable wire string (`token-expired`, `empty bearer token`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "token-expired",
            Self::Invalid => "token-invalid",
            Self::Algorithm => "token-invalid-algorithm",
            Self::AuthorizedParties => "token-invalid-authorized-parties",
            Self::Signature => "token-invalid-signature",
            Self::NotActiveYet => "token-not-active-yet",
            Self::IatInFuture => "token-iat-in-the-future",
            Self::Issuer => "token-invalid-issuer",
            Self::Type => "token-invalid-type",
            Self::TypeMismatch => "token-type-mismatch",
            Self::PendingSession => "session-pending",
            Self::Kid => "jwk-kid-mismatch",
            Self::TypeNotAccepted => "token-type-not-accepted",
            Self::NotFound => "token-not-found",
            Self::Revoked => "token-revoked",
            Self::NotScoped => "token-not-scoped-to-receiver",
            Self::HeaderTooLarge => "authorization header too large",
            Self::HeaderNotAscii => "authorization header is not ASCII",
            Self::SchemeNotBearer => "authorization scheme must be Bearer",
            Self::EmptyToken => "empty bearer token",
            Self::InvalidCharacters => "bearer token has invalid characters",
            Self::MalformedM2mToken => "malformed M2M token",
            Self::NotThreeParts => "not a JWT: expected three dot-separated parts",
            Self::EmptyParts => "not a JWT: parts must be non-empty base64url",
            Self::BadBase64 => "not a JWT: bad base64url",
            Self::NotJsonObjects => "not a JWT: header and payload must be JSON objects",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
