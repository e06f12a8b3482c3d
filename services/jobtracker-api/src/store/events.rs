//! The audit trail: every change writes its event in its own transaction.

use jobtracker_types::{ApplicationId, ApplicationStatus, Event, EventId, Page};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Result, id_of, page, status_of};
use crate::db::{Db, new_id, rfc3339};
use crate::domain::PageSize;

/// An event to write.
#[derive(Debug)]
pub(super) struct NewEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub from: Option<ApplicationStatus>,
    pub to: Option<ApplicationStatus>,
    pub detail: Option<String>,
}

impl<'a> NewEvent<'a> {
    /// An event that changes no status (claims, leases, answers).
    pub fn note(actor: &'a str, action: &'a str, detail: Option<String>) -> Self {
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
/// misses a change, nor holds one that did not happen. A status change is then counted
/// ([`Transitions`](crate::metrics::Transitions)).
pub(super) async fn commit_with_event(
    db: &Db,
    mut tx: Transaction<'_, Any>,
    application_id: &str,
    event: NewEvent<'_>,
    at: i64,
) -> Result<()> {
    let (from, to) = (event.from, event.to);
    sqlx::query("INSERT INTO events (id, application_id, actor, action, from_status, to_status, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(new_id("evt"))
        .bind(application_id)
        .bind(event.actor)
        .bind(event.action)
        .bind(event.from.map(ApplicationStatus::code))
        .bind(event.to.map(ApplicationStatus::code))
        .bind(event.detail)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if let Some(to) = to {
        db.transitions.record(from, to);
    }
    Ok(())
}

fn event_from(row: &AnyRow) -> Result<Event> {
    let status = |c: &str| -> Result<Option<ApplicationStatus>> {
        row.try_get::<Option<i64>, _>(c)?.map(status_of).transpose()
    };
    Ok(Event {
        id: id_of(row, "id")?,
        application_id: id_of(row, "application_id")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        from_status: status("from_status")?,
        to_status: status("to_status")?,
        detail: row.try_get("detail")?,
        at: rfc3339(row.try_get("at")?),
    })
}

impl Db {
    /// The audit trail of an application, oldest first.
    #[tracing::instrument(
        target = "spans",
        level = "debug",
        name = "store.list_events",
        skip_all
    )]
    pub async fn list_events(
        &self,
        application_id: &ApplicationId,
        cursor: Option<&EventId>,
        limit: PageSize,
    ) -> Result<Page<Event>> {
        let limit = limit.get();
        let rows = sqlx::query("SELECT * FROM events WHERE application_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3")
            .bind(application_id.as_str())
            .bind(cursor.map(EventId::as_str))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        page(&rows, limit, event_from, |e: &Event| e.id.as_str())
    }
}
