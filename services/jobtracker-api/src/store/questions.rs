//! Screening questions: their answers and review holds.

use std::collections::HashMap;

use jobtracker_types::{ApplicationId, Page, Question, QuestionId, QuestionWithContext, UserId};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::events::{NewEvent, commit_with_event};
use super::{ANSWERABLE, Conflict, Entity, Result, StoreError, id_of, page, status_of};
use crate::db::{Db, rfc3339};
use crate::domain::{PageSize, Reply, Text};

/// Who writes a reply: the rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// The candidate: may change any answer while the application is saved or queued.
    User,
    /// A bot: also only while no claim is live, and never over the candidate's answer or the
    /// candidate's review hold.
    Bot,
}

/// The bot's extra conditions on the application `a` (`$11` is now).
const BOT_AFTER_CLAIM: &str =
    " AND (a.claimed_by IS NULL OR a.lease_expires_at IS NULL OR a.lease_expires_at <= $11)";
/// The bot's extra conditions on the question.
const BOT_NOT_OVER_USER: &str = " AND (answered_by IS NULL OR answered_by NOT LIKE 'user:%') \
     AND (needs_review = 0 OR review_requested_by IS NULL OR review_requested_by NOT LIKE 'user:%')";

fn question_from(row: &AnyRow) -> Result<Question> {
    Ok(Question {
        id: id_of(row, "id")?,
        application_id: id_of(row, "application_id")?,
        text: row.try_get("text")?,
        answer: row.try_get("answer")?,
        answered_by: row.try_get("answered_by")?,
        answered_at: row.try_get::<Option<i64>, _>("answered_at")?.map(rfc3339),
        needs_review: row.try_get::<i64, _>("needs_review")? != 0,
        review_reason: row.try_get("review_reason")?,
        review_requested_by: row.try_get("review_requested_by")?,
    })
}

impl Db {
    /// The questions of `application_ids` in one query, by application, in position order.
    pub(super) async fn questions_of(
        &self,
        application_ids: &[String],
    ) -> Result<HashMap<String, Vec<Question>>> {
        let mut by_application: HashMap<String, Vec<Question>> = HashMap::new();
        if application_ids.is_empty() {
            return Ok(by_application);
        }
        let placeholders = (1..=application_ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT * FROM questions WHERE application_id IN ({placeholders}) ORDER BY application_id, position"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in application_ids {
            query = query.bind(id);
        }
        for row in &query.fetch_all(&self.pool).await? {
            let question = question_from(row)?;
            by_application
                .entry(question.application_id.as_str().to_owned())
                .or_default()
                .push(question);
        }
        Ok(by_application)
    }

    /// Writes `reply` into a question, in one guarded statement: only while the application is
    /// `saved`/`queued`; for a [`Answerer::Bot`] also only while no claim is live and the
    /// question holds neither a user's answer nor a user's review hold. Otherwise
    /// [`StoreError::Conflict`] ([`StoreError::NotFound`] when there is no such question),
    /// nothing written, no event.
    #[tracing::instrument(target = "spans", level = "debug", name = "store.answer", skip_all)]
    pub async fn answer(
        &self,
        application_id: &ApplicationId,
        question_id: &QuestionId,
        reply: &Reply,
        actor: &str,
        answerer: Answerer,
    ) -> Result<()> {
        let (application_id, question_id) = (application_id.as_str(), question_id.as_str());
        let (answer, needs_review, review_reason) = match reply {
            Reply::Answer {
                text,
                review_reason,
            } => (Some(text.as_str()), false, review_reason),
            Reply::NeedsReview { reason } => (None, true, reason),
        };
        let review_reason = review_reason.as_ref().map(Text::as_str);
        let (on_application, on_question) = match answerer {
            Answerer::User => ("", ""),
            Answerer::Bot => (BOT_AFTER_CLAIM, BOT_NOT_OVER_USER),
        };
        let mut tx = self.begin_write().await?;
        self.lock_application(&mut tx, application_id).await?;
        let now = self.now_ms();
        let sql = format!(
            "UPDATE questions SET answer = $1, answered_by = $2, answered_at = $3, needs_review = $4, review_reason = $5, \
             review_requested_by = $6 \
             WHERE id = $7 AND application_id = $8 \
             AND EXISTS (SELECT 1 FROM job_applications a WHERE a.id = $8 AND a.status IN ($9, $10){on_application}){on_question}"
        );
        let update = sqlx::query(AssertSqlSafe(sql))
            .bind(answer)
            .bind(answer.map(|_| actor))
            .bind(answer.map(|_| now))
            .bind(i64::from(needs_review))
            .bind(review_reason)
            .bind(needs_review.then_some(actor))
            .bind(question_id)
            .bind(application_id)
            .bind(ANSWERABLE[0].code())
            .bind(ANSWERABLE[1].code());
        let update = match answerer {
            Answerer::User => update,
            Answerer::Bot => update.bind(now),
        };
        let changed = update.execute(&mut *tx).await?.rows_affected();
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
        let event = NewEvent::note(actor, action, detail);
        commit_with_event(self, tx, application_id, event, now).await
    }

    /// Why an answer changed nothing, read inside the same transaction: the error to answer
    /// with.
    async fn answer_conflict(
        &self,
        tx: &mut Transaction<'_, Any>,
        application_id: &str,
        question_id: &str,
        now: i64,
    ) -> Result<StoreError> {
        let row = sqlx::query(
            "SELECT a.status, a.claimed_by, a.lease_expires_at, q.answered_by, q.needs_review, q.review_requested_by \
             FROM questions q JOIN job_applications a ON a.id = q.application_id WHERE q.id = $1 AND a.id = $2",
        )
        .bind(question_id)
        .bind(application_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok(StoreError::NotFound(Entity::Question));
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
        let why = if !ANSWERABLE.contains(&status) {
            Conflict::AnswersFrozen(status)
        } else if claimed {
            Conflict::ClaimLive
        } else if by_user("answered_by")? {
            Conflict::AnsweredByUser
        } else if row.try_get::<i64, _>("needs_review")? != 0 && by_user("review_requested_by")? {
            Conflict::HeldForUser
        } else {
            Conflict::QuestionChanged
        };
        Ok(StoreError::Conflict(why))
    }

    /// Questions with the candidate and application they belong to, oldest first; `unanswered`
    /// keeps those without an answer, not awaiting review, of saved or queued applications.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.list_questions",
        skip_all
    )]
    pub async fn list_questions(
        &self,
        user_id: Option<&UserId>,
        unanswered: bool,
        cursor: Option<&QuestionId>,
        limit: PageSize,
    ) -> Result<Page<QuestionWithContext>> {
        let limit = limit.get();
        let rows = sqlx::query(
            "SELECT q.*, a.user_id AS app_user_id, a.company AS app_company, a.position AS app_position \
             FROM questions q JOIN job_applications a ON a.id = q.application_id \
             WHERE ($1 IS NULL OR a.user_id = $1) \
             AND ($2 = 0 OR (q.answer IS NULL AND q.needs_review = 0 AND a.status IN ($5, $6))) \
             AND ($3 IS NULL OR q.id > $3) ORDER BY q.id LIMIT $4",
        )
        .bind(user_id.map(UserId::as_str))
        .bind(i64::from(unanswered))
        .bind(cursor.map(QuestionId::as_str))
        .bind(limit + 1)
        .bind(ANSWERABLE[0].code())
        .bind(ANSWERABLE[1].code())
        .fetch_all(&self.pool)
        .await?;
        let with_context = |r: &AnyRow| {
            Ok(QuestionWithContext {
                question: question_from(r)?,
                user_id: id_of(r, "app_user_id")?,
                company: r.try_get("app_company")?,
                position: r.try_get("app_position")?,
            })
        };
        page(&rows, limit, with_context, |q: &QuestionWithContext| {
            q.question.id.as_str()
        })
    }
}
