//! What a handler answers, and Clerk's error bodies.

use serde_json::{Value, json};

use crate::ids;

/// What a handler answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(super) fn ok(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }
}

/// Clerk's error body.
pub(crate) fn error(status: u16, code: &str, message: &str, long_message: &str) -> Reply {
    error_with_meta(status, code, message, long_message, json!({}))
}

pub(super) fn error_with_meta(
    status: u16,
    code: &str,
    message: &str,
    long_message: &str,
    meta: Value,
) -> Reply {
    let trace: String = ids::token_id()[3..].to_owned();
    Reply::ok(
        status,
        json!({
            "errors": [{ "message": message, "long_message": long_message, "code": code, "meta": meta }],
            "meta": {},
            "clerk_trace_id": trace,
        }),
    )
}

pub(super) fn bad_param(param: &str, long_message: String) -> Reply {
    error_with_meta(
        400,
        "bad_request",
        "Bad Request",
        &long_message,
        json!({ "param_name": param }),
    )
}

pub(super) fn not_found(what: &str) -> Reply {
    error(
        404,
        "resource_not_found",
        "not found",
        &format!("No {what} was found"),
    )
}

pub(super) fn machine_not_found(id: &str) -> Reply {
    error(
        404,
        "machine_not_found",
        "Machine not found",
        &format!("No machine was found with id {id}"),
    )
}

/// Error body for an injected status.
pub(crate) fn fault_reply(status: u16, retry_after: Option<u64>) -> Reply {
    let mut reply = match status {
        429 => error(
            429,
            "too_many_requests",
            "Too many requests",
            "Too many requests, retry later",
        ),
        401 => error(
            401,
            "clerk_key_invalid",
            "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.",
            "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.",
        ),
        404 => not_found("resource"),
        s if s >= 500 => error(
            s,
            "internal_clerk_error",
            "Oops, an unexpected error occurred",
            "Oops, an unexpected error occurred",
        ),
        s => error(s, "bad_request", "Bad request", "Bad request"),
    };
    if let Some(secs) = retry_after {
        reply.headers.push(("retry-after", secs.to_string()));
    }
    reply
}

pub(super) fn key_invalid() -> Reply {
    let msg = "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.";
    error(401, "clerk_key_invalid", msg, msg)
}

pub(super) fn form_error(code: &str, param: &str, long: &str) -> Reply {
    let message = match code {
        "form_param_missing" => "is missing",
        "form_param_unknown" => "is unknown",
        _ => "is invalid",
    };
    error_with_meta(422, code, message, long, json!({ "param_name": param }))
}
