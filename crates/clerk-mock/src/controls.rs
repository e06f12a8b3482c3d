//! What tests turn on a running mock: its clock, its stored tokens, call counters, latency and
//! faults.

use std::time::Duration;

use crate::state::FaultRule;
use crate::{ClerkMock, Endpoint, Fault};

impl ClerkMock {
    /// Clerk's current time on the mock's clock, Unix ms.
    pub fn now_ms(&self) -> i64 {
        self.lock().now_ms()
    }

    /// Moves the mock's clock forward (tokens expire, `expired` flips, JWT `iat`s move).
    pub fn advance_clock(&self, by: Duration) {
        self.lock().clock_offset_ms += by.as_millis() as i64;
    }

    /// Revokes a token by id, as `POST /m2m_tokens/{id}/revoke` would. Returns whether it existed.
    pub fn revoke_token(&self, token_id: &str, reason: Option<&str>) -> bool {
        let mut s = self.lock();
        let now = s.now_ms();
        match s.tokens.by_id_mut(token_id) {
            Some(t) => {
                t.revoked = true;
                t.revocation_reason = reason.map(str::to_owned);
                t.updated_at = now;
                true
            }
            None => false,
        }
    }

    /// Makes a token expire now. Returns whether it existed.
    pub fn expire_token(&self, token_id: &str) -> bool {
        let mut s = self.lock();
        let now = s.now_ms();
        match s.tokens.by_id_mut(token_id) {
            Some(t) => {
                t.expiration = Some(now);
                true
            }
            None => false,
        }
    }

    /// Ids of the stored (opaque) tokens of `subject`, oldest first.
    pub fn token_ids(&self, subject: &str) -> Vec<String> {
        self.lock()
            .tokens
            .of_subject(subject)
            .map(|t| t.id.clone())
            .collect()
    }

    /// The token id of an opaque bearer value, if stored.
    pub fn token_id_of(&self, bearer: &str) -> Option<String> {
        self.lock()
            .tokens
            .by_secret_mut(bearer)
            .map(|t| t.id.clone())
    }

    /// Requests received by `endpoint` so far (including failed and faulted ones).
    pub fn calls(&self, endpoint: Endpoint) -> u64 {
        self.lock().calls.get(&endpoint).copied().unwrap_or(0)
    }

    /// Resets every call counter.
    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    pub(crate) fn undo_count(&self, endpoint: Endpoint) {
        if let Some(c) = self.lock().calls.get_mut(&endpoint) {
            *c = c.saturating_sub(1);
        }
    }

    /// Adds latency to every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// The next `times` requests to `endpoint` (any endpoint when `None`) get `fault`. Rules
    /// queue in order.
    pub fn inject(&self, endpoint: Option<Endpoint>, fault: Fault, times: u32) {
        self.lock().faults.push(FaultRule {
            endpoint,
            fault,
            remaining: times,
        });
    }

    /// Removes all pending faults.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// While set, every route but `/healthz` answers this status (an outage window).
    pub fn set_outage(&self, status: Option<u16>) {
        self.lock().outage = status;
    }
}
