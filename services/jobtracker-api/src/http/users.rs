//! Profiles, resumes and `whoami`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError};
use jobtracker_types::{Page, Resume, ResumeId, User, UserId, UserProfileInput, Whoami};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use super::extract::{ApiJson, ApiQuery, Caller};
use super::responses::{
    Conflict, DownloadUnavailable, Forbidden, Invalid, JsonBody, NotFound, TooLarge, Unauthorized,
    Unavailable, Unsupported, UploadUnavailable,
};
use super::{ApiContext, transfers};
use crate::domain::{self, FileName, PageSize, Profile};
use crate::error::ApiError;
use crate::policy::Action;
use crate::store::NewResume;

/// Who the caller is: any authenticated caller, including a machine with no role here (its
/// `role` is then null), so a misconfigured bot can see why every other route refuses it.
#[utoipa::path(get, path = "/api/whoami", tag = "identity",
    responses((status = 200, body = Whoami), Unauthorized, Unavailable),
    security(("bearer" = [])))]
pub async fn whoami(
    super::extract::Authenticated(principal): super::extract::Authenticated,
    State(ctx): State<ApiContext>,
) -> Result<Json<Whoami>, ApiError> {
    Ok(Json(match &principal {
        m2m_core::Principal::User(u) => Whoami::User {
            user_id: u.user_id.clone(),
            session_id: u.session_id.clone(),
            actor: u.actor.as_ref().map(super::extract::impersonator),
        },
        m2m_core::Principal::Machine(m) => Whoami::Machine {
            machine_id: m.machine_id.clone(),
            token_id: m.token_id.clone(),
            scopes: m.scopes.clone(),
            role: ctx
                .roles
                .iter()
                .find(|(id, _)| *id == m.machine_id)
                .and_then(|(_, role)| role.machine_role_name())
                .map(str::to_owned),
        },
    }))
}

/// Creates or updates the caller's own profile; the id is the Clerk user id.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = UserProfileInput,
    responses((status = 200, body = User), Unauthorized, Forbidden, JsonBody, Unavailable),
    security(("bearer" = [])))]
pub async fn upsert_profile(
    caller: Caller,
    State(ctx): State<ApiContext>,
    ApiJson(input): ApiJson<UserProfileInput>,
) -> Result<Json<User>, ApiError> {
    caller.allowed(Action::UpsertProfile)?;
    let user_id = caller
        .user_id()
        .ok_or_else(|| ApiError::Forbidden("only users have profiles".into()))?
        .clone();
    let profile = Profile::parse(input)?;
    Ok(Json(ctx.db.upsert_user(&user_id, &profile).await?))
}

/// The caller's own profile.
#[utoipa::path(get, path = "/api/users/me", tag = "users",
    responses((status = 200, body = User), Unauthorized, Forbidden, NotFound, Unavailable), security(("bearer" = [])))]
pub async fn me(caller: Caller, State(ctx): State<ApiContext>) -> Result<Json<User>, ApiError> {
    caller.allowed(Action::GetMe)?;
    let user_id = caller
        .user_id()
        .ok_or_else(|| ApiError::Forbidden("only users have profiles".into()))?;
    ctx.db
        .user(user_id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("user"))
}

/// A user's profile (self, or either bot).
#[utoipa::path(get, path = "/api/users/{user_id}", tag = "users", params(("user_id" = String, Path, description = "Clerk user id")),
    responses((status = 200, body = User), Unauthorized, Forbidden, NotFound, Invalid, Unavailable), security(("bearer" = [])))]
pub async fn get_user(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user_id: UserId = domain::id(&user_id)?;
    caller.require(Action::GetUser, &user_id)?;
    ctx.db
        .user(&user_id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("user"))
}

/// `answer` to an upload whose body was not read (see [`admit`]). A client that sent `Expect: 100-continue` is
/// answered without sending the body. Any other is sending it already, and closing the
/// connection under it can lose the answer (the client sees a broken pipe instead), so the body
/// is read first and thrown away as it arrives: at most `limit` bytes, none of them kept.
async fn refuse_unread(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    answer: ApiError,
) -> ApiError {
    let waits_for_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !waits_for_continue {
        let mut body = body;
        let mut left = limit;
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, |d| d.len());
            match left.checked_sub(len) {
                Some(rest) => left = rest,
                None => break,
            }
        }
    }
    answer
}

/// What an upload is refused for before a byte of its body is read, so a refusal costs a query,
/// not a buffered file: the path, the caller, the file name and the user's quota (a look ahead:
/// the write decides). Then one of the user's upload slots ([`transfers`]), held while the body
/// is in memory.
async fn admit<'a>(
    caller: &Caller,
    ctx: &'a ApiContext,
    user_id: &str,
    file_name: String,
    headers: &HeaderMap,
) -> Result<(UserId, FileName, transfers::UploadSlot<'a>), ApiError> {
    let user_id: UserId = domain::id(user_id)?;
    caller.require(Action::UploadResume, &user_id)?;
    let file_name = FileName::parse(file_name)?;
    let max = ctx.resume_max_bytes;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A declared length over the limit is refused before anything is read or reserved.
    if length.is_some_and(|n| n > max as u64) {
        return Err(ApiError::TooLarge(format!(
            "resumes are limited to {max} bytes"
        )));
    }
    ctx.db
        .check_resume_room(&user_id, ctx.resume_limits, length.unwrap_or(1))
        .await?;
    let slot = ctx.transfers.upload(user_id.as_str()).await?;
    Ok((user_id, file_name, slot))
}

/// Query of a resume upload.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// The file's name, e.g. `cv.pdf`.
    pub file_name: String,
}

/// DOCX's media type.
pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// What the bytes are, judged from the content alone.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(b"PK\x03\x04") && bytes.windows(5).any(|w| w == b"word/") {
        Some(DOCX)
    } else if !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() {
        Some("text/plain")
    } else {
        None
    }
}

/// Uploads a resume (raw body; PDF, DOCX or plain text). The user's `RESUME_MAX_FILES` and
/// `RESUME_QUOTA_BYTES` are checked before the body is read, and again by the write.
#[utoipa::path(post, path = "/api/users/{user_id}/resumes", tag = "resumes",
    params(("user_id" = String, Path), UploadQuery),
    request_body(description = "The file; the content must match the Content-Type",
        content((Vec<u8> = "application/pdf"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"), (Vec<u8> = "text/plain"))),
    responses((status = 201, body = Resume), Unauthorized, Forbidden, NotFound, Conflict, TooLarge, Unsupported, Invalid, UploadUnavailable),
    security(("bearer" = [])))]
pub async fn upload_resume(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Resume>), ApiError> {
    let max = ctx.resume_max_bytes;
    let (user_id, file_name, _permit) =
        match admit(&caller, &ctx, &user_id, q.file_name, &headers).await {
            Ok(admitted) => admitted,
            Err(refusal) => return Err(refuse_unread(body, &headers, max, refusal).await),
        };
    // The limit holds while the body streams in: reading stops past it.
    let body = axum::body::to_bytes(body, max).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<LengthLimitError>()) {
            ApiError::TooLarge(format!("resumes are limited to {max} bytes"))
        } else {
            ApiError::BadRequest(format!("Failed to buffer the request body: {e}"))
        }
    })?;
    if body.is_empty() {
        return Err(ApiError::invalid("body", "the resume is empty"));
    }
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .ok_or_else(|| {
            ApiError::Unsupported(
                "send the file's Content-Type (application/pdf, DOCX or text/plain)".into(),
            )
        })?;
    let detected = sniff(&body).ok_or_else(|| {
        ApiError::Unsupported("only PDF, DOCX and plain-text resumes are accepted".into())
    })?;
    if declared != detected {
        return Err(ApiError::Unsupported(format!(
            "the content is {detected}, not {declared}"
        )));
    }
    if ctx.db.user(&user_id).await?.is_none() {
        return Err(ApiError::NotFound(
            "user (create the profile first with POST /api/users)",
        ));
    }
    let sha = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let resume = ctx
        .db
        .insert_resume(
            NewResume {
                user_id: &user_id,
                file_name: &file_name,
                content_type: detected,
                sha256: &sha,
                content: Vec::from(body),
            },
            ctx.resume_limits,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(resume)))
}

/// Query of list routes.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// A user's resumes (metadata).
#[utoipa::path(get, path = "/api/users/{user_id}/resumes", tag = "resumes", params(("user_id" = String, Path), PageQuery),
    responses((status = 200, body = Page<Resume>), Unauthorized, Forbidden, Invalid, Unavailable), security(("bearer" = [])))]
pub async fn list_resumes(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Resume>>, ApiError> {
    let user_id: UserId = domain::id(&user_id)?;
    caller.require(Action::ListResumes, &user_id)?;
    let cursor: Option<ResumeId> = domain::cursor(q.cursor.as_deref())?;
    let page = ctx
        .db
        .list_resumes(&user_id, cursor.as_ref(), PageSize::parse(q.limit)?)
        .await?;
    Ok(Json(page))
}

/// Deletes one of the user's resumes, making room for another. A resume an application refers
/// to stays (it is part of that application's history): 409.
#[utoipa::path(delete, path = "/api/users/{user_id}/resumes/{resume_id}", tag = "resumes",
    params(("user_id" = String, Path), ("resume_id" = String, Path)),
    responses((status = 204, description = "Deleted"), Unauthorized, Forbidden, NotFound, Conflict, Invalid, Unavailable),
    security(("bearer" = [])))]
pub async fn delete_resume(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path((user_id, resume_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user_id: UserId = domain::id(&user_id)?;
    let resume_id: ResumeId = domain::id(&resume_id)?;
    caller.require(Action::DeleteResume, &user_id)?;
    ctx.db.delete_resume(&user_id, &resume_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `filename="…"` safe for any client, plus RFC 5987 `filename*` for the exact name.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Downloads a resume (owner, or the job-applier).
#[utoipa::path(get, path = "/api/resumes/{resume_id}/content", tag = "resumes", params(("resume_id" = String, Path)),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"), Unauthorized, Forbidden, NotFound, Invalid, DownloadUnavailable),
    security(("bearer" = [])))]
pub async fn download_resume(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(resume_id): Path<String>,
) -> Result<Response, ApiError> {
    let resume_id: ResumeId = domain::id(&resume_id)?;
    caller.allowed(Action::DownloadResume)?;
    // The slot before the file is read: the slots bound the resumes in memory, so none may be
    // loaded without one (many downloads waiting on a held slot each held their file).
    let permit = ctx.transfers.download().await?;
    let (resume, content) = ctx
        .db
        .resume_content(&resume_id)
        .await?
        .ok_or(ApiError::NotFound("resume"))?;
    caller.require_visible(Action::DownloadResume, &resume.user_id, "resume")?;
    let mut response = transfers::body_with_permit(content.into(), permit).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&resume.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&resume.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&resume.sha256) {
        h.insert("x-content-sha256", v);
    }
    Ok(response)
}
