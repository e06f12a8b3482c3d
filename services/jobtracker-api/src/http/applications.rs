//! Job applications, their status, leases, screening questions and audit events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jobtracker_types::{
    AnswerInput, Application, ApplicationId, ApplicationStatus, ClaimedApplication,
    CreateApplication, Event, EventId, LeaseId, LeaseRelease, LeaseRequest, Page, QuestionId,
    QuestionWithContext, StatusUpdate, UserId,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use super::ApiContext;
use super::extract::{ApiJson, ApiQuery, Caller};
use super::responses::{
    Conflict, Forbidden, Invalid, JsonBody, NotFound, OptionalJsonBody, Unauthorized, Unavailable,
};
use super::users::PageQuery;
use crate::domain::{self, LeaseLength, NewApplication, PageSize, Reply, StatusRequest};
use crate::error::ApiError;
use crate::policy::{Action, Role, transition_allowed};
use crate::store::{Answerer, ApplicationSnapshot, Claim, LeaseChange, StatusChange, StatusGuard};

async fn load(
    ctx: &ApiContext,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<ApplicationSnapshot, ApiError> {
    let id: ApplicationId = domain::id(id)?;
    caller.allowed(action)?;
    let app = ctx
        .db
        .application_snapshot(&id)
        .await?
        .ok_or(ApiError::NotFound("job application"))?;
    caller.require_visible(action, &app.user_id, "job application")?;
    Ok(app)
}

async fn full(ctx: &ApiContext, id: &ApplicationId) -> Result<Json<Application>, ApiError> {
    ctx.db
        .application(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("job application"))
}

/// Creates an application for the caller, with its screening questions.
#[utoipa::path(post, path = "/api/job-applications", tag = "applications", request_body = CreateApplication,
    responses((status = 201, body = Application), Unauthorized, Forbidden, NotFound, JsonBody, Unavailable),
    security(("bearer" = [])))]
pub async fn create(
    caller: Caller,
    State(ctx): State<ApiContext>,
    ApiJson(input): ApiJson<CreateApplication>,
) -> Result<(StatusCode, Json<Application>), ApiError> {
    caller.allowed(Action::CreateApplication)?;
    let user_id = caller
        .user_id()
        .ok_or_else(|| ApiError::Forbidden("only users create applications".into()))?
        .clone();
    let new = NewApplication::parse(input)?;
    if ctx.db.user(&user_id).await?.is_none() {
        return Err(ApiError::NotFound(
            "user (create the profile first with POST /api/users)",
        ));
    }
    if let Some(r) = &new.resume_id {
        let resume = ctx.db.resume(r).await?;
        if resume.is_none_or(|r| r.user_id != user_id) {
            return Err(ApiError::invalid("resume_id", "no such resume of yours"));
        }
    }
    let app = ctx
        .db
        .create_application(&user_id, &new, &caller.actor)
        .await?;
    Ok((StatusCode::CREATED, Json(app)))
}

/// Filters of the application list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only this status (name or number).
    pub status: Option<String>,
    /// Only this user's (machines only; users always see their own).
    pub user_id: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// Applications: a user's own, or anyone's for the bots.
#[utoipa::path(get, path = "/api/job-applications", tag = "applications", params(ListQuery),
    responses((status = 200, body = Page<Application>), Unauthorized, Forbidden, Invalid, Unavailable), security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(ctx): State<ApiContext>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Application>>, ApiError> {
    let scope = caller.list_scope(Action::ListApplications)?;
    let status = match &q.status {
        None => None,
        Some(s) => Some(ApplicationStatus::parse(s).ok_or_else(|| {
            ApiError::invalid("status", format!("unknown status {s:?}: use saved, queued, submitted, interviewing, offer, rejected, withdrawn, failed or 0-7"))
        })?),
    };
    let asked: Option<UserId> = q.user_id.as_deref().map(domain::id).transpose()?;
    let user = scope.or(asked);
    let cursor: Option<ApplicationId> = domain::cursor(q.cursor.as_deref())?;
    let page = ctx
        .db
        .list_applications(
            user.as_ref(),
            status,
            cursor.as_ref(),
            PageSize::parse(q.limit)?,
        )
        .await?;
    Ok(Json(page))
}

/// One application with its questions.
#[utoipa::path(get, path = "/api/job-applications/{id}", tag = "applications", params(("id" = String, Path)),
    responses((status = 200, body = Application), Unauthorized, Forbidden, NotFound, Invalid, Unavailable), security(("bearer" = [])))]
pub async fn get(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
) -> Result<Json<Application>, ApiError> {
    let app = load(&ctx, &caller, &id, Action::GetApplication).await?;
    full(&ctx, &app.id).await
}

/// The audit trail of an application, oldest first.
#[utoipa::path(get, path = "/api/job-applications/{id}/events", tag = "applications", params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<Event>), Unauthorized, Forbidden, NotFound, Invalid, Unavailable), security(("bearer" = [])))]
pub async fn events(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Event>>, ApiError> {
    let app = load(&ctx, &caller, &id, Action::ListEvents).await?;
    let cursor: Option<EventId> = domain::cursor(q.cursor.as_deref())?;
    let page = ctx
        .db
        .list_events(&app.id, cursor.as_ref(), PageSize::parse(q.limit)?)
        .await?;
    Ok(Json(page))
}

/// Changes the status, following the state machine (see docs/api.md). The job-applier presents
/// the `lease_id` of its live claim; submitting also needs the application still ready.
#[utoipa::path(patch, path = "/api/job-applications/{id}/status", tag = "applications", params(("id" = String, Path)), request_body = StatusUpdate,
    responses((status = 200, body = Application), Unauthorized, Forbidden, NotFound, Conflict, JsonBody, Unavailable),
    security(("bearer" = [])))]
pub async fn update_status(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<StatusUpdate>,
) -> Result<Json<Application>, ApiError> {
    let app = load(&ctx, &caller, &id, Action::UpdateStatus).await?;
    let input = StatusRequest::parse(input)?;
    let is_applier = caller.role == Role::Applier;
    if !is_applier {
        for (field, given) in [
            ("submission_ref", input.submission_ref.is_some()),
            ("lease_id", input.lease_id.is_some()),
        ] {
            if given {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} belongs to the job-applier's submission"),
                ));
            }
        }
    }
    if input.submission_ref.is_some() && input.status != ApplicationStatus::Submitted {
        return Err(ApiError::invalid(
            "submission_ref",
            "submission_ref goes with submitted only",
        ));
    }
    if input.status == ApplicationStatus::Failed && input.reason.is_none() {
        return Err(ApiError::invalid(
            "reason",
            "a reason is required for failed",
        ));
    }
    if input.expected_version.is_some_and(|v| v != app.version) {
        return Err(ApiError::Conflict(format!(
            "the application is at version {}, not {}",
            app.version,
            input.expected_version.unwrap_or_default()
        )));
    }
    if !transition_allowed(caller.role, app.status, input.status) {
        return Err(
            if transition_allowed(Role::User, app.status, input.status)
                || transition_allowed(Role::Applier, app.status, input.status)
            {
                ApiError::Forbidden(format!(
                    "you may not move an application from {} to {}",
                    app.status, input.status
                ))
            } else {
                ApiError::Conflict(format!(
                    "an application cannot go from {} to {}",
                    app.status, input.status
                ))
            },
        );
    }
    let lease = if is_applier {
        Some(lease_id(input.lease_id.as_deref())?)
    } else {
        None
    };
    let guard = match &lease {
        None => StatusGuard::Version,
        Some(l) if input.status == ApplicationStatus::Submitted => StatusGuard::LeaseWhileReady(l),
        Some(l) => StatusGuard::Lease(l),
    };
    let change = StatusChange {
        to: input.status,
        reason: input.reason.as_ref(),
        submission_ref: input.submission_ref.as_ref(),
    };
    ctx.db
        .change_status(&app, change, &caller.actor, guard)
        .await?;
    full(&ctx, &app.id).await
}

/// The claimant's fencing token: 409 when missing (the caller cannot show it holds the claim),
/// 422 when it is not a lease id at all.
fn lease_id(given: Option<&str>) -> Result<LeaseId, ApiError> {
    let l = given.ok_or_else(|| {
        ApiError::Conflict(
            "present the lease_id your claim returned: without it the claim cannot be yours".into(),
        )
    })?;
    Ok(domain::id(l)?)
}

/// An optional JSON body: empty means the defaults. 413 over the body limit.
fn optional_json<T: DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge("request body too large".into())
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    super::extract::parse_json(&body)
}

/// Leases the oldest ready application (queued, all questions answered, none awaiting review) to
/// the job-applier, with a new `lease_id` that its later writes present. 204 when there is none.
#[utoipa::path(post, path = "/api/job-applications/claim", tag = "applications", request_body(content = Option<LeaseRequest>, description = "Optional: the lease length"),
    responses((status = 200, body = ClaimedApplication), (status = 204, description = "Nothing is ready"), Unauthorized, Forbidden, OptionalJsonBody, Unavailable),
    security(("bearer" = [])))]
pub async fn claim(
    caller: Caller,
    State(ctx): State<ApiContext>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.allowed(Action::Claim)?;
    let req: LeaseRequest = optional_json(body)?;
    if req.lease_id.is_some() {
        return Err(ApiError::invalid(
            "lease_id",
            "a claim gets a new lease_id; it does not take one",
        ));
    }
    let lease = LeaseLength::parse(req.lease_seconds)?;
    match ctx.db.claim(&caller.actor, lease).await? {
        Some(Claim {
            application_id,
            lease_id,
        }) => {
            let Json(application) = full(&ctx, &application_id).await?;
            Ok(Json(ClaimedApplication {
                application,
                lease_id,
            })
            .into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Extends the caller's live lease (`lease_id` from the claim).
#[utoipa::path(put, path = "/api/job-applications/{id}/lease", tag = "applications", params(("id" = String, Path)), request_body(content = Option<LeaseRequest>, description = "The lease_id of the claim, and the new lease length"),
    responses((status = 200, body = Application), Unauthorized, Forbidden, NotFound, Conflict, OptionalJsonBody, Unavailable), security(("bearer" = [])))]
pub async fn renew_lease(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Application>, ApiError> {
    let app = load(&ctx, &caller, &id, Action::ManageLease).await?;
    let req: LeaseRequest = optional_json(body)?;
    let lease = LeaseLength::parse(req.lease_seconds)?;
    let lease_id = lease_id(req.lease_id.as_deref())?;
    ctx.db
        .set_lease(&app.id, &caller.actor, &lease_id, LeaseChange::Renew(lease))
        .await?;
    full(&ctx, &app.id).await
}

/// Gives the claim back without changing the status (`lease_id` from the claim).
#[utoipa::path(delete, path = "/api/job-applications/{id}/lease", tag = "applications", params(("id" = String, Path)), request_body(content = Option<LeaseRelease>, description = "The lease_id of the claim"),
    responses((status = 204, description = "Released"), Unauthorized, Forbidden, NotFound, Conflict, OptionalJsonBody, Unavailable), security(("bearer" = [])))]
pub async fn release_lease(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let app = load(&ctx, &caller, &id, Action::ManageLease).await?;
    let req: LeaseRelease = optional_json(body)?;
    let lease_id = lease_id(req.lease_id.as_deref())?;
    ctx.db
        .set_lease(&app.id, &caller.actor, &lease_id, LeaseChange::Release)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Filters of the question list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct QuestionQuery {
    /// Only questions without an answer and not awaiting review, of saved or queued applications.
    #[serde(default)]
    pub unanswered: Option<bool>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// Screening questions with the candidate and application they belong to.
#[utoipa::path(get, path = "/api/questions", tag = "questions", params(QuestionQuery),
    responses((status = 200, body = Page<QuestionWithContext>), Unauthorized, Forbidden, Invalid, Unavailable), security(("bearer" = [])))]
pub async fn questions(
    caller: Caller,
    State(ctx): State<ApiContext>,
    ApiQuery(q): ApiQuery<QuestionQuery>,
) -> Result<Json<Page<QuestionWithContext>>, ApiError> {
    let scope = caller.list_scope(Action::ListQuestions)?;
    let cursor: Option<QuestionId> = domain::cursor(q.cursor.as_deref())?;
    let page = ctx
        .db
        .list_questions(
            scope.as_ref(),
            q.unanswered.unwrap_or(false),
            cursor.as_ref(),
            PageSize::parse(q.limit)?,
        )
        .await?;
    Ok(Json(page))
}

/// Answers a screening question, or marks it for a person's review.
#[utoipa::path(put, path = "/api/job-applications/{id}/questions/{qid}/answer", tag = "questions",
    params(("id" = String, Path), ("qid" = String, Path)), request_body = AnswerInput,
    responses((status = 200, body = Application), Unauthorized, Forbidden, NotFound, Conflict, JsonBody, Unavailable),
    security(("bearer" = [])))]
pub async fn answer(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path((id, qid)): Path<(String, String)>,
    ApiJson(input): ApiJson<AnswerInput>,
) -> Result<Json<Application>, ApiError> {
    let app = load(&ctx, &caller, &id, Action::AnswerQuestion).await?;
    let qid: QuestionId = domain::id(&qid)?;
    let reply = Reply::parse(input)?;
    let answerer = match caller.role {
        Role::User => Answerer::User,
        Role::Representer | Role::Applier => Answerer::Bot,
    };
    ctx.db
        .answer(&app.id, &qid, &reply, &caller.actor, answerer)
        .await?;
    full(&ctx, &app.id).await
}
