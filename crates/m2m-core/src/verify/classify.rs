//! Which kind of token this is, decided without any network call or signature check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::error::{VerifyError, reason};

/// Clerk's token category (`cat` header) of M2M tokens.
pub const CAT_M2M: &str = "cl_B7d4PD333AAA";
/// Clerk's token category of session tokens.
pub const CAT_SESSION: &str = "cl_B7d4PD111AAA";
/// Clerk's token category of JWT-template tokens.
pub const CAT_TEMPLATE: &str = "cl_B7d4PD222AAA";

/// A JWT split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct DecodedJwt<'a> {
    /// Decoded header.
    pub header: Value,
    /// Decoded payload.
    pub payload: Value,
    /// `base64(header) + "." + base64(payload)`, the signed bytes.
    pub signing_input: &'a str,
    /// The signature, base64url.
    pub signature: &'a str,
}

/// The kinds of bearer token.
#[derive(Debug, Clone)]
pub enum TokenKind<'a> {
    /// `mt_…`: verified at Clerk.
    OpaqueM2m,
    /// A JWT whose `sub` starts with `mch_` or whose `cat` is the M2M category.
    M2mJwt(DecodedJwt<'a>),
    /// Any other JWT: treated as a user session token.
    SessionJwt(DecodedJwt<'a>),
}

/// Cheap shape check for opaque tokens: `mt_` + 16–128 URL-safe characters. Anything else never
/// reaches Clerk.
pub fn is_opaque_m2m(token: &str) -> bool {
    token.strip_prefix("mt_").is_some_and(|rest| {
        (16..=128).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// Splits a compact JWT into exactly three non-empty base64url parts and decodes the JSON header
/// and payload (both must be objects).
pub fn decode_jwt(token: &str) -> Result<DecodedJwt<'_>, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed(
            "not a JWT: expected three dot-separated parts",
        ));
    };
    let is_b64url = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !(is_b64url(h) && is_b64url(p) && is_b64url(s)) {
        return Err(VerifyError::Malformed(
            "not a JWT: parts must be non-empty base64url",
        ));
    }
    let json = |part: &str| -> Result<Value, VerifyError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| VerifyError::Malformed("not a JWT: bad base64url"))?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(VerifyError::Malformed(
                "not a JWT: header and payload must be JSON objects",
            )),
        }
    };
    let header = json(h)?;
    let payload = json(p)?;
    Ok(DecodedJwt {
        header,
        payload,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature: s,
    })
}

/// Routes a token as Clerk's SDK does (docs/clerk-behaviour.md, *Telling tokens apart*): `mt_`
/// → opaque; JWT with `mch_` subject or M2M `cat` → M2M JWT; other JWT → session; anything else
/// (API keys, OAuth tokens, junk) → rejected.
pub fn classify(token: &str) -> Result<TokenKind<'_>, VerifyError> {
    if token.starts_with("mt_") {
        return if is_opaque_m2m(token) {
            Ok(TokenKind::OpaqueM2m)
        } else {
            Err(VerifyError::Malformed("malformed M2M token"))
        };
    }
    if !token.contains('.') {
        return Err(VerifyError::Invalid(reason::TYPE_MISMATCH));
    }
    let jwt = decode_jwt(token)?;
    let machine_subject = jwt
        .payload
        .get("sub")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("mch_"));
    let m2m_category = jwt.header.get("cat").and_then(Value::as_str) == Some(CAT_M2M);
    if machine_subject || m2m_category {
        Ok(TokenKind::M2mJwt(jwt))
    } else {
        Ok(TokenKind::SessionJwt(jwt))
    }
}
