//! Why a request's credentials were not accepted.

use std::time::Duration;

/// A verification failure. Every variant's text is fixed or built from our own values: never
/// from the presented token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `Authorization` header (401, no error code per RFC 6750 §3.1).
    #[error("missing bearer token")]
    Missing,
    /// The header or token is not well-formed (401 `invalid_token`).
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    /// The token is well-formed but not acceptable (401 `invalid_token`). The reason is one of
    /// the stable strings in [`reason`].
    #[error("invalid token: {0}")]
    Invalid(&'static str),
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
    /// The RFC 6750 `error_description` (a stable reason), if this is a 401.
    pub fn description(&self) -> Option<&'static str> {
        match self {
            Self::Malformed(r) | Self::Invalid(r) => Some(r),
            _ => None,
        }
    }
}

/// Stable rejection reasons (after Clerk's `TokenVerificationErrorReason`).
pub mod reason {
    /// Past `exp` (with 5 s skew).
    pub const EXPIRED: &str = "token-expired";
    /// Structurally wrong, or a required claim missing or of the wrong type.
    pub const INVALID: &str = "token-invalid";
    /// `alg` not RS256/RS384/RS512.
    pub const ALGORITHM: &str = "token-invalid-algorithm";
    /// `azp` missing or not listed.
    pub const AUTHORIZED_PARTIES: &str = "token-invalid-authorized-parties";
    /// The signature does not verify.
    pub const SIGNATURE: &str = "token-invalid-signature";
    /// `nbf` in the future (beyond skew).
    pub const NOT_ACTIVE_YET: &str = "token-not-active-yet";
    /// `iat` in the future (beyond skew).
    pub const IAT_IN_FUTURE: &str = "token-iat-in-the-future";
    /// `iss` differs from `CLERK_ISSUER`.
    pub const ISSUER: &str = "token-invalid-issuer";
    /// `typ` present and not `JWT`.
    pub const TYPE: &str = "token-invalid-type";
    /// A token of another kind on this path (M2M as session, template, OAuth, API key, …).
    pub const TYPE_MISMATCH: &str = "token-type-mismatch";
    /// `sts: "pending"`: the session has unfinished tasks.
    pub const PENDING_SESSION: &str = "session-pending";
    /// No key with the token's `kid`, even after refetching the JWKS.
    pub const KID: &str = "jwk-kid-mismatch";
    /// A kind of token this service is not configured to verify (e.g. a JWT where only M2M
    /// tokens are accepted).
    pub const TYPE_NOT_ACCEPTED: &str = "token-type-not-accepted";
    /// Clerk does not know the opaque token (or it is revoked, expired, or not for us).
    pub const NOT_FOUND: &str = "token-not-found";
    /// Clerk says revoked.
    pub const REVOKED: &str = "token-revoked";
    /// An M2M token whose scopes do not name this service's machine (`CLERK_MACHINE_ID`), or
    /// any M2M token that needs that check while this service's machine id is not configured.
    pub const NOT_SCOPED: &str = "token-not-scoped-to-receiver";
}
