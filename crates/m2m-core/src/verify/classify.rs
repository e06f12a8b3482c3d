//! Which kind of token this is, decided without any network call or signature check.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::error::{Reason, VerifyError};

/// Clerk's token category (`cat` header) of M2M tokens. (Session tokens carry `cl_B7d4PD111AAA`;
/// nothing here needs it: a session token is whatever is neither M2M nor a template.)
pub(crate) const CAT_M2M: &str = "cl_B7d4PD333AAA";
/// Clerk's token category of JWT-template tokens.
pub(crate) const CAT_TEMPLATE: &str = "cl_B7d4PD222AAA";

/// A JOSE header parameter as the rules read it: absent, a string, or any other JSON value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HeaderParam {
    /// Not in the header.
    #[default]
    Absent,
    /// A JSON string.
    Str(String),
    /// Present, but not a string (`null` included).
    Other,
}

impl HeaderParam {
    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the header has this parameter at all.
    pub fn is_present(&self) -> bool {
        !matches!(self, Self::Absent)
    }
}

impl<'de> Deserialize<'de> for HeaderParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through `Value`, so any value is checked exactly as strictly as a whole-`Value` parse.
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Self::Str(s),
            _ => Self::Other,
        })
    }
}

/// The header parameters the rules read; any other is ignored, as Clerk's SDK does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtHeader {
    /// `alg`.
    pub alg: HeaderParam,
    /// `typ`.
    pub typ: HeaderParam,
    /// `kid`.
    pub kid: HeaderParam,
    /// `cat`: Clerk's token category.
    pub cat: HeaderParam,
}

impl<'de> Deserialize<'de> for JwtHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Which parameter a key names (JSON escapes already resolved by serde_json).
        enum Name {
            Alg,
            Typ,
            Kid,
            Cat,
            Other,
        }
        impl<'de> Deserialize<'de> for Name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = Name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a header parameter name")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                        Ok(match v {
                            "alg" => Name::Alg,
                            "typ" => Name::Typ,
                            "kid" => Name::Kid,
                            "cat" => Name::Cat,
                            _ => Name::Other,
                        })
                    }
                }
                d.deserialize_identifier(V)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JwtHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JwtHeader, A::Error> {
                let mut h = JwtHeader::default();
                while let Some(name) = map.next_key::<Name>()? {
                    // A repeated name: the last one wins, as with JSON.parse in Clerk's SDK.
                    let slot = match name {
                        Name::Alg => &mut h.alg,
                        Name::Typ => &mut h.typ,
                        Name::Kid => &mut h.kid,
                        Name::Cat => &mut h.cat,
                        Name::Other => {
                            map.next_value::<Value>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value()?;
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

/// A JWT split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct DecodedJwt<'a> {
    /// Decoded header.
    pub header: JwtHeader,
    /// Decoded payload (a JSON object).
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
    let raw = decode_raw(token)?;
    let payload = match serde_json::from_str::<Value>(&raw.payload) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err(VerifyError::Malformed(Reason::NotJsonObjects)),
    };
    Ok(DecodedJwt {
        header: raw.header,
        payload,
        signing_input: raw.signing_input,
        signature: raw.signature,
    })
}

/// A JWT split, its header decoded, its payload decoded to JSON text (UTF-8, not parsed yet):
/// the verifier reads only the claims it needs from it.
pub(crate) struct RawJwt<'a> {
    pub(crate) header: JwtHeader,
    /// The payload's JSON; the caller checks that it is an object.
    pub(crate) payload: String,
    pub(crate) signing_input: &'a str,
    pub(crate) signature: &'a str,
}

/// [`decode_jwt`] up to the payload's parsing: the same checks, in the same order, with the
/// same errors (a payload that is not UTF-8 is not a JSON object).
pub(crate) fn decode_raw(token: &str) -> Result<RawJwt<'_>, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed(Reason::NotThreeParts));
    };
    if !(is_b64url(h) && is_b64url(p) && is_b64url(s)) {
        return Err(VerifyError::Malformed(Reason::EmptyParts));
    }
    let not_object = || VerifyError::Malformed(Reason::NotJsonObjects);
    let bytes = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| VerifyError::Malformed(Reason::BadBase64))
    };
    let header: JwtHeader = serde_json::from_slice(&bytes(h)?).map_err(|_| not_object())?;
    let payload = String::from_utf8(bytes(p)?).map_err(|_| not_object())?;
    Ok(RawJwt {
        header,
        payload,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature: s,
    })
}

/// Non-empty, and only base64url's alphabet. No early exit, so the loop vectorises.
fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().fold(true, |ok, b| {
            ok & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_'))
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
            Err(VerifyError::Malformed(Reason::MalformedM2mToken))
        };
    }
    if !token.contains('.') {
        return Err(VerifyError::Invalid(Reason::TypeMismatch));
    }
    let jwt = decode_jwt(token)?;
    let machine_subject = jwt
        .payload
        .get("sub")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("mch_"));
    let m2m_category = jwt.header.cat.as_str() == Some(CAT_M2M);
    if machine_subject || m2m_category {
        Ok(TokenKind::M2mJwt(jwt))
    } else {
        Ok(TokenKind::SessionJwt(jwt))
    }
}
