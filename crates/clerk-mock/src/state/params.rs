//! Parsing of request bodies and query strings, with Clerk's errors for what does not parse.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::reply::{Reply, bad_param, error, error_with_meta, form_error};

/// The last value of query parameter `name`, as Clerk reads a repeated one.
pub(super) fn query_param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A body parameter as sent. Clerk checks parameters in its own order and answers each kind of
/// wrong value with its own error, so parsing keeps what was wrong instead of failing at the
/// first bad field; the handler reports it where Clerk would.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) enum Param<T> {
    /// Not sent.
    #[default]
    Absent,
    /// Sent as `null`.
    Null,
    /// Sent, of the schema's type.
    Valid(T),
    /// Sent, of another type.
    Invalid,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Param<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => Self::Null,
            v => T::deserialize(v).map_or(Self::Invalid, Self::Valid),
        })
    }
}

impl<T> Param<T> {
    /// The value; `None` when absent or null; `invalid()` when of another type.
    pub fn optional(self, invalid: impl FnOnce() -> Reply) -> Result<Option<T>, Reply> {
        match self {
            Self::Absent | Self::Null => Ok(None),
            Self::Valid(v) => Ok(Some(v)),
            Self::Invalid => Err(invalid()),
        }
    }

    /// The value if it was sent with the schema's type.
    pub fn valid(self) -> Option<T> {
        match self {
            Self::Valid(v) => Some(v),
            _ => None,
        }
    }
}

/// A machine name, once sent: 1 to 255 characters.
pub(super) fn machine_name(name: Param<String>) -> Result<String, Reply> {
    match name {
        Param::Valid(n) if !n.is_empty() && n.len() <= 255 => Ok(n),
        _ => Err(form_error(
            "form_param_format_invalid",
            "name",
            "name must be 1 to 255 characters",
        )),
    }
}

/// A machine's default token lifetime, when given: 1 s to 10 years.
pub(super) fn token_ttl(ttl: Param<u64>) -> Result<Option<u64>, Reply> {
    match ttl {
        Param::Absent | Param::Null => Ok(None),
        Param::Valid(t) if (1..=315_360_000).contains(&t) => Ok(Some(t)),
        _ => Err(form_error(
            "form_param_value_invalid",
            "default_token_ttl",
            "default_token_ttl must be between 1 and 315360000",
        )),
    }
}

/// What an empty (or all-whitespace) request body stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Empty {
    /// `{}`: every parameter is optional.
    IsObject,
    /// Clerk's "request body invalid".
    Invalid,
}

/// Which parameters a request accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Params {
    /// Only the request type's own: any other is a 400 naming it.
    Only,
    /// Any: the request type's own are read, others ignored.
    Any,
}

/// A body whose parameters `T` does not name land in `unknown`.
#[derive(Deserialize)]
struct WithUnknown<T> {
    #[serde(flatten)]
    known: T,
    #[serde(flatten)]
    unknown: Map<String, Value>,
}

fn body_invalid() -> Reply {
    error(
        400,
        "request_body_invalid",
        "Request body invalid",
        "The request body is invalid. Please consult the API documentation for more information.",
    )
}

/// A JSON object body as `T` (whose fields are [`Param`]s or [`Value`]s, so that only a body
/// that is not an object fails here).
pub(super) fn parse_body<T: DeserializeOwned>(
    body: &[u8],
    empty: Empty,
    params: Params,
) -> Result<T, Reply> {
    let map = if body.iter().all(u8::is_ascii_whitespace) {
        match empty {
            Empty::IsObject => Map::new(),
            Empty::Invalid => return Err(body_invalid()),
        }
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            _ => return Err(body_invalid()),
        }
    };
    let body = Value::Object(map);
    match params {
        Params::Any => T::deserialize(body).map_err(|_| body_invalid()),
        Params::Only => {
            let parsed = WithUnknown::<T>::deserialize(body).map_err(|_| body_invalid())?;
            match parsed.unknown.keys().next() {
                Some(k) => Err(error_with_meta(
                    400,
                    "bad_request",
                    "is unknown",
                    &format!("{k} is not a valid parameter for this request."),
                    json!({ "param_name": k }),
                )),
                None => Ok(parsed.known),
            }
        }
    }
}

pub(super) fn parse_bool(v: Option<&str>, name: &str) -> Result<bool, Reply> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(bad_param(name, format!("{name} must be true or false"))),
    }
}

/// The spec types these query parameters as `number`, and Clerk's Python SDK sends `10.0`:
/// accept any integral number.
pub(super) fn integral(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().or_else(|| {
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1e15)
            .map(|f| f as u64)
    })
}

pub(super) fn parse_range(
    v: Option<&str>,
    name: &str,
    min: u64,
    max: u64,
    default: u64,
) -> Result<u64, Reply> {
    match v {
        None => Ok(default),
        Some(s) => match integral(s) {
            Some(n) if n >= min && n <= max => Ok(n),
            _ => Err(bad_param(
                name,
                format!("{name} must be an integer between {min} and {max}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Body {
        n: Param<u64>,
        s: Param<String>,
    }

    fn code(r: &Reply) -> (u16, &str, &Value) {
        let e = &r.body["errors"][0];
        (r.status, e["code"].as_str().unwrap_or_default(), &e["meta"])
    }

    #[test]
    fn a_body_keeps_absent_null_and_wrong_apart() {
        let b: Body =
            parse_body(br#"{"n": null, "s": 5}"#, Empty::Invalid, Params::Only).expect("parses");
        assert_eq!((b.n, b.s), (Param::Null, Param::Invalid));
        let b: Body = parse_body(br#"{"n": 7}"#, Empty::Invalid, Params::Only).expect("parses");
        assert_eq!((b.n, b.s), (Param::Valid(7), Param::Absent));
        let b: Body = parse_body(br#"{"n": 7.5}"#, Empty::Invalid, Params::Only).expect("parses");
        assert_eq!(b.n, Param::Invalid, "a float is not an integer");
        let b: Body = parse_body(b" \n", Empty::IsObject, Params::Only).expect("parses");
        assert_eq!((b.n, b.s), (Param::Absent, Param::Absent));
    }

    #[test]
    fn what_is_not_an_object_or_not_a_parameter_is_clerks_400() {
        for (body, empty) in [
            (&b""[..], Empty::Invalid),
            (b"[]", Empty::IsObject),
            (b"{", Empty::IsObject),
            (b"null", Empty::IsObject),
        ] {
            let e = parse_body::<Body>(body, empty, Params::Only).expect_err("invalid");
            assert_eq!(code(&e).0, 400);
            assert_eq!(code(&e).1, "request_body_invalid");
        }
        let e = parse_body::<Body>(br#"{"n": 1, "extra": 2}"#, Empty::Invalid, Params::Only)
            .expect_err("unknown");
        assert_eq!(
            code(&e),
            (400, "bad_request", &json!({ "param_name": "extra" }))
        );
        let b: Body = parse_body(br#"{"n": 1, "extra": 2}"#, Empty::Invalid, Params::Any)
            .expect("other parameters are ignored");
        assert_eq!(b.n, Param::Valid(1));
    }
}
