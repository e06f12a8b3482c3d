//! Resume files: metadata for lists, the bytes only for downloads.

use jobtracker_types::{Page, Resume};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Entity, Result, StoreError, page};
use crate::db::{Db, new_id, rfc3339};

/// A resume to store; the caller has checked the content against `content_type`.
#[derive(Debug)]
pub struct NewResume<'a> {
    /// The owner.
    pub user_id: &'a str,
    /// The file name as uploaded.
    pub file_name: &'a str,
    /// The media type the content was recognised as.
    pub content_type: &'a str,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: &'a str,
    /// The file.
    pub content: Vec<u8>,
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

impl Db {
    /// Stores a resume under a new id.
    pub async fn insert_resume(&self, new: NewResume<'_>) -> Result<Resume> {
        let id = new_id("res");
        let size = new.content.len() as i64;
        sqlx::query("INSERT INTO resumes (id, user_id, file_name, content_type, size, sha256, content, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&id)
            .bind(new.user_id)
            .bind(new.file_name)
            .bind(new.content_type)
            .bind(size)
            .bind(new.sha256)
            .bind(new.content)
            .bind(self.now_ms())
            .execute(&self.pool)
            .await?;
        self.resume(&id)
            .await?
            .ok_or(StoreError::NotFound(Entity::Resume))
    }

    /// A resume's metadata.
    pub async fn resume(&self, id: &str) -> Result<Option<Resume>> {
        let row = sqlx::query("SELECT id, user_id, file_name, content_type, size, sha256, created_at FROM resumes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(resume_from).transpose()
    }

    /// A resume's metadata and its bytes.
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

    /// A user's resumes (metadata), oldest first.
    pub async fn list_resumes(
        &self,
        user_id: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Resume>> {
        let rows = sqlx::query(
            "SELECT id, user_id, file_name, content_type, size, sha256, created_at FROM resumes \
             WHERE user_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(user_id)
        .bind(cursor)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        page(&rows, limit, resume_from, |r: &Resume| &r.id)
    }
}
