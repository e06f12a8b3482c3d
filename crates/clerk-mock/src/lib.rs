//! A stateful, faithful fake of Clerk's Backend API, built on [wiremock].
//!
//! ```no_run
//! # async fn demo() {
//! let mock = clerk_mock::ClerkMock::start_demo().await;
//! let base = mock.api_url(); // "http://127.0.0.1:PORT/v1", like CLERK_API_BASE_URL
//! let bot = mock.machine_by_name("JobApplier.Bot").unwrap();
//! // POST {base}/m2m_tokens with "Authorization: Bearer {bot.secret_key}" mints a token.
//! # }
//! ```
//!
//! It serves the M2M token routes (with and without `/v1`), JWKS (`/v1/jwks` and the public
//! `/.well-known/jwks.json`), machines, users, sessions and session tokens, and testing tokens,
//! with Clerk's status codes, error bodies, key-type rules and scope checks. Tests control it
//! through call counters, injected latency and faults, an adjustable clock, and helpers that sign
//! arbitrary JWTs. See `docs/clerk-mock.md` for what is faithful and what is simplified.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod controls;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod ids;
pub mod jwt;
mod respond;
mod seed;
mod state;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer};

pub use error::SetupError;
pub use jwt::{CAT_M2M, CAT_SESSION, CAT_TEMPLATE, SigningKey, sign_hs256, unsigned};
pub use respond::Answer;
pub use seed::{
    Behaviour, DEFAULT_SEED_JSON, InstanceSeed, MachineSeed, NullLifetime, RevokedVerify, Seed,
    UserSeed,
};
pub use state::{Endpoint, Fault};

use respond::{Handler, Retained};
use state::State;

/// A machine as the mock knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineInfo {
    /// `mch_…`
    pub id: String,
    /// Display name.
    pub name: String,
    /// Current secret key, `ak_…`.
    pub secret_key: String,
    /// Ids of the machines it may call.
    pub scoped_machines: Vec<String>,
    /// Default token lifetime, seconds.
    pub default_token_ttl: u64,
}

/// A user as the mock knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// `user_…`
    pub id: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    pub email: String,
}

/// The effective seed, as `clerk-mock --print-seed` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct EffectiveSeed {
    /// `ins_…`
    pub instance_id: String,
    /// `sk_test_…`
    pub instance_secret_key: String,
    /// `iss` of every JWT.
    pub issuer: String,
    /// `azp` of session tokens.
    pub authorized_party: String,
    /// PEM public key (`CLERK_JWT_KEY`).
    pub jwt_public_key_pem: String,
    /// Machines.
    pub machines: Vec<MachineInfo>,
    /// Users.
    pub users: Vec<UserInfo>,
}

/// A running mock. Dropping it stops the server.
pub struct ClerkMock {
    /// `Some` until dropped (see the `Drop` impl).
    server: Option<MockServer>,
    state: Arc<Mutex<State>>,
    /// What wiremock keeps of the requests it served, until [`ClerkMock::compact`].
    retained: Arc<Retained>,
}

impl fmt::Debug for ClerkMock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClerkMock")
            .field("uri", &self.server().uri())
            .finish_non_exhaustive()
    }
}

impl Drop for ClerkMock {
    /// wiremock's own `Drop` verifies its expectations with `futures::executor::block_on` over
    /// a tokio lock. Run inside a tokio task whose cooperative budget is spent (a test that has
    /// just awaited a thousand `JoinHandle`s), that lock answers "pending, wake me" forever and
    /// the `block_on` spins at full CPU: a CI run hung there for ten minutes. A thread of its
    /// own has no budget, so the server is dropped on one.
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = std::thread::spawn(move || drop(server)).join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClerkMock {
    /// A mock with an empty instance (no machines, no users).
    pub async fn start() -> Self {
        Self::start_with(Seed::default()).await
    }

    /// A mock with the repository's demo seed ([`Seed::demo`]).
    pub async fn start_demo() -> Self {
        Self::start_with(Seed::demo()).await
    }

    /// A mock seeded with `seed`, on a random local port.
    ///
    /// # Panics
    /// If the seed is invalid (tests want to fail loudly); use [`ClerkMock::try_start`] otherwise.
    pub async fn start_with(seed: Seed) -> Self {
        match Self::try_start(seed, None, None).await {
            Ok(mock) => mock,
            Err(e) => panic!("clerk-mock: {e}"),
        }
    }

    /// A mock seeded with `seed`, on `listener` if given, signing with `key` if given.
    pub async fn try_start(
        seed: Seed,
        listener: Option<std::net::TcpListener>,
        key: Option<SigningKey>,
    ) -> Result<Self, SetupError> {
        let key = match (key, &seed.instance.signing_key_pem) {
            (Some(k), _) => k,
            (None, Some(pem)) => SigningKey::from_pkcs8_pem(pem)?,
            (None, None) => SigningKey::shared(),
        };
        let state = Arc::new(Mutex::new(State::from_seed(&seed, key)?));
        // No request recording: a long-running mock would otherwise keep every request it ever
        // served. Tests count calls with `calls(Endpoint)`.
        let builder = MockServer::builder().disable_request_recording();
        let server = match listener {
            Some(l) => builder.listener(l).start().await,
            None => builder.start().await,
        };
        let mock = Self {
            server: Some(server),
            state,
            retained: Arc::default(),
        };
        mock.mount().await;
        Ok(mock)
    }

    fn server(&self) -> &MockServer {
        self.server
            .as_ref()
            .expect("the server lives as long as the mock")
    }

    async fn mount(&self) {
        Mock::given(wiremock::matchers::any())
            .respond_with(Handler {
                state: self.state.clone(),
                retained: self.retained.clone(),
            })
            .mount(self.server())
            .await;
    }

    /// Requests served since the mock started.
    pub fn total_requests(&self) -> u64 {
        self.lock().calls.values().sum()
    }

    /// Frees the copy of every request that wiremock keeps per mounted mock (even with
    /// recording disabled) by resetting the server and mounting the handler again. State and
    /// counters are kept. A request arriving in the microseconds between the two steps gets
    /// wiremock's bare 404, so long-running servers that use wiremock's server call this only
    /// now and then ([`compact_if_over`](Self::compact_if_over)); tests never need it, and
    /// requests answered through [`respond`](Self::respond) leave nothing to free.
    pub async fn compact(&self) {
        // Cleared first: a request counted in between is freed by the reset, so the count errs
        // high, never low.
        self.retained.clear();
        self.server().reset().await;
        self.mount().await;
    }

    /// [`compact`](Self::compact)s when wiremock kept more than `requests` since the last time
    /// ([`retained_requests`](Self::retained_requests)). Returns whether it did.
    pub async fn compact_if_over(&self, requests: u64) -> bool {
        if self.retained.requests() > requests {
            self.compact().await;
            true
        } else {
            false
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `http://127.0.0.1:PORT`, what Clerk's JS SDK calls `apiUrl`.
    pub fn uri(&self) -> String {
        self.server().uri()
    }

    /// `http://127.0.0.1:PORT/v1`, the value for `CLERK_API_BASE_URL`.
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.server().uri())
    }

    /// The public JWKS URL (`CLERK_JWKS_URL`).
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.server().uri())
    }

    /// The instance id (`ins_…`), also every JWT's `kid`.
    pub fn instance_id(&self) -> String {
        self.lock().instance_id.clone()
    }

    /// The instance secret key (`sk_test_…`).
    pub fn instance_secret_key(&self) -> String {
        self.lock().instance_secret_key.clone()
    }

    /// The `iss` of every JWT the mock signs.
    pub fn issuer(&self) -> String {
        self.lock().issuer.clone()
    }

    /// The `azp` of session tokens.
    pub fn authorized_party(&self) -> String {
        self.lock().authorized_party.clone()
    }

    /// The signing key's public half as PEM (`CLERK_JWT_KEY`).
    pub fn public_key_pem(&self) -> String {
        self.lock().key.public_key_pem()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        self.lock().jwks()
    }

    /// Serves `keys` (JWK objects) on both JWKS routes from now on, e.g. to rotate the instance
    /// key out (`[]` or another key's [`SigningKey::jwk`]) or to publish keys with odd `use`,
    /// `key_ops` or `alg`; `None` goes back to the instance key alone. Tokens are still signed
    /// with the instance key.
    pub fn set_jwks_keys(&self, keys: Option<Vec<Value>>) {
        self.lock().jwks_keys = keys;
    }

    /// The instance key's JWK, as the JWKS routes serve it by default.
    pub fn instance_jwk(&self) -> Value {
        let s = self.lock();
        s.key.jwk(&s.instance_id)
    }

    /// Every machine.
    pub fn machines(&self) -> Vec<MachineInfo> {
        let s = self.lock();
        s.machines
            .iter()
            .map(|m| MachineInfo {
                id: m.id.clone(),
                name: m.name.clone(),
                secret_key: m.secret_key.clone(),
                scoped_machines: m.scoped.iter().map(|(id, _)| id.clone()).collect(),
                default_token_ttl: m.default_token_ttl,
            })
            .collect()
    }

    /// The machine named `name`.
    pub fn machine_by_name(&self, name: &str) -> Option<MachineInfo> {
        self.machines().into_iter().find(|m| m.name == name)
    }

    /// The machine with id `id`.
    pub fn machine(&self, id: &str) -> Option<MachineInfo> {
        self.machines().into_iter().find(|m| m.id == id)
    }

    /// Creates a machine allowed to call `scoped_to` (ids), as `POST /v1/machines` would.
    pub fn create_machine(&self, name: &str, scoped_to: &[&str]) -> MachineInfo {
        let body = json!({ "name": name, "scoped_machines": scoped_to }).to_string();
        let key = self.instance_secret_key();
        let (_, reply) =
            self.lock()
                .handle("POST", "/v1/machines", &[], &bearer(&key), body.as_bytes());
        let id = reply.body["id"].as_str().unwrap_or_default().to_owned();
        self.undo_count(Endpoint::CreateMachine);
        match self.machine(&id) {
            Some(m) => m,
            None => panic!("clerk-mock: create_machine failed: {}", reply.body),
        }
    }

    /// Lets machine `from` call machine `to`; affects only tokens created afterwards.
    pub fn add_scope(&self, from: &str, to: &str) {
        let now = self.lock().now_ms();
        let mut s = self.lock();
        if let Some(m) = s.machines.iter_mut().find(|m| m.id == from)
            && !m.scoped.iter().any(|(t, _)| t == to)
        {
            m.scoped.push((to.to_owned(), now));
        }
    }

    /// Stops machine `from` from calling machine `to`, as
    /// `DELETE /v1/machines/{from}/scopes/{to}` would; affects only tokens created afterwards.
    /// Returns whether the scope existed.
    pub fn remove_scope(&self, from: &str, to: &str) -> bool {
        let mut s = self.lock();
        match s.machines.iter_mut().find(|m| m.id == from) {
            Some(m) => {
                let before = m.scoped.len();
                m.scoped.retain(|(t, _)| t != to);
                m.scoped.len() != before
            }
            None => false,
        }
    }

    /// Mints a token as machine `machine_id` would with `POST /m2m_tokens` and `body` (e.g.
    /// `{}` or `{"token_format": "jwt"}`), without counting the call. Returns Clerk's 201 body,
    /// whose `token` is the bearer value.
    ///
    /// # Panics
    /// If the machine does not exist or the mock refuses the body.
    pub fn mint(&self, machine_id: &str, body: &Value) -> Value {
        let Some(key) = self.machine(machine_id).map(|m| m.secret_key) else {
            panic!("clerk-mock: no machine {machine_id}")
        };
        let (_, reply) = self.lock().handle(
            "POST",
            "/m2m_tokens",
            &[],
            &bearer(&key),
            body.to_string().as_bytes(),
        );
        self.undo_count(Endpoint::CreateToken);
        assert_eq!(reply.status, 201, "clerk-mock: mint failed: {}", reply.body);
        reply.body
    }

    /// Every user.
    pub fn users(&self) -> Vec<UserInfo> {
        self.lock()
            .users
            .iter()
            .map(|u| UserInfo {
                id: u.id.clone(),
                first_name: u.first_name.clone(),
                last_name: u.last_name.clone(),
                email: u.email.clone(),
            })
            .collect()
    }

    /// Creates a user.
    pub fn create_user(&self, first_name: &str, last_name: &str, email: &str) -> UserInfo {
        let mut s = self.lock();
        let now = s.now_ms();
        let u = state::User {
            id: ids::user_id(),
            first_name: first_name.into(),
            last_name: last_name.into(),
            email: email.into(),
            created_at: now,
        };
        s.users.push(u.clone());
        UserInfo {
            id: u.id,
            first_name: u.first_name,
            last_name: u.last_name,
            email: u.email,
        }
    }

    /// A session token for `user_id` as `POST /v1/sessions` + `POST /v1/sessions/{id}/tokens`
    /// would mint it (default lifetime), without counting calls.
    ///
    /// # Panics
    /// If the user does not exist.
    pub fn session_token(&self, user_id: &str) -> String {
        self.session_token_with(user_id, |_, _| {})
    }

    /// A session token for `user_id` as Clerk mints it while `actor_id` (an admin user)
    /// impersonates them: the claims carry Clerk's `act` claim,
    /// `{"iss": "https://dashboard.clerk.com", "sid": "sess_…", "sub": actor_id}`.
    ///
    /// # Panics
    /// If the user does not exist.
    pub fn impersonation_token(&self, user_id: &str, actor_id: &str) -> String {
        let actor_session = ids::session_id();
        self.session_token_with(user_id, |_, claims| {
            claims["act"] = json!({
                "iss": "https://dashboard.clerk.com",
                "sid": actor_session,
                "sub": actor_id,
            });
        })
    }

    /// A session token for `user_id` whose header and claims `edit` may change arbitrarily
    /// (expired, other `azp`, no `azp`, another `cat`, `sts: "pending"`, …). Signed with the
    /// instance key.
    ///
    /// # Panics
    /// If the user does not exist.
    pub fn session_token_with(
        &self,
        user_id: &str,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> String {
        let mut s = self.lock();
        let ttl = s.behaviour.session_token_ttl_seconds;
        let Some(session) = s.new_session(user_id) else {
            panic!("clerk-mock: no user {user_id}")
        };
        let (mut header, mut claims) = s.session_token_parts(&session, ttl, false);
        edit(&mut header, &mut claims);
        s.key.sign(&header, &claims)
    }

    /// Signs any header and claims with the instance key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.lock().key.sign(header, claims)
    }

    /// A header as Clerk sets it (`alg` RS256, `kid` = instance id, `typ` JWT, `cat` = `cat`).
    pub fn jwt_header(&self, cat: &str) -> Value {
        json!({ "alg": "RS256", "kid": self.instance_id(), "typ": "JWT", "cat": cat })
    }

    /// The seed in effect, with generated values filled in.
    pub fn effective_seed(&self) -> EffectiveSeed {
        let (machines, users) = (self.machines(), self.users());
        let s = self.lock();
        EffectiveSeed {
            instance_id: s.instance_id.clone(),
            instance_secret_key: s.instance_secret_key.clone(),
            issuer: s.issuer.clone(),
            authorized_party: s.authorized_party.clone(),
            jwt_public_key_pem: s.key.public_key_pem(),
            machines,
            users,
        }
    }
}

fn bearer(key: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {key}")) {
        h.insert(http::header::AUTHORIZATION, v);
    }
    h
}
