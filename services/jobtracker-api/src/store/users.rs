//! Candidate profiles, keyed by the Clerk user id.

use jobtracker_types::{User, UserId, UserProfileInput};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Entity, Result, StoreError};
use crate::db::{Db, rfc3339};
use crate::domain::Profile;

/// Lists (skills, links) are stored as JSON text.
fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
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
        id: super::id_of(row, "id")?,
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

impl Db {
    /// Creates or replaces the profile of user `id`.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.upsert_user",
        skip_all
    )]
    pub async fn upsert_user(&self, id: &UserId, profile: &Profile) -> Result<User> {
        let p = profile.fields();
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
        .bind(id.as_str())
        .bind(&p.full_name)
        .bind(&p.email)
        .bind(&p.phone)
        .bind(&p.location)
        .bind(&p.headline)
        .bind(p.years_experience.map(i64::from))
        .bind(json_list(&p.skills))
        .bind(&p.work_authorization)
        .bind(p.requires_sponsorship.map(i64::from))
        .bind(&p.salary_expectation)
        .bind(p.notice_period_days.map(i64::from))
        .bind(p.willing_to_relocate.map(i64::from))
        .bind(&p.remote_preference)
        .bind(json_list(&p.links))
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.user(id)
            .await?
            .ok_or(StoreError::NotFound(Entity::User))
    }

    /// The profile of user `id`.
    #[tracing::instrument(target = "spans", level = "debug", name = "store.user", skip_all)]
    pub async fn user(&self, id: &UserId) -> Result<Option<User>> {
        let id = id.as_str();
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }
}
