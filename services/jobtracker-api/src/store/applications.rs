//! Job applications and their status changes.

use jobtracker_types::{
    Application, ApplicationId, ApplicationStatus, LeaseId, Page, ResumeId, UserId,
};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::events::{NewEvent, commit_with_event};
use super::{Conflict, Entity, Result, StoreError, id_of, page, status_of};
use crate::db::{Db, new_id, rfc3339};
use crate::domain::{NewApplication, PageSize, Text};

const APP_COLUMNS: &str = "id, user_id, company, position, job_url, resume_id, status, reason, submission_ref, claimed_by, lease_expires_at, attempts, version, created_at, updated_at";

/// The fields of an application row that a handler decides on, as read at one moment. A write
/// made on these decisions re-checks what it relies on (see [`StatusGuard`]).
#[derive(Debug, Clone)]
pub struct ApplicationSnapshot {
    /// `app_…`
    pub id: ApplicationId,
    /// The candidate it belongs to.
    pub user_id: UserId,
    /// The status a change starts from.
    pub status: ApplicationStatus,
    /// Bumped by every change, answers included.
    pub version: i64,
}

/// A status change.
#[derive(Debug, Clone, Copy)]
pub struct StatusChange<'a> {
    /// The new status.
    pub to: ApplicationStatus,
    /// Why (required for `failed`); replaces the previous reason.
    pub reason: Option<&'a Text>,
    /// The job site's reference of a submission; kept when not given.
    pub submission_ref: Option<&'a Text>,
}

/// What a status change must still find true when it writes.
#[derive(Debug, Clone, Copy)]
pub enum StatusGuard<'a> {
    /// A user's change: the application is still at the version that was read.
    Version,
    /// The job-applier's change: it still holds the live claim fenced by this `lease_id`.
    Lease(&'a LeaseId),
    /// As [`StatusGuard::Lease`], and the application is still ready (every question answered,
    /// none awaiting review): submitting.
    LeaseWhileReady(&'a LeaseId),
}

impl StatusGuard<'_> {
    /// The guard's part of the `WHERE` clause of the status update: `$4` is now, `$5` the
    /// application id, `$7` (and `$8`) what [`Db::change_status`] binds for it.
    fn condition(self) -> &'static str {
        match self {
            Self::Version => " AND version = $7",
            Self::Lease(_) => " AND claimed_by = $7 AND lease_id = $8 AND lease_expires_at > $4",
            Self::LeaseWhileReady(_) => {
                " AND claimed_by = $7 AND lease_id = $8 AND lease_expires_at > $4 \
                 AND NOT EXISTS (SELECT 1 FROM questions q WHERE q.application_id = $5 AND (q.answer IS NULL OR q.needs_review <> 0))"
            }
        }
    }
}

/// The application of `row`, without its questions (another query's).
fn application_from(row: &AnyRow) -> Result<Application> {
    Ok(Application {
        id: id_of(row, "id")?,
        user_id: id_of(row, "user_id")?,
        company: row.try_get("company")?,
        position: row.try_get("position")?,
        job_url: row.try_get("job_url")?,
        resume_id: row
            .try_get::<Option<String>, _>("resume_id")?
            .map(|r| ResumeId::try_from(r).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        status: status_of(row.try_get("status")?)?,
        reason: row.try_get("reason")?,
        submission_ref: row.try_get("submission_ref")?,
        claimed_by: row.try_get("claimed_by")?,
        lease_expires_at: row
            .try_get::<Option<i64>, _>("lease_expires_at")?
            .map(rfc3339),
        attempts: row.try_get("attempts")?,
        version: row.try_get("version")?,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
        questions: Vec::new(),
    })
}

impl Db {
    /// Creates an application with its questions, and its `created` event, in one transaction.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.create_application",
        skip_all
    )]
    pub async fn create_application(
        &self,
        user_id: &UserId,
        new: &NewApplication,
        actor: &str,
    ) -> Result<Application> {
        let status = new.status;
        let user_id = user_id.as_str();
        let id = new_id("app");
        let now = self.now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO job_applications (id, user_id, company, position, job_url, resume_id, status, attempts, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 1, $8, $8)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(new.company.as_str())
        .bind(new.position.as_str())
        .bind(new.job_url.as_ref().map(|u| u.as_str()))
        .bind(new.resume_id.as_ref().map(|r| r.as_str()))
        .bind(status.code())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (i, text) in new.questions.iter().enumerate() {
            sqlx::query("INSERT INTO questions (id, application_id, position, text, needs_review) VALUES ($1, $2, $3, $4, 0)")
                .bind(new_id("q"))
                .bind(&id)
                .bind(i as i64)
                .bind(text.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let event = NewEvent {
            actor,
            action: "created",
            from: None,
            to: Some(status),
            detail: None,
        };
        commit_with_event(self, tx, &id, event, now).await?;
        let id = ApplicationId::try_from(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.application(&id)
            .await?
            .ok_or(StoreError::NotFound(Entity::Application))
    }

    /// What a handler decides on about application `id`.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.application_snapshot",
        skip_all
    )]
    pub async fn application_snapshot(
        &self,
        id: &ApplicationId,
    ) -> Result<Option<ApplicationSnapshot>> {
        let id = id.as_str();
        let row =
            sqlx::query("SELECT id, user_id, status, version FROM job_applications WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(ApplicationSnapshot {
                id: id_of(&r, "id")?,
                user_id: id_of(&r, "user_id")?,
                status: status_of(r.try_get("status")?)?,
                version: r.try_get("version")?,
            })),
        }
    }

    /// Application `id` with its questions.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.application",
        skip_all
    )]
    pub async fn application(&self, id: &ApplicationId) -> Result<Option<Application>> {
        let id = id.as_str();
        let sql = AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM job_applications WHERE id = $1"
        ));
        let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let mut app = application_from(&row)?;
        app.questions = self
            .questions_of(&[id.to_owned()])
            .await?
            .remove(id)
            .unwrap_or_default();
        Ok(Some(app))
    }

    /// Applications, oldest first, with their questions (fetched for the whole page at once).
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.list_applications",
        skip_all
    )]
    pub async fn list_applications(
        &self,
        user_id: Option<&UserId>,
        status: Option<ApplicationStatus>,
        cursor: Option<&ApplicationId>,
        limit: PageSize,
    ) -> Result<Page<Application>> {
        let limit = limit.get();
        let sql = AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM job_applications WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
        ));
        let rows = sqlx::query(sql)
            .bind(user_id.map(UserId::as_str))
            .bind(status.map(ApplicationStatus::code))
            .bind(cursor.map(ApplicationId::as_str))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let listed = rows.iter().take(usize::try_from(limit).unwrap_or(0));
        let ids = listed
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut questions = self.questions_of(&ids).await?;
        let with_questions = |row: &AnyRow| {
            let mut app = application_from(row)?;
            app.questions = questions.remove(app.id.as_str()).unwrap_or_default();
            Ok(app)
        };
        page(&rows, limit, with_questions, |a: &Application| {
            a.id.as_str()
        })
    }

    /// Changes the status if it is still `seen.status` and the `guard` holds, in one statement.
    /// Users: still at `seen.version`. The applier: its claim is live and fenced by `lease_id`
    /// (answers edited during a claim bump the version but must not fail the submission), and,
    /// to submit, the application is still ready. Otherwise [`StoreError::Conflict`] and
    /// nothing is written.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.change_status",
        skip_all
    )]
    pub async fn change_status(
        &self,
        seen: &ApplicationSnapshot,
        change: StatusChange<'_>,
        actor: &str,
        guard: StatusGuard<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.lock_application(&mut tx, seen.id.as_str()).await?;
        let now = self.now_ms();
        let sql = format!(
            "UPDATE job_applications SET status = $1, reason = $2, submission_ref = COALESCE($3, submission_ref), claimed_by = NULL, \
             lease_id = NULL, lease_expires_at = NULL, version = version + 1, updated_at = $4 \
             WHERE id = $5 AND status = $6{}",
            guard.condition()
        );
        let update = sqlx::query(AssertSqlSafe(sql))
            .bind(change.to.code())
            .bind(change.reason.map(Text::as_str))
            .bind(change.submission_ref.map(Text::as_str))
            .bind(now)
            .bind(seen.id.as_str())
            .bind(seen.status.code());
        let (update, lease_id) = match guard {
            StatusGuard::Version => (update.bind(seen.version), None),
            StatusGuard::Lease(lease_id) | StatusGuard::LeaseWhileReady(lease_id) => {
                (update.bind(actor).bind(lease_id.as_str()), Some(lease_id))
            }
        };
        let changed = update.execute(&mut *tx).await?.rows_affected();
        if changed == 0 {
            let e = match lease_id {
                Some(l) => {
                    self.claim_conflict(&mut tx, seen.id.as_str(), actor, l.as_str(), now)
                        .await?
                }
                None => StoreError::Conflict(Conflict::Changed),
            };
            tx.rollback().await?;
            return Err(e);
        }
        let detail = match (change.reason, change.submission_ref) {
            (Some(r), _) => Some(r.as_str().to_owned()),
            (None, Some(s)) => Some(format!("submission_ref={}", s.as_str())),
            _ => None,
        };
        let event = NewEvent {
            actor,
            action: "status_changed",
            from: Some(seen.status),
            to: Some(change.to),
            detail,
        };
        commit_with_event(self, tx, seen.id.as_str(), event, now).await
    }
}
