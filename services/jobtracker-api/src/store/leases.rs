//! The job-applier's claims: a lease on one ready application, fenced by a `lease_id` that every
//! later write of the claimant presents.

use jobtracker_types::{ApplicationId, ApplicationStatus, LeaseId};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::events::{NewEvent, commit_with_event};
use super::{Conflict, Entity, Result, StoreError, status_of};
use crate::db::{Backend, Db, new_id};
use crate::domain::LeaseLength;

/// A claim handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The application leased.
    pub application_id: ApplicationId,
    /// The fencing token the claimant's later writes present.
    pub lease_id: LeaseId,
}

/// What the claimant does with its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseChange {
    /// Extends a live lease to this length from now.
    Renew(LeaseLength),
    /// Gives the claim back (a lapsed one that nobody took over too).
    Release,
}

/// Ready for the applier: queued (`$2`), not leased or the lease lapsed by now (`$1`), every
/// question answered and none awaiting review. `a` is the application.
const READY: &str = "a.status = $2 AND (a.claimed_by IS NULL OR a.lease_expires_at IS NULL OR a.lease_expires_at <= $1) \
     AND NOT EXISTS (SELECT 1 FROM questions q WHERE q.application_id = a.id AND (q.answer IS NULL OR q.needs_review <> 0))";

impl Db {
    /// Leases the oldest ready application (queued, every question answered and none awaiting
    /// review, not leased or lease lapsed) to `actor` with a new `lease_id`. The candidate is
    /// locked first (Postgres: `FOR UPDATE SKIP LOCKED`, so concurrent claimers pass over it;
    /// SQLite: the write lock), then the lease is written only if it is still ready then.
    #[tracing::instrument(target = "spans", level = "debug", name = "store.claim", skip_all)]
    pub async fn claim(&self, actor: &str, lease: LeaseLength) -> Result<Option<Claim>> {
        let lease_ms = lease.millis();
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let pick = format!(
            "SELECT a.id FROM job_applications a WHERE {READY} ORDER BY a.id LIMIT 1{lock}"
        );
        let take = format!(
            "UPDATE job_applications SET claimed_by = $3, lease_id = $4, lease_expires_at = $5, attempts = attempts + 1, updated_at = $1 \
             WHERE id = $6 AND id IN (SELECT a.id FROM job_applications a WHERE a.id = $6 AND {READY})"
        );
        let queued = ApplicationStatus::Queued.code();
        // A candidate can stop being ready between the pick and the take only on Postgres (the
        // pick reads a snapshot); then the next pick passes over it.
        for _ in 0..5 {
            let mut tx = self.begin_write().await?;
            let now = self.now_ms();
            let Some(row) = sqlx::query(AssertSqlSafe(pick.clone()))
                .bind(now)
                .bind(queued)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(None);
            };
            let id: String = row.try_get("id")?;
            let lease_id = new_id("lease");
            let taken = sqlx::query(AssertSqlSafe(take.clone()))
                .bind(now)
                .bind(queued)
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
            commit_with_event(self, tx, &id, event, now).await?;
            let corrupt = |e: jobtracker_types::IdError| StoreError::Corrupt(e.to_string());
            return Ok(Some(Claim {
                application_id: ApplicationId::try_from(id).map_err(corrupt)?,
                lease_id: LeaseId::try_from(lease_id).map_err(corrupt)?,
            }));
        }
        Ok(None)
    }

    /// Renews or releases the claim `lease_id` of `actor` on application `id`. Renewal needs a
    /// live lease; release only that `lease_id` still be the claim (a lapsed one that nobody
    /// took over may be given back). Otherwise [`StoreError::Conflict`].
    #[tracing::instrument(target = "spans", level = "debug", name = "store.set_lease", skip_all)]
    pub async fn set_lease(
        &self,
        id: &ApplicationId,
        actor: &str,
        lease_id: &LeaseId,
        change: LeaseChange,
    ) -> Result<()> {
        let (id, lease_id) = (id.as_str(), lease_id.as_str());
        let mut tx = self.begin_write().await?;
        self.lock_application(&mut tx, id).await?;
        let now = self.now_ms();
        let update = match change {
            LeaseChange::Renew(_) => sqlx::query(
                "UPDATE job_applications SET lease_expires_at = $6, updated_at = $1 \
                 WHERE id = $2 AND status = $3 AND claimed_by = $4 AND lease_id = $5 AND lease_expires_at > $1",
            ),
            LeaseChange::Release => sqlx::query(
                "UPDATE job_applications SET claimed_by = NULL, lease_id = NULL, lease_expires_at = NULL, updated_at = $1 \
                 WHERE id = $2 AND status = $3 AND claimed_by = $4 AND lease_id = $5",
            ),
        }
        .bind(now)
        .bind(id)
        .bind(ApplicationStatus::Queued.code())
        .bind(actor)
        .bind(lease_id);
        let update = match change {
            LeaseChange::Renew(lease) => update.bind(now + lease.millis()),
            LeaseChange::Release => update,
        };
        let changed = update.execute(&mut *tx).await?.rows_affected();
        if changed == 0 {
            let e = self
                .claim_conflict(&mut tx, id, actor, lease_id, now)
                .await?;
            tx.rollback().await?;
            return Err(e);
        }
        let (action, detail) = match change {
            LeaseChange::Renew(lease) => {
                let seconds = lease.millis() / 1000;
                ("lease_renewed", Some(format!("lease {seconds}s")))
            }
            LeaseChange::Release => ("lease_released", None),
        };
        commit_with_event(self, tx, id, NewEvent::note(actor, action, detail), now).await
    }

    /// Why a write guarded by the claim `lease_id` changed nothing, read inside the same
    /// transaction: the error to answer with.
    pub(super) async fn claim_conflict(
        &self,
        tx: &mut Transaction<'_, Any>,
        id: &str,
        actor: &str,
        lease_id: &str,
        now: i64,
    ) -> Result<StoreError> {
        let row = sqlx::query(
            "SELECT status, claimed_by, lease_id, lease_expires_at FROM job_applications WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok(StoreError::NotFound(Entity::Application));
        };
        let status = status_of(row.try_get("status")?)?;
        let holder: Option<String> = row.try_get("claimed_by")?;
        let current: Option<String> = row.try_get("lease_id")?;
        let expires: Option<i64> = row.try_get("lease_expires_at")?;
        let why = if status != ApplicationStatus::Queued {
            Conflict::StatusNow(status)
        } else if holder.as_deref() != Some(actor) || current.as_deref() != Some(lease_id) {
            Conflict::LeaseNotHeld
        } else if expires.is_none_or(|t| t <= now) {
            Conflict::LeaseLapsed
        } else {
            Conflict::NotReady
        };
        Ok(StoreError::Conflict(why))
    }
}
