//! Parsing of request bodies and query strings, with Clerk's errors for what does not parse.

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

/// A machine name: 1 to 255 characters.
pub(super) fn machine_name(v: &Value) -> Result<String, Reply> {
    match v.as_str() {
        Some(n) if !n.is_empty() && n.len() <= 255 => Ok(n.to_owned()),
        _ => Err(form_error(
            "form_param_format_invalid",
            "name",
            "name must be 1 to 255 characters",
        )),
    }
}

/// A machine's default token lifetime: 1 s to 10 years.
pub(super) fn token_ttl(v: &Value) -> Result<u64, Reply> {
    match v.as_u64() {
        Some(t) if (1..=315_360_000).contains(&t) => Ok(t),
        _ => Err(form_error(
            "form_param_value_invalid",
            "default_token_ttl",
            "default_token_ttl must be between 1 and 315360000",
        )),
    }
}

pub(super) fn parse_object(body: &[u8], empty_ok: bool) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if empty_ok {
            Ok(Map::new())
        } else {
            Err(error(
                400,
                "request_body_invalid",
                "Request body invalid",
                "The request body is invalid. Please consult the API documentation for more information.",
            ))
        };
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(
            400,
            "request_body_invalid",
            "Request body invalid",
            "The request body is invalid. Please consult the API documentation for more information.",
        )),
    }
}

pub(super) fn only_params(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Reply> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(error_with_meta(
            400,
            "bad_request",
            "is unknown",
            &format!("{k} is not a valid parameter for this request."),
            json!({ "param_name": k }),
        )),
        None => Ok(()),
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
