use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The body, as `jobtracker_types::Problem` reads it.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// An `application/problem+json` answer: `type` `about:blank` (the status says it all), the
/// status's reason as `title`, `detail`, and `field` (the offending input, for a 422) when given.
pub fn problem(status: StatusCode, detail: &str, field: Option<&str>) -> Response {
    let body = Body {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        field,
    };
    let mut response = (status, serde_json::to_string(&body).unwrap_or_default()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}
