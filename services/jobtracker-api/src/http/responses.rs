//! The error answers of the OpenAPI document, one type per status so each operation lists
//! exactly the statuses it can return (`tests/api/routes.rs` checks them against the route
//! table). Every one is `application/problem+json`.

#![allow(dead_code)] // Only their `IntoResponses` impls are used.

use jobtracker_types::Problem;
use utoipa::IntoResponses;

/// 401.
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "No, malformed or invalid credentials (`WWW-Authenticate` says why)",
    content_type = "application/problem+json"
)]
pub struct Unauthorized(Problem);

/// 403.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "Authenticated but not allowed: a machine with no role, a role this route is not for, or another user's data",
    content_type = "application/problem+json"
)]
pub struct Forbidden(Problem);

/// 503.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "Clerk or the database is unreachable (`Retry-After`)",
    content_type = "application/problem+json"
)]
pub struct Unavailable(Problem);

/// 503 of an upload.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "Clerk or the database is unreachable, the user already has `RESUME_UPLOADS_PER_USER` uploads in progress, or every upload slot stayed busy for a second (`Retry-After`)",
    content_type = "application/problem+json"
)]
pub struct UploadUnavailable(Problem);

/// 503 of a download.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "Clerk or the database is unreachable, or every download slot stayed busy for a second (`Retry-After`)",
    content_type = "application/problem+json"
)]
pub struct DownloadUnavailable(Problem);

/// 404.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "No such resource, or not yours",
    content_type = "application/problem+json"
)]
pub struct NotFound(Problem);

/// 409.
#[derive(IntoResponses)]
#[response(
    status = 409,
    description = "The state does not allow it (any more): nothing was written",
    content_type = "application/problem+json"
)]
pub struct Conflict(Problem);

/// 422.
#[derive(IntoResponses)]
#[response(
    status = 422,
    description = "A field, path id or query parameter is missing, unknown or invalid; `field` names it",
    content_type = "application/problem+json"
)]
pub struct Invalid(Problem);

/// The failures of a JSON request body: 400 (not JSON), 413 (over 64 KiB), 415 (not
/// `application/json`), 422 (a field).
#[derive(IntoResponses)]
pub enum JsonBody {
    /// The body is not JSON.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The body is over 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    Unsupported(Problem),
    /// A field is missing, unknown or invalid; `field` names it.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// The failures of an optional JSON body (claim and lease routes): an empty body means the
/// defaults; otherwise as [`JsonBody`] except that no `Content-Type` is demanded.
#[derive(IntoResponses)]
pub enum OptionalJsonBody {
    /// The body is not JSON.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The body is over 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// A field is unknown or invalid; `field` names it.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// 413 of an upload.
#[derive(IntoResponses)]
#[response(
    status = 413,
    description = "The file is over `RESUME_MAX_BYTES`, or does not fit the user's `RESUME_QUOTA_BYTES` (the detail names the quota and what is used)",
    content_type = "application/problem+json"
)]
pub struct TooLarge(Problem);

/// 415 of an upload.
#[derive(IntoResponses)]
#[response(
    status = 415,
    description = "No or another `Content-Type`, or content that does not match it",
    content_type = "application/problem+json"
)]
pub struct Unsupported(Problem);
