//! Clerk's M2M token and JWKS payloads, as in Clerk's Backend API spec (2026-05-12).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::secret::BearerToken;
use crate::token_format::TokenFormat;

/// Body of `POST /m2m_tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateM2mTokenRequest {
    /// `opaque` (default) or `jwt`.
    pub token_format: TokenFormat,
    /// Lifetime in seconds; `None` lets Clerk use the machine's `default_token_ttl`.
    pub seconds_until_expiration: Option<u64>,
    /// Custom claims.
    pub claims: Option<Value>,
    /// Server-side reuse of a live opaque token with at least this much lifetime left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_remaining_ttl_seconds: Option<u64>,
}

/// An M2M token as Clerk describes it (verify, list and revoke responses). Timestamps are Unix
/// milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct M2mToken {
    /// Always `machine_to_machine_token`.
    pub object: String,
    /// Token id, `mt_` + 32 hex (not the bearer secret).
    pub id: String,
    /// The machine that created the token, `mch_…`.
    pub subject: String,
    /// Custom claims.
    #[serde(default)]
    pub claims: Option<Value>,
    /// Machines the token is valid for.
    #[serde(default, deserialize_with = "null_as_default")]
    pub scopes: Vec<String>,
    /// Whether the token was revoked.
    pub revoked: bool,
    /// Why it was revoked.
    #[serde(default)]
    pub revocation_reason: Option<String>,
    /// Whether the token has expired.
    pub expired: bool,
    /// Expiry, Unix ms (`None`: does not expire).
    #[serde(default, deserialize_with = "opt_millis")]
    pub expiration: Option<i64>,
    /// Last verification, Unix ms.
    #[serde(default, deserialize_with = "opt_millis")]
    pub last_used_at: Option<i64>,
    /// Creation, Unix ms.
    #[serde(deserialize_with = "millis")]
    pub created_at: i64,
    /// Last update, Unix ms.
    #[serde(deserialize_with = "millis")]
    pub updated_at: i64,
}

/// The `POST /m2m_tokens` response: the token's metadata plus the bearer value, which Clerk
/// returns only here.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedM2mToken {
    /// The bearer value (`mt_…` or a JWT).
    pub token: BearerToken,
    /// Everything else.
    #[serde(flatten)]
    pub info: M2mToken,
    /// Clerk's clock when it answered (HTTP `Date`, Unix ms), used to compute how much lifetime a
    /// reused token has left.
    #[serde(skip)]
    pub server_time_ms: Option<i64>,
}

/// Query of `GET /m2m_tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ListM2mTokensQuery {
    /// The machine whose tokens to list (required by Clerk).
    pub subject: String,
    /// Include revoked tokens.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
    /// Include expired tokens.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
    /// Page size, 1–100 (Clerk's default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// The `GET /m2m_tokens` response.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct M2mTokenList {
    /// Tokens, newest first.
    pub m2m_tokens: Vec<M2mToken>,
    /// Total matching tokens.
    pub total_count: u64,
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

// The spec types timestamps as `number`; accept integral floats too.
fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = serde_json::Number::deserialize(d)?;
    number_to_millis(&v).ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
}

fn opt_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(v) => number_to_millis(&v)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("timestamp out of range")),
    }
}

fn number_to_millis(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}
