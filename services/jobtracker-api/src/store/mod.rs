//! Every query, one module per resource. Writes that belong together run in one transaction,
//! and every rule about who may change what is part of the statement that writes: `UPDATE …
//! WHERE` the status, the claim, its `lease_id` and the question's owner still allow it, after
//! the application row is locked (`SELECT … FOR UPDATE` on Postgres, `BEGIN IMMEDIATE` on
//! SQLite). The resume quota likewise: `INSERT … SELECT … WHERE` the user's count and bytes
//! leave room, after the user's row is locked. Zero rows changed means the rule did not hold at
//! that moment: [`StoreError::Conflict`], nothing written, no event.
//!
//! Status values in SQL are bound from [`ApplicationStatus::code`], never written as numbers.
//! The store knows nothing of HTTP: `crate::error` maps [`StoreError`] to a response.

mod applications;
mod events;
mod leases;
mod questions;
mod resumes;
mod users;

use jobtracker_types::{ApplicationStatus, IdError, Page};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

pub use applications::{ApplicationSnapshot, StatusChange, StatusGuard};
pub use leases::{Claim, LeaseChange};
pub use questions::Answerer;
pub use resumes::{NewResume, ResumeLimits};

use crate::db::{Backend, Db};

/// What a store operation fails with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row the operation is about does not exist.
    #[error("{} not found", .0.name())]
    NotFound(Entity),
    /// The rule the write was guarded by did not hold; nothing was written.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The database holds a value this code cannot read.
    #[error("{0}")]
    Corrupt(String),
    /// The database failed or cannot be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

type Result<T> = std::result::Result<T, StoreError>;

/// What a [`StoreError::NotFound`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// A user profile.
    User,
    /// A resume.
    Resume,
    /// A job application.
    Application,
    /// A screening question.
    Question,
}

impl Entity {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Resume => "resume",
            Self::Application => "job application",
            Self::Question => "question",
        }
    }
}

/// Why a guarded write changed nothing, read in the same transaction after it (the decision
/// was the statement's; this only explains it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A user's change found the application at another version than the one read.
    #[error("the application changed meanwhile; reload and retry")]
    Changed,
    /// The application left the status the change was made from.
    #[error("the application is {0} now")]
    StatusNow(ApplicationStatus),
    /// The `lease_id` presented is not the claim's (released, or superseded).
    #[error(
        "this lease_id does not hold the claim (it was released, or superseded by a newer claim)"
    )]
    LeaseNotHeld,
    /// The claim's lease has run out.
    #[error("the lease has lapsed; claim the application again")]
    LeaseLapsed,
    /// Submitting, but a question is unanswered or awaiting review.
    #[error("the application is no longer ready: a question is unanswered or awaiting review")]
    NotReady,
    /// Answers cannot change in this status.
    #[error("answers are frozen once an application is {0}")]
    AnswersFrozen(ApplicationStatus),
    /// A bot's answer while the job-applier holds a live claim.
    #[error("the application is being submitted: bots cannot change answers during a claim")]
    ClaimLive,
    /// A bot's answer to a question the candidate answered.
    #[error("the candidate answered this question; it is not overwritten")]
    AnsweredByUser,
    /// A bot's answer to a question the candidate put on hold for themselves.
    #[error("the candidate will answer this question themselves")]
    HeldForUser,
    /// The question changed between the read and the write.
    #[error("the question changed meanwhile; reload and retry")]
    QuestionChanged,
    /// The user keeps as many resumes as `RESUME_MAX_FILES` allows (or more, if it was lowered).
    #[error("{}", resume_count(*count, *max))]
    ResumeCount {
        /// The user's resumes.
        count: i64,
        /// The limit.
        max: i64,
    },
    /// The upload does not fit the user's `RESUME_QUOTA_BYTES`.
    #[error(
        "the user's resumes may take {quota} bytes in all and {used} are used: this one does not fit; delete one first"
    )]
    ResumeQuota {
        /// The quota, bytes.
        quota: i64,
        /// What the user's resumes take, bytes.
        used: i64,
    },
    /// Deleting a resume an application refers to: it stays, as that application's history.
    #[error("the resume is used by an application")]
    ResumeInUse,
}

fn resume_count(count: i64, max: i64) -> String {
    if count == max {
        format!("the user already has {count} resumes (the limit): delete one first")
    } else {
        format!("the user already has {count} resumes (the limit is {max}): delete some first")
    }
}

/// The statuses in which answers may still change (and questions count as open).
const ANSWERABLE: [ApplicationStatus; 2] = [ApplicationStatus::Saved, ApplicationStatus::Queued];

/// The id in column `column` of `row`, of its kind: one the database holds that is not is
/// [`StoreError::Corrupt`].
fn id_of<T: TryFrom<String, Error = IdError>>(row: &AnyRow, column: &str) -> Result<T> {
    use sqlx::Row;
    let raw: String = row.try_get(column)?;
    T::try_from(raw).map_err(|e| StoreError::Corrupt(format!("{column} in the database: {e}")))
}

fn status_of(code: i64) -> Result<ApplicationStatus> {
    ApplicationStatus::from_code(code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown status code {code} in the database")))
}

/// A page from the `limit + 1` rows a list fetched: the extra row is not listed, it only tells
/// that there is a next page, whose cursor is the last listed item's `id`.
fn page<T>(
    rows: &[AnyRow],
    limit: i64,
    item: impl FnMut(&AnyRow) -> Result<T>,
    id: impl Fn(&T) -> &str,
) -> Result<Page<T>> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let items: Vec<T> = rows.iter().take(limit).map(item).collect::<Result<_>>()?;
    let next_cursor = match items.last() {
        Some(last) if rows.len() > limit => Some(id(last).to_owned()),
        _ => None,
    };
    Ok(Page { items, next_cursor })
}

impl Db {
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

    /// Locks the user's row for the rest of `tx` (Postgres; on SQLite as above), so a rule over
    /// all of the user's rows (the resume quota) read inside `tx` still holds when `tx` writes.
    async fn lock_user(&self, tx: &mut Transaction<'_, Any>, id: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These reasons are the 409 details clients see: changing one changes the API.
    #[test]
    fn conflict_reasons_are_the_documented_details() {
        use ApplicationStatus::Submitted;
        let cases = [
            (
                Conflict::Changed,
                "the application changed meanwhile; reload and retry",
            ),
            (
                Conflict::StatusNow(Submitted),
                "the application is submitted now",
            ),
            (
                Conflict::LeaseNotHeld,
                "this lease_id does not hold the claim (it was released, or superseded by a newer claim)",
            ),
            (
                Conflict::LeaseLapsed,
                "the lease has lapsed; claim the application again",
            ),
            (
                Conflict::NotReady,
                "the application is no longer ready: a question is unanswered or awaiting review",
            ),
            (
                Conflict::AnswersFrozen(Submitted),
                "answers are frozen once an application is submitted",
            ),
            (
                Conflict::ClaimLive,
                "the application is being submitted: bots cannot change answers during a claim",
            ),
            (
                Conflict::AnsweredByUser,
                "the candidate answered this question; it is not overwritten",
            ),
            (
                Conflict::HeldForUser,
                "the candidate will answer this question themselves",
            ),
            (
                Conflict::QuestionChanged,
                "the question changed meanwhile; reload and retry",
            ),
            (
                Conflict::ResumeCount { count: 20, max: 20 },
                "the user already has 20 resumes (the limit): delete one first",
            ),
            (
                Conflict::ResumeCount { count: 25, max: 20 },
                "the user already has 25 resumes (the limit is 20): delete some first",
            ),
            (
                Conflict::ResumeQuota {
                    quota: 1000,
                    used: 900,
                },
                "the user's resumes may take 1000 bytes in all and 900 are used: this one does not fit; delete one first",
            ),
            (
                Conflict::ResumeInUse,
                "the resume is used by an application",
            ),
        ];
        for (conflict, detail) in cases {
            assert_eq!(conflict.to_string(), detail);
        }
        assert_eq!(
            StoreError::NotFound(Entity::Application).to_string(),
            "job application not found"
        );
    }
}
