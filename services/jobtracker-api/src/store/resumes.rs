//! Resume files: metadata for lists, the bytes only for downloads.

use std::num::{NonZeroU32, NonZeroU64};

use jobtracker_types::{Page, Resume, ResumeId, UserId};
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{Conflict, Entity, Result, StoreError, id_of, page};
use crate::db::{Backend, Db, new_id, rfc3339};
use crate::domain::{FileName, PageSize};

/// A resume to store; the caller has checked the content against `content_type`.
#[derive(Debug)]
pub struct NewResume<'a> {
    /// The owner.
    pub user_id: &'a UserId,
    /// The file name as uploaded.
    pub file_name: &'a FileName,
    /// The media type the content was recognised as.
    pub content_type: &'a str,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: &'a str,
    /// The file.
    pub content: Vec<u8>,
}

fn resume_from(row: &AnyRow) -> Result<Resume> {
    Ok(Resume {
        id: id_of(row, "id")?,
        user_id: id_of(row, "user_id")?,
        file_name: row.try_get("file_name")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// How many resumes, and how many bytes of them, one user may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeLimits {
    /// Most resumes per user.
    pub max_files: NonZeroU32,
    /// Most bytes of resumes per user.
    pub quota_bytes: NonZeroU64,
}

impl ResumeLimits {
    fn max_files(self) -> i64 {
        i64::from(self.max_files.get())
    }

    fn quota_bytes(self) -> i64 {
        i64::try_from(self.quota_bytes.get()).unwrap_or(i64::MAX)
    }

    /// Why a user with `count` resumes taking `used` bytes may not add one of `size` bytes: the
    /// conditions of [`Db::insert_resume`]'s statement, for explaining its refusal.
    fn refusal(self, count: i64, used: i64, size: i64) -> Option<Conflict> {
        if count >= self.max_files() {
            Some(Conflict::ResumeCount {
                count,
                max: self.max_files(),
            })
        } else if used.saturating_add(size) > self.quota_bytes() {
            Some(Conflict::ResumeQuota {
                quota: self.quota_bytes(),
                used,
            })
        } else {
            None
        }
    }
}

/// A user's resumes and the bytes they take.
async fn usage<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS files, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes \
         FROM resumes WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(ex)
    .await?;
    Ok((row.try_get("files")?, row.try_get("bytes")?))
}

impl Db {
    /// A cheap look before an upload's body is read: `Err(Conflict)` if the user has no room for
    /// a resume of `size` bytes. Only [`insert_resume`](Self::insert_resume) decides.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.check_resume_room",
        skip_all
    )]
    pub async fn check_resume_room(
        &self,
        user_id: &UserId,
        limits: ResumeLimits,
        size: u64,
    ) -> Result<()> {
        let (count, used) = usage(&self.pool, user_id.as_str()).await?;
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        match limits.refusal(count, used, size) {
            Some(why) => Err(StoreError::Conflict(why)),
            None => Ok(()),
        }
    }

    /// Stores a resume under a new id if the user's resumes stay within `limits`: the rule is a
    /// condition of the `INSERT`, run with the user's row locked (the write lock on SQLite), so
    /// concurrent uploads cannot both take the last room. Refused: [`Conflict::ResumeCount`] or
    /// [`Conflict::ResumeQuota`], nothing written.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.insert_resume",
        skip_all
    )]
    pub async fn insert_resume(&self, new: NewResume<'_>, limits: ResumeLimits) -> Result<Resume> {
        let id = new_id("res");
        let size = i64::try_from(new.content.len()).unwrap_or(i64::MAX);
        let mut tx = self.begin_write().await?;
        self.lock_user(&mut tx, new.user_id.as_str()).await?;
        let inserted = sqlx::query(
            "INSERT INTO resumes (id, user_id, file_name, content_type, size, sha256, content, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
             WHERE (SELECT COUNT(*) FROM resumes WHERE user_id = $2) < $9 \
             AND (SELECT COALESCE(SUM(size), 0) FROM resumes WHERE user_id = $2) + $5 <= $10",
        )
        .bind(&id)
        .bind(new.user_id.as_str())
        .bind(&**new.file_name)
        .bind(new.content_type)
        .bind(size)
        .bind(new.sha256)
        .bind(new.content)
        .bind(self.now_ms())
        .bind(limits.max_files())
        .bind(limits.quota_bytes())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let (count, used) = usage(&mut *tx, new.user_id.as_str()).await?;
            let why = limits
                .refusal(count, used, size)
                .unwrap_or(Conflict::ResumeQuota {
                    quota: limits.quota_bytes(),
                    used,
                });
            return Err(StoreError::Conflict(why));
        }
        tx.commit().await?;
        let id = ResumeId::try_from(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.resume(&id)
            .await?
            .ok_or(StoreError::NotFound(Entity::Resume))
    }

    /// Deletes `user_id`'s resume `id`, unless an application refers to it (applications keep
    /// their resume as history): [`Conflict::ResumeInUse`]. Another user's resume, or none:
    /// [`StoreError::NotFound`].
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.delete_resume",
        skip_all
    )]
    pub async fn delete_resume(&self, user_id: &UserId, id: &ResumeId) -> Result<()> {
        let (user_id, id) = (user_id.as_str(), id.as_str());
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // An application being created with this resume holds the row (its foreign key
            // check) until it commits; waiting for it here lets the statement below see it.
            sqlx::query("SELECT id FROM resumes WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query(
            "DELETE FROM resumes WHERE id = $1 AND user_id = $2 \
             AND NOT EXISTS (SELECT 1 FROM job_applications WHERE resume_id = $1)",
        )
        .bind(id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            let owner: Option<String> =
                sqlx::query_scalar("SELECT user_id FROM resumes WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Err(match owner {
                Some(owner) if owner == user_id => StoreError::Conflict(Conflict::ResumeInUse),
                _ => StoreError::NotFound(Entity::Resume),
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// A resume's metadata.
    #[tracing::instrument(target = "spans", level = "debug", name = "store.resume", skip_all)]
    pub async fn resume(&self, id: &ResumeId) -> Result<Option<Resume>> {
        let id = id.as_str();
        let row = sqlx::query("SELECT id, user_id, file_name, content_type, size, sha256, created_at FROM resumes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(resume_from).transpose()
    }

    /// A resume's metadata and its bytes.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.resume_content",
        skip_all
    )]
    pub async fn resume_content(&self, id: &ResumeId) -> Result<Option<(Resume, Vec<u8>)>> {
        let id = id.as_str();
        let row = sqlx::query("SELECT id, user_id, file_name, content_type, size, sha256, created_at, content FROM resumes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some((resume_from(&r)?, r.try_get("content")?))),
            None => Ok(None),
        }
    }

    /// A user's resumes (metadata), oldest first.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.list_resumes",
        skip_all
    )]
    pub async fn list_resumes(
        &self,
        user_id: &UserId,
        cursor: Option<&ResumeId>,
        limit: PageSize,
    ) -> Result<Page<Resume>> {
        let limit = limit.get();
        let rows = sqlx::query(
            "SELECT id, user_id, file_name, content_type, size, sha256, created_at FROM resumes \
             WHERE user_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(user_id.as_str())
        .bind(cursor.map(ResumeId::as_str))
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        page(&rows, limit, resume_from, |r: &Resume| r.id.as_str())
    }
}
