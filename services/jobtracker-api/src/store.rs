//! Every query. Writes that belong together run in one transaction, and every rule about who
//! may change what is part of the statement that writes: `UPDATE … WHERE` the status, the
//! claim, its `lease_id` and the question's owner still allow it, after the application row is
//! locked (`SELECT … FOR UPDATE` on Postgres, `BEGIN IMMEDIATE` on SQLite). Zero rows changed
//! means the rule did not hold at that moment: 409, nothing written, no event.

use jobtracker_types::{
    Application, ApplicationStatus, Event, Question, QuestionWithContext, Resume, User,
    UserProfileInput,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::db::{Backend, Db, new_id, rfc3339};
use crate::error::ApiError;

type Result<T> = std::result::Result<T, ApiError>;

fn opt_bool(v: Option<bool>) -> Option<i64> {
    v.map(i64::from)
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn status_of(code: i64) -> Result<ApplicationStatus> {
    ApplicationStatus::from_code(code)
        .ok_or_else(|| ApiError::Internal(format!("unknown status code {code} in the database")))
}

fn user_from(row: &AnyRow) -> Result<User> {
    let u32_of = |c: &str| -> Result<Option<u32>> {
        Ok(row
            .try_get::<Option<i64>, _>(c)?
            .map(|v| v.clamp(0, u32::MAX as i64) as u32))
    };
    let bool_of =
        |c: &str| -> Result<Option<bool>> { Ok(row.try_get::<Option<i64>, _>(c)?.map(|v| v != 0)) };
    Ok(User {
        id: row.try_get("id")?,
        profile: UserProfileInput {
            full_name: row.try_get("full_name")?,
            email: row.try_get("email")?,
            phone: row.try_get("phone")?,
            location: row.try_get("location")?,
            headline: row.try_get("headline")?,
            years_experience: u32_of("years_experience")?,
            skills: parse_list(&row.try_get::<String, _>("skills")?),
            work_authorization: row.try_get("work_authorization")?,
            requires_sponsorship: bool_of("requires_sponsorship")?,
            salary_expectation: row.try_get("salary_expectation")?,
            notice_period_days: u32_of("notice_period_days")?,
            willing_to_relocate: bool_of("willing_to_relocate")?,
            remote_preference: row.try_get("remote_preference")?,
            links: parse_list(&row.try_get::<String, _>("links")?),
        },
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    })
}

fn resume_from(row: &AnyRow) -> Result<Resume> {
    Ok(Resume {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        file_name: row.try_get("file_name")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

fn question_from(row: &AnyRow) -> Result<Question> {
    Ok(Question {
        id: row.try_get("id")?,
        application_id: row.try_get("application_id")?,
        text: row.try_get("text")?,
        answer: row.try_get("answer")?,
        answered_by: row.try_get("answered_by")?,
        answered_at: row.try_get::<Option<i64>, _>("answered_at")?.map(rfc3339),
        needs_review: row.try_get::<i64, _>("needs_review")? != 0,
        review_reason: row.try_get("review_reason")?,
        review_requested_by: row.try_get("review_requested_by")?,
    })
}

fn event_from(row: &AnyRow) -> Result<Event> {
    let status = |c: &str| -> Result<Option<ApplicationStatus>> {
        row.try_get::<Option<i64>, _>(c)?.map(status_of).transpose()
    };
    Ok(Event {
        id: row.try_get("id")?,
        application_id: row.try_get("application_id")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        from_status: status("from_status")?,
        to_status: status("to_status")?,
        detail: row.try_get("detail")?,
        at: rfc3339(row.try_get("at")?),
    })
}

/// The fields of an application row that decisions are made on.
#[derive(Debug, Clone)]
pub struct AppState {
    pub id: String,
    pub user_id: String,
    pub status: ApplicationStatus,
    pub version: i64,
    pub claimed_by: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub resume_id: Option<String>,
}

const APP_COLUMNS: &str = "id, user_id, company, position, job_url, resume_id, status, reason, submission_ref, claimed_by, lease_expires_at, attempts, version, created_at, updated_at";

/// What a status change must still find true when it writes.
#[derive(Debug, Clone, Copy)]
pub enum StatusGuard<'a> {
    /// A user's change: the application is still at the version that was read.
    Version,
    /// The job-applier's change: it still holds the live claim `lease_id`; `require_ready`
    /// (submitting) also needs every question answered and none awaiting review.
    Lease {
        /// The claim's fencing token.
        lease_id: &'a str,
        /// Whether the application must still be ready.
        require_ready: bool,
    },
}

/// An event to write.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub from: Option<ApplicationStatus>,
    pub to: Option<ApplicationStatus>,
    pub detail: Option<String>,
}

impl<'a> NewEvent<'a> {
    /// An event that changes no status (claims, leases, answers).
    fn note(actor: &'a str, action: &'a str, detail: Option<String>) -> Self {
        Self {
            actor,
            action,
            from: None,
            to: None,
            detail,
        }
    }
}

/// Records `event` in the change's own transaction and commits both: the audit trail never
/// misses a change, nor holds one that did not happen.
async fn commit_with_event(
    mut tx: Transaction<'_, Any>,
    application_id: &str,
    event: NewEvent<'_>,
    at: i64,
) -> Result<bool> {
    insert_event(&mut tx, application_id, event, at).await?;
    tx.commit().await?;
    Ok(true)
}

async fn insert_event(
    tx: &mut Transaction<'_, Any>,
    application_id: &str,
    e: NewEvent<'_>,
    at: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO events (id, application_id, actor, action, from_status, to_status, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(new_id("evt"))
        .bind(application_id)
        .bind(e.actor)
        .bind(e.action)
        .bind(e.from.map(ApplicationStatus::code))
        .bind(e.to.map(ApplicationStatus::code))
        .bind(e.detail)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Pages: fetch `limit + 1` to know whether there is a next page.
fn page<T>(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        let next = items.last().map(id);
        (items, next)
    } else {
        (items, None)
    }
}

impl Db {
    pub async fn upsert_user(&self, id: &str, p: &UserProfileInput) -> Result<User> {
        let now = self.now_ms();
        sqlx::query(
            "INSERT INTO users (id, full_name, email, phone, location, headline, years_experience, skills, work_authorization, \
             requires_sponsorship, salary_expectation, notice_period_days, willing_to_relocate, remote_preference, links, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) \
             ON CONFLICT (id) DO UPDATE SET full_name = excluded.full_name, email = excluded.email, phone = excluded.phone, \
             location = excluded.location, headline = excluded.headline, years_experience = excluded.years_experience, \
             skills = excluded.skills, work_authorization = excluded.work_authorization, requires_sponsorship = excluded.requires_sponsorship, \
             salary_expectation = excluded.salary_expectation, notice_period_days = excluded.notice_period_days, \
             willing_to_relocate = excluded.willing_to_relocate, remote_preference = excluded.remote_preference, \
             links = excluded.links, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(&p.full_name)
        .bind(&p.email)
        .bind(&p.phone)
        .bind(&p.location)
        .bind(&p.headline)
        .bind(p.years_experience.map(i64::from))
        .bind(json_list(&p.skills))
        .bind(&p.work_authorization)
        .bind(opt_bool(p.requires_sponsorship))
        .bind(&p.salary_expectation)
        .bind(p.notice_period_days.map(i64::from))
        .bind(opt_bool(p.willing_to_relocate))
        .bind(&p.remote_preference)
        .bind(json_list(&p.links))
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.user(id).await?.ok_or(ApiError::NotFound("user"))
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn insert_resume(
        &self,
        user_id: &str,
        file_name: &str,
        content_type: &str,
        sha256: &str,
        content: Vec<u8>,
    ) -> Result<Resume> {
        let id = new_id("res");
        let size = content.len() as i64;
        sqlx::query("INSERT INTO resumes (id, user_id, file_name, content_type, size, sha256, content, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&id)
            .bind(user_id)
            .bind(file_name)
            .bind(content_type)
            .bind(size)
            .bind(sha256)
            .bind(content)
            .bind(self.now_ms())
            .execute(&self.pool)
            .await?;
        self.resume(&id).await?.ok_or(ApiError::NotFound("resume"))
    }

    pub async fn resume(&self, id: &str) -> Result<Option<Resume>> {
        let row = sqlx::query("SELECT id, user_id, file_name, content_type, size, sha256, created_at FROM resumes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(resume_from).transpose()
    }

    pub async fn resume_content(&self, id: &str) -> Result<Option<(Resume, Vec<u8>)>> {
        let row = sqlx::query("SELECT id, user_id, file_name, content_type, size, sha256, created_at, content FROM resumes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some((resume_from(&r)?, r.try_get("content")?))),
            None => Ok(None),
        }
    }

    pub async fn list_resumes(
        &self,
        user_id: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Resume>, Option<String>)> {
        let rows = sqlx::query(
            "SELECT id, user_id, file_name, content_type, size, sha256, created_at FROM resumes \
             WHERE user_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(user_id)
        .bind(cursor)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(resume_from).collect::<Result<Vec<_>>>()?;
        Ok(page(items, limit, |r| r.id.clone()))
    }

    pub async fn create_application(
        &self,
        user_id: &str,
        input: &jobtracker_types::CreateApplication,
        status: ApplicationStatus,
        actor: &str,
    ) -> Result<Application> {
        let id = new_id("app");
        let now = self.now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO job_applications (id, user_id, company, position, job_url, resume_id, status, attempts, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 1, $8, $8)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(input.company.trim())
        .bind(input.position.trim())
        .bind(&input.job_url)
        .bind(&input.resume_id)
        .bind(status.code())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (i, text) in input.questions.iter().enumerate() {
            sqlx::query("INSERT INTO questions (id, application_id, position, text, needs_review) VALUES ($1, $2, $3, $4, 0)")
                .bind(new_id("q"))
                .bind(&id)
                .bind(i as i64)
                .bind(text.trim())
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
        insert_event(&mut tx, &id, event, now).await?;
        tx.commit().await?;
        self.application(&id)
            .await?
            .ok_or(ApiError::NotFound("job application"))
    }

    pub async fn app_state(&self, id: &str) -> Result<Option<AppState>> {
        let row = sqlx::query("SELECT id, user_id, status, version, claimed_by, lease_expires_at, resume_id FROM job_applications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(AppState {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                status: status_of(r.try_get("status")?)?,
                version: r.try_get("version")?,
                claimed_by: r.try_get("claimed_by")?,
                lease_expires_at: r.try_get("lease_expires_at")?,
                resume_id: r.try_get("resume_id")?,
            })),
        }
    }

    async fn questions_of(&self, ids: &[String]) -> Result<Vec<Question>> {
        let mut out = Vec::new();
        for id in ids {
            let rows =
                sqlx::query("SELECT * FROM questions WHERE application_id = $1 ORDER BY position")
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?;
            for r in &rows {
                out.push(question_from(r)?);
            }
        }
        Ok(out)
    }

    fn application_from(row: &AnyRow, questions: Vec<Question>) -> Result<Application> {
        Ok(Application {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            company: row.try_get("company")?,
            position: row.try_get("position")?,
            job_url: row.try_get("job_url")?,
            resume_id: row.try_get("resume_id")?,
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
            questions,
        })
    }

    pub async fn application(&self, id: &str) -> Result<Option<Application>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM job_applications WHERE id = $1"
        ));
        let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let questions = self.questions_of(&[id.to_owned()]).await?;
        Self::application_from(&row, questions).map(Some)
    }

    pub async fn list_applications(
        &self,
        user_id: Option<&str>,
        status: Option<ApplicationStatus>,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Application>, Option<String>)> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM job_applications WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
        ));
        let rows = sqlx::query(sql)
            .bind(user_id)
            .bind(status.map(ApplicationStatus::code))
            .bind(cursor)
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut items = Vec::new();
        for r in &rows {
            let id: String = r.try_get("id")?;
            let questions = self.questions_of(&[id]).await?;
            items.push(Self::application_from(r, questions)?);
        }
        Ok(page(items, limit, |a| a.id.clone()))
    }

    pub async fn list_events(
        &self,
        application_id: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Event>, Option<String>)> {
        let rows = sqlx::query("SELECT * FROM events WHERE application_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3")
            .bind(application_id)
            .bind(cursor)
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(event_from).collect::<Result<Vec<_>>>()?;
        Ok(page(items, limit, |e| e.id.clone()))
    }

    /// Locks the application row for the rest of `tx` (Postgres; SQLite's `BEGIN IMMEDIATE`
    /// already holds the database's write lock), so a rule read inside `tx` still holds when
    /// `tx` writes.
    async fn lock_application(&self, tx: &mut Transaction<'_, Any>, id: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM job_applications WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Why a guarded write to `id` changed nothing, read inside the same transaction for the
    /// 409's message (the decision was the statement's).
    async fn claim_conflict(
        &self,
        tx: &mut Transaction<'_, Any>,
        id: &str,
        actor: &str,
        lease_id: &str,
        now: i64,
    ) -> Result<ApiError> {
        let row = sqlx::query(
            "SELECT status, claimed_by, lease_id, lease_expires_at FROM job_applications WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok(ApiError::NotFound("job application"));
        };
        let status = status_of(row.try_get("status")?)?;
        let holder: Option<String> = row.try_get("claimed_by")?;
        let current: Option<String> = row.try_get("lease_id")?;
        let expires: Option<i64> = row.try_get("lease_expires_at")?;
        let detail = if status != ApplicationStatus::Queued {
            format!("the application is {status} now")
        } else if holder.as_deref() != Some(actor) || current.as_deref() != Some(lease_id) {
            "this lease_id does not hold the claim (it was released, or superseded by a newer claim)"
                .to_owned()
        } else if expires.is_none_or(|t| t <= now) {
            "the lease has lapsed; claim the application again".to_owned()
        } else {
            "the application is no longer ready: a question is unanswered or awaiting review"
                .to_owned()
        };
        Ok(ApiError::Conflict(detail))
    }

    /// Changes the status if it is still `seen.status` and the `guard` holds, in one statement.
    /// Users: still at `seen.version`. The applier: its claim is live and fenced by `lease_id`
    /// (answers edited during a claim bump the version but must not fail the submission), and,
    /// to submit, the application is still ready. Otherwise 409 and nothing is written.
    pub async fn change_status(
        &self,
        seen: &AppState,
        to: ApplicationStatus,
        reason: Option<&str>,
        submission_ref: Option<&str>,
        actor: &str,
        guard: StatusGuard<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.lock_application(&mut tx, &seen.id).await?;
        let now = self.now_ms();
        let (by_lease, lease_id, require_ready) = match guard {
            StatusGuard::Version => (false, None, false),
            StatusGuard::Lease {
                lease_id,
                require_ready,
            } => (true, Some(lease_id), require_ready),
        };
        let changed = sqlx::query(
            "UPDATE job_applications SET status = $1, reason = $2, submission_ref = COALESCE($3, submission_ref), claimed_by = NULL, \
             lease_id = NULL, lease_expires_at = NULL, version = version + 1, updated_at = $4 \
             WHERE id = $5 AND status = $6 \
             AND ($7 = 1 OR version = $8) \
             AND ($7 = 0 OR (claimed_by = $9 AND lease_id = $10 AND lease_expires_at > $4)) \
             AND ($11 = 0 OR NOT EXISTS (SELECT 1 FROM questions q WHERE q.application_id = $5 AND (q.answer IS NULL OR q.needs_review <> 0)))",
        )
        .bind(to.code())
        .bind(reason)
        .bind(submission_ref)
        .bind(now)
        .bind(&seen.id)
        .bind(seen.status.code())
        .bind(i64::from(by_lease))
        .bind(seen.version)
        .bind(actor)
        .bind(lease_id)
        .bind(i64::from(require_ready))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            let e = match lease_id {
                Some(l) => {
                    self.claim_conflict(&mut tx, &seen.id, actor, l, now)
                        .await?
                }
                None => {
                    ApiError::Conflict("the application changed meanwhile; reload and retry".into())
                }
            };
            tx.rollback().await?;
            return Err(e);
        }
        let detail = match (reason, submission_ref) {
            (Some(r), _) => Some(r.to_owned()),
            (None, Some(s)) => Some(format!("submission_ref={s}")),
            _ => None,
        };
        let event = NewEvent {
            actor,
            action: "status_changed",
            from: Some(seen.status),
            to: Some(to),
            detail,
        };
        commit_with_event(tx, &seen.id, event, now).await?;
        Ok(())
    }

    /// Leases the oldest ready application (queued, every question answered and none awaiting
    /// review, not leased or lease lapsed) to `actor` with a new `lease_id`. The candidate is
    /// locked first (Postgres: `FOR UPDATE SKIP LOCKED`, so concurrent claimers pass over it;
    /// SQLite: the write lock), then the lease is written only if it is still ready then.
    /// Returns `(application id, lease_id)`.
    pub async fn claim(&self, actor: &str, lease_ms: i64) -> Result<Option<(String, String)>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let ready = "a.status = 1 AND (a.claimed_by IS NULL OR a.lease_expires_at IS NULL OR a.lease_expires_at <= $1) \
             AND NOT EXISTS (SELECT 1 FROM questions q WHERE q.application_id = a.id AND (q.answer IS NULL OR q.needs_review <> 0))";
        let pick = format!(
            "SELECT a.id FROM job_applications a WHERE {ready} ORDER BY a.id LIMIT 1{lock}"
        );
        let take = format!(
            "UPDATE job_applications SET claimed_by = $2, lease_id = $3, lease_expires_at = $4, attempts = attempts + 1, updated_at = $1 \
             WHERE id = $5 AND id IN (SELECT a.id FROM job_applications a WHERE a.id = $5 AND {ready})"
        );
        // A candidate can stop being ready between the pick and the take only on Postgres (the
        // pick reads a snapshot); then the next pick passes over it.
        for _ in 0..5 {
            let mut tx = self.begin_write().await?;
            let now = self.now_ms();
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(pick.clone()))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(None);
            };
            let id: String = row.try_get("id")?;
            let lease_id = new_id("lease");
            let taken = sqlx::query(sqlx::AssertSqlSafe(take.clone()))
                .bind(now)
                .bind(actor)
                .bind(&lease_id)
                .bind(now + lease_ms)
                .bind(&id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if taken == 0 {
                tx.rollback().await?;
                continue;
            }
            let event = NewEvent::note(
                actor,
                "claimed",
                Some(format!("lease {}s", lease_ms / 1000)),
            );
            commit_with_event(tx, &id, event, now).await?;
            return Ok(Some((id, lease_id)));
        }
        Ok(None)
    }

    /// Extends (`Some`) or releases (`None`) the claim `lease_id` of `actor`. Renewal needs a
    /// live lease; release only that `lease_id` still be the claim (a lapsed one that nobody
    /// took over may be given back). Otherwise 409.
    pub async fn set_lease(
        &self,
        id: &str,
        actor: &str,
        lease_id: &str,
        lease_ms: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.lock_application(&mut tx, id).await?;
        let now = self.now_ms();
        let changed = sqlx::query(
            "UPDATE job_applications SET lease_expires_at = $1, \
             claimed_by = CASE WHEN $2 = 1 THEN claimed_by ELSE NULL END, \
             lease_id = CASE WHEN $2 = 1 THEN lease_id ELSE NULL END, updated_at = $3 \
             WHERE id = $4 AND status = 1 AND claimed_by = $5 AND lease_id = $6 \
             AND ($2 = 0 OR lease_expires_at > $3)",
        )
        .bind(lease_ms.map(|l| now + l))
        .bind(i64::from(lease_ms.is_some()))
        .bind(now)
        .bind(id)
        .bind(actor)
        .bind(lease_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            let e = self
                .claim_conflict(&mut tx, id, actor, lease_id, now)
                .await?;
            tx.rollback().await?;
            return Err(e);
        }
        let (action, detail) = match lease_ms {
            Some(l) => ("lease_renewed", Some(format!("lease {}s", l / 1000))),
            None => ("lease_released", None),
        };
        commit_with_event(tx, id, NewEvent::note(actor, action, detail), now).await?;
        Ok(())
    }

    pub async fn question(
        &self,
        application_id: &str,
        question_id: &str,
    ) -> Result<Option<Question>> {
        let row = sqlx::query("SELECT * FROM questions WHERE id = $1 AND application_id = $2")
            .bind(question_id)
            .bind(application_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(question_from).transpose()
    }

    /// Answers or flags a question, in one guarded statement: only while the application is
    /// `saved`/`queued`; for a bot (`by_bot`) also only while no claim is live and the question
    /// holds neither a user's answer nor a user's review hold. Otherwise 409 (404 when there is
    /// no such question), nothing written, no event.
    #[allow(clippy::too_many_arguments)]
    pub async fn answer(
        &self,
        application_id: &str,
        question_id: &str,
        answer: Option<&str>,
        needs_review: bool,
        review_reason: Option<&str>,
        actor: &str,
        by_bot: bool,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.lock_application(&mut tx, application_id).await?;
        let now = self.now_ms();
        let changed = sqlx::query(
            "UPDATE questions SET answer = $1, answered_by = $2, answered_at = $3, needs_review = $4, review_reason = $5, \
             review_requested_by = $6 \
             WHERE id = $7 AND application_id = $8 \
             AND EXISTS (SELECT 1 FROM job_applications a WHERE a.id = $8 AND a.status IN (0, 1) \
                 AND ($9 = 0 OR a.claimed_by IS NULL OR a.lease_expires_at IS NULL OR a.lease_expires_at <= $10)) \
             AND ($9 = 0 OR ((answered_by IS NULL OR answered_by NOT LIKE 'user:%') \
                 AND (needs_review = 0 OR review_requested_by IS NULL OR review_requested_by NOT LIKE 'user:%')))",
        )
        .bind(answer)
        .bind(answer.map(|_| actor))
        .bind(answer.map(|_| now))
        .bind(i64::from(needs_review))
        .bind(review_reason)
        .bind(needs_review.then_some(actor))
        .bind(question_id)
        .bind(application_id)
        .bind(i64::from(by_bot))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            let e = self
                .answer_conflict(&mut tx, application_id, question_id, now)
                .await?;
            tx.rollback().await?;
            return Err(e);
        }
        sqlx::query(
            "UPDATE job_applications SET version = version + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(application_id)
        .execute(&mut *tx)
        .await?;
        let action = if needs_review {
            "marked_for_review"
        } else {
            "answered"
        };
        let detail = Some(match review_reason {
            Some(r) if needs_review => format!("question {question_id}: {r}"),
            _ => format!("question {question_id}"),
        });
        commit_with_event(
            tx,
            application_id,
            NewEvent::note(actor, action, detail),
            now,
        )
        .await?;
        Ok(())
    }

    /// Why an answer changed nothing, for the 409's message.
    async fn answer_conflict(
        &self,
        tx: &mut Transaction<'_, Any>,
        application_id: &str,
        question_id: &str,
        now: i64,
    ) -> Result<ApiError> {
        let row = sqlx::query(
            "SELECT a.status, a.claimed_by, a.lease_expires_at, q.answered_by, q.needs_review, q.review_requested_by \
             FROM questions q JOIN job_applications a ON a.id = q.application_id WHERE q.id = $1 AND a.id = $2",
        )
        .bind(question_id)
        .bind(application_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok(ApiError::NotFound("question"));
        };
        let status = status_of(row.try_get("status")?)?;
        let claimed = row.try_get::<Option<String>, _>("claimed_by")?.is_some()
            && row
                .try_get::<Option<i64>, _>("lease_expires_at")?
                .is_some_and(|t| t > now);
        let by_user = |c: &str| -> Result<bool> {
            Ok(row
                .try_get::<Option<String>, _>(c)?
                .is_some_and(|a| a.starts_with("user:")))
        };
        let detail = if !matches!(status, ApplicationStatus::Saved | ApplicationStatus::Queued) {
            format!("answers are frozen once an application is {status}")
        } else if claimed {
            "the application is being submitted: bots cannot change answers during a claim".into()
        } else if by_user("answered_by")? {
            "the candidate answered this question; it is not overwritten".into()
        } else if row.try_get::<i64, _>("needs_review")? != 0 && by_user("review_requested_by")? {
            "the candidate will answer this question themselves".into()
        } else {
            "the question changed meanwhile; reload and retry".into()
        };
        Ok(ApiError::Conflict(detail))
    }

    pub async fn list_questions(
        &self,
        user_id: Option<&str>,
        unanswered: bool,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<QuestionWithContext>, Option<String>)> {
        let rows = sqlx::query(
            "SELECT q.*, a.user_id AS app_user_id, a.company AS app_company, a.position AS app_position \
             FROM questions q JOIN job_applications a ON a.id = q.application_id \
             WHERE ($1 IS NULL OR a.user_id = $1) \
             AND ($2 = 0 OR (q.answer IS NULL AND q.needs_review = 0 AND a.status IN (0, 1))) \
             AND ($3 IS NULL OR q.id > $3) ORDER BY q.id LIMIT $4",
        )
        .bind(user_id)
        .bind(i64::from(unanswered))
        .bind(cursor)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut items = Vec::new();
        for r in &rows {
            items.push(QuestionWithContext {
                question: question_from(r)?,
                user_id: r.try_get("app_user_id")?,
                company: r.try_get("app_company")?,
                position: r.try_get("app_position")?,
            });
        }
        Ok(page(items, limit, |q| q.question.id.clone()))
    }
}
