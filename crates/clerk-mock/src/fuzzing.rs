//! The mock's request handling without HTTP, so a coverage-guided fuzzer can drive its parsing
//! (paths, query strings, bodies, keys) at millions of requests a minute. Behind the `fuzzing`
//! feature: nothing else needs it.

use serde_json::Value;

use crate::SigningKey;
use crate::error::SetupError;
use crate::seed::Seed;
use crate::state::State;

/// One mock instance's state, answering raw requests.
#[derive(Debug)]
pub struct Harness {
    state: State,
}

impl Harness {
    /// A fresh instance seeded with `seed`, signing with `key`.
    pub fn new(seed: &Seed, key: SigningKey) -> Result<Self, SetupError> {
        Ok(Self {
            state: State::from_seed(seed, key)?,
        })
    }

    /// The instance secret key (`sk_…`).
    pub fn instance_secret_key(&self) -> &str {
        &self.state.instance_secret_key
    }

    /// The secret keys of the seeded machines, in seed order.
    pub fn machine_secret_keys(&self) -> Vec<String> {
        self.state
            .machines
            .iter()
            .map(|m| m.secret_key.clone())
            .collect()
    }

    /// Handles `method target` (`target` = path and optional `?query`, as on a request line).
    /// Returns the status and JSON body the mock would send, or `None` when the target is not
    /// a URL path an HTTP server would route.
    pub fn handle(
        &mut self,
        method: &str,
        target: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Option<(u16, Value)> {
        let (path, query) = crate::respond::split_target(target)?;
        let (_, reply) = self.state.handle(method, &path, &query, headers, body);
        Some((reply.status, reply.body))
    }
}
