//! Job applications, their status, leases, screening questions and audit events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jobtracker_types::{
    AnswerInput, Application, ApplicationStatus, CreateApplication, Event, LeaseRequest, Page,
    Problem, QuestionWithContext, StatusUpdate,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{ApiJson, ApiQuery, Caller};
use super::users::PageQuery;
use super::{ApiContext, validate};
use crate::db::now_ms;
use crate::error::ApiError;
use crate::policy::{Action, Role, transition_allowed};
use crate::store::AppState;

async fn load(
    ctx: &ApiContext,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<AppState, ApiError> {
    validate::id("application_id", id, "app")?;
    caller.allowed(action)?;
    let app = ctx
        .db
        .app_state(id)
        .await?
        .ok_or(ApiError::NotFound("job application"))?;
    caller.require_visible(action, &app.user_id, "job application")?;
    Ok(app)
}

async fn full(ctx: &ApiContext, id: &str) -> Result<Json<Application>, ApiError> {
    ctx.db
        .application(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("job application"))
}

/// Creates an application for the caller, with its screening questions.
#[utoipa::path(post, path = "/api/job-applications", tag = "applications", request_body = CreateApplication,
    responses((status = 201, body = Application), (status = 404, body = Problem), (status = 422, body = Problem)),
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
        .to_owned();
    validate::text("company", &input.company, 200)?;
    validate::text("position", &input.position, 200)?;
    if let Some(u) = &input.job_url {
        validate::url("job_url", u)?;
    }
    if input.questions.len() > 50 {
        return Err(ApiError::invalid("questions", "at most 50 questions"));
    }
    for q in &input.questions {
        validate::text("questions", q, 1000)?;
    }
    let status = input.status.unwrap_or(ApplicationStatus::Saved);
    if !matches!(status, ApplicationStatus::Saved | ApplicationStatus::Queued) {
        return Err(ApiError::invalid(
            "status",
            "a new application is saved or queued",
        ));
    }
    if ctx.db.user(&user_id).await?.is_none() {
        return Err(ApiError::NotFound(
            "user (create the profile first with POST /api/users)",
        ));
    }
    if let Some(r) = &input.resume_id {
        validate::id("resume_id", r, "res")?;
        let resume = ctx.db.resume(r).await?;
        if resume.is_none_or(|r| r.user_id != user_id) {
            return Err(ApiError::invalid("resume_id", "no such resume of yours"));
        }
    }
    let app = ctx
        .db
        .create_application(&user_id, &input, status, &caller.actor)
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
    responses((status = 200, body = Page<Application>), (status = 422, body = Problem)), security(("bearer" = [])))]
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
    if let Some(u) = &q.user_id {
        validate::user_id(u)?;
    }
    let user = scope.or(q.user_id.clone());
    validate::cursor(q.cursor.as_deref(), "app")?;
    let (items, next_cursor) = ctx
        .db
        .list_applications(
            user.as_deref(),
            status,
            q.cursor.as_deref(),
            validate::limit(q.limit)?,
        )
        .await?;
    Ok(Json(Page { items, next_cursor }))
}

/// One application with its questions.
#[utoipa::path(get, path = "/api/job-applications/{id}", tag = "applications", params(("id" = String, Path)),
    responses((status = 200, body = Application), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
) -> Result<Json<Application>, ApiError> {
    load(&ctx, &caller, &id, Action::GetApplication).await?;
    full(&ctx, &id).await
}

/// The audit trail of an application, oldest first.
#[utoipa::path(get, path = "/api/job-applications/{id}/events", tag = "applications", params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<Event>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn events(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Event>>, ApiError> {
    load(&ctx, &caller, &id, Action::ListEvents).await?;
    validate::cursor(q.cursor.as_deref(), "evt")?;
    let (items, next_cursor) = ctx
        .db
        .list_events(&id, q.cursor.as_deref(), validate::limit(q.limit)?)
        .await?;
    Ok(Json(Page { items, next_cursor }))
}

/// Changes the status, following the state machine (see docs/api.md).
#[utoipa::path(patch, path = "/api/job-applications/{id}/status", tag = "applications", params(("id" = String, Path)), request_body = StatusUpdate,
    responses((status = 200, body = Application), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_status(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<StatusUpdate>,
) -> Result<Json<Application>, ApiError> {
    let app = load(&ctx, &caller, &id, Action::UpdateStatus).await?;
    validate::opt_text("reason", input.reason.as_deref(), 2000)?;
    validate::opt_text("submission_ref", input.submission_ref.as_deref(), 500)?;
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
    let require_claim = caller.role == Role::Applier;
    if require_claim {
        let live = app.claimed_by.as_deref() == Some(caller.actor.as_str())
            && app.lease_expires_at.is_some_and(|t| t > now_ms());
        if !live {
            return Err(ApiError::Conflict(
                "claim the application (and hold a live lease) before changing its status".into(),
            ));
        }
    }
    if !ctx
        .db
        .change_status(
            &app,
            input.status,
            input.reason.as_deref(),
            input.submission_ref.as_deref(),
            &caller.actor,
            require_claim,
        )
        .await?
    {
        return Err(ApiError::Conflict(
            "the application changed meanwhile; reload and retry".into(),
        ));
    }
    full(&ctx, &id).await
}

/// An optional JSON body: empty means the defaults.
fn optional_json(body: &[u8]) -> Result<LeaseRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(LeaseRequest::default());
    }
    super::extract::parse_json(body)
}

fn lease_ms(req: &LeaseRequest) -> Result<i64, ApiError> {
    match req.lease_seconds {
        None => Ok(300_000),
        Some(s) if (10..=3600).contains(&s) => Ok(i64::from(s) * 1000),
        Some(_) => Err(ApiError::invalid(
            "lease_seconds",
            "lease_seconds must be between 10 and 3600",
        )),
    }
}

/// Leases the oldest ready application (queued, all questions answered) to the job-applier.
/// 204 when there is none.
#[utoipa::path(post, path = "/api/job-applications/claim", tag = "applications", request_body = LeaseRequest,
    responses((status = 200, body = Application), (status = 204, description = "Nothing is ready"), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn claim(
    caller: Caller,
    State(ctx): State<ApiContext>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.allowed(Action::Claim)?;
    let lease = lease_ms(&optional_json(&body)?)?;
    match ctx.db.claim(&caller.actor, lease).await? {
        Some(id) => Ok(full(&ctx, &id).await?.into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Extends the caller's lease.
#[utoipa::path(put, path = "/api/job-applications/{id}/lease", tag = "applications", params(("id" = String, Path)), request_body = LeaseRequest,
    responses((status = 200, body = Application), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn renew_lease(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Application>, ApiError> {
    load(&ctx, &caller, &id, Action::ManageLease).await?;
    let lease = lease_ms(&optional_json(&body)?)?;
    if !ctx.db.set_lease(&id, &caller.actor, Some(lease)).await? {
        return Err(ApiError::Conflict(
            "you do not hold this application's claim".into(),
        ));
    }
    full(&ctx, &id).await
}

/// Gives the claim back without changing the status.
#[utoipa::path(delete, path = "/api/job-applications/{id}/lease", tag = "applications", params(("id" = String, Path)),
    responses((status = 204, description = "Released"), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn release_lease(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    load(&ctx, &caller, &id, Action::ManageLease).await?;
    if !ctx.db.set_lease(&id, &caller.actor, None).await? {
        return Err(ApiError::Conflict(
            "you do not hold this application's claim".into(),
        ));
    }
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
    responses((status = 200, body = Page<QuestionWithContext>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn questions(
    caller: Caller,
    State(ctx): State<ApiContext>,
    ApiQuery(q): ApiQuery<QuestionQuery>,
) -> Result<Json<Page<QuestionWithContext>>, ApiError> {
    let scope = caller.list_scope(Action::ListQuestions)?;
    validate::cursor(q.cursor.as_deref(), "q")?;
    let (items, next_cursor) = ctx
        .db
        .list_questions(
            scope.as_deref(),
            q.unanswered.unwrap_or(false),
            q.cursor.as_deref(),
            validate::limit(q.limit)?,
        )
        .await?;
    Ok(Json(Page { items, next_cursor }))
}

/// Answers a screening question, or marks it for a person's review.
#[utoipa::path(put, path = "/api/job-applications/{id}/questions/{qid}/answer", tag = "questions",
    params(("id" = String, Path), ("qid" = String, Path)), request_body = AnswerInput,
    responses((status = 200, body = Application), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn answer(
    caller: Caller,
    State(ctx): State<ApiContext>,
    Path((id, qid)): Path<(String, String)>,
    ApiJson(input): ApiJson<AnswerInput>,
) -> Result<Json<Application>, ApiError> {
    let app = load(&ctx, &caller, &id, Action::AnswerQuestion).await?;
    validate::id("question_id", &qid, "q")?;
    match (&input.answer, input.needs_review) {
        (Some(a), false) => validate::text("answer", a, 5000)?,
        (None, true) => validate::opt_text("review_reason", input.review_reason.as_deref(), 1000)?,
        (Some(_), true) => {
            return Err(ApiError::invalid(
                "needs_review",
                "give an answer or mark for review, not both",
            ));
        }
        (None, false) => {
            return Err(ApiError::invalid(
                "answer",
                "an answer is required unless needs_review is true",
            ));
        }
    }
    if !matches!(
        app.status,
        ApplicationStatus::Saved | ApplicationStatus::Queued
    ) {
        return Err(ApiError::Conflict(format!(
            "answers are frozen once an application is {}",
            app.status
        )));
    }
    if app.claimed_by.is_some()
        && app.lease_expires_at.is_some_and(|t| t > now_ms())
        && caller.role != Role::User
    {
        return Err(ApiError::Conflict(
            "the application is being submitted".into(),
        ));
    }
    ctx.db
        .question(&id, &qid)
        .await?
        .ok_or(ApiError::NotFound("question"))?;
    let protect = caller.role != Role::User;
    if !ctx
        .db
        .answer(
            &app,
            &qid,
            input.answer.as_deref().map(str::trim),
            input.needs_review,
            input.review_reason.as_deref(),
            &caller.actor,
            protect,
        )
        .await?
    {
        return Err(ApiError::Conflict(
            "the candidate answered this question; it is not overwritten".into(),
        ));
    }
    full(&ctx, &id).await
}
