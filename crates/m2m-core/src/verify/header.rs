//! The `Authorization: Bearer <token>` header (RFC 6750 §2.1).

use super::error::{Reason, VerifyError};

/// Longest header accepted; Clerk session JWTs are around 1 KB.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// Extracts the bearer token. The scheme is case-insensitive (RFC 7235); the token must be a
/// non-empty RFC 6750 `b64token` of visible ASCII.
pub fn bearer_token(value: Option<&[u8]>) -> Result<&str, VerifyError> {
    let Some(raw) = value else {
        return Err(VerifyError::Missing);
    };
    if raw.len() > MAX_HEADER_LEN {
        return Err(VerifyError::Malformed(Reason::HeaderTooLarge));
    }
    let text =
        std::str::from_utf8(raw).map_err(|_| VerifyError::Malformed(Reason::HeaderNotAscii))?;
    if !text.is_ascii() {
        return Err(VerifyError::Malformed(Reason::HeaderNotAscii));
    }
    let text = text.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = text.split_once([' ', '\t']).unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(VerifyError::Malformed(Reason::SchemeNotBearer));
    }
    let token = rest.trim_matches(|c| c == ' ' || c == '\t');
    if token.is_empty() {
        return Err(VerifyError::Malformed(Reason::EmptyToken));
    }
    // No early exit, so the loop vectorises (a session JWT is ~1 KB, checked on every request).
    let b64token = token.bytes().fold(true, |ok, b| {
        ok & (b.is_ascii_alphanumeric()
            | (b == b'-')
            | (b == b'.')
            | (b == b'_')
            | (b == b'~')
            | (b == b'+')
            | (b == b'/')
            | (b == b'='))
    });
    if !b64token {
        return Err(VerifyError::Malformed(Reason::InvalidCharacters));
    }
    Ok(token)
}
