//! The mock's state and the router: which route a request is, and who is calling.
//!
//! The behaviour of each resource lives in its own module: [`tokens`] (M2M tokens), [`machines`]
//! (machines, their keys and scopes), [`sessions`] (users, sessions, testing tokens). [`reply`] holds
//! Clerk's error bodies and [`params`] the parsing of request bodies and query strings.

mod machines;
mod params;
mod reply;
mod sessions;
mod tokens;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::error::SetupError;
use crate::ids;
use crate::jwt::SigningKey;
use crate::seed::{Behaviour, Seed};

pub(crate) use machines::Machine;
pub(crate) use reply::{Reply, error, fault_reply};
use reply::{key_invalid, not_found};
pub(crate) use sessions::{Session, User};
pub(crate) use tokens::Tokens;

/// Every route the mock serves, for call counters and fault targeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// `POST /m2m_tokens`
    CreateToken,
    /// `POST /m2m_tokens/verify`
    VerifyToken,
    /// `POST /m2m_tokens/{id}/revoke`
    RevokeToken,
    /// `GET /m2m_tokens`
    ListTokens,
    /// `GET /v1/jwks`
    Jwks,
    /// `GET /.well-known/jwks.json`
    PublicJwks,
    /// `GET /v1/machines`
    ListMachines,
    /// `POST /v1/machines`
    CreateMachine,
    /// `GET /v1/machines/{id}`
    GetMachine,
    /// `PATCH /v1/machines/{id}`
    UpdateMachine,
    /// `DELETE /v1/machines/{id}`
    DeleteMachine,
    /// `GET /v1/machines/{id}/secret_key`
    GetMachineSecretKey,
    /// `POST /v1/machines/{id}/secret_key/rotate`
    RotateMachineSecretKey,
    /// `POST /v1/machines/{id}/scopes`
    CreateMachineScope,
    /// `DELETE /v1/machines/{id}/scopes/{other}`
    DeleteMachineScope,
    /// `POST /v1/users`
    CreateUser,
    /// `GET /v1/users/{id}`
    GetUser,
    /// `POST /v1/sessions`
    CreateSession,
    /// `POST /v1/sessions/{id}/tokens[/{template}]`
    CreateSessionToken,
    /// `POST /v1/testing_tokens`
    CreateTestingToken,
    /// `POST /api_keys/verify`, `POST /oauth_applications/access_tokens/verify`
    OtherMachineVerify,
    /// `GET /healthz`
    Health,
    /// Anything else (answered 404).
    Unknown,
}

/// An injected failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status and Clerk's error body, optionally with `Retry-After` (seconds).
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Delay the normal answer.
    Delay(Duration),
}

impl Fault {
    /// A status fault without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
        }
    }

    /// 429 `too_many_requests` with `Retry-After: secs`.
    pub fn rate_limited(secs: u64) -> Self {
        Self::Status {
            status: 429,
            retry_after: Some(secs),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FaultRule {
    pub endpoint: Option<Endpoint>,
    pub fault: Fault,
    pub remaining: u32,
}

enum Caller {
    Instance,
    Machine(String),
}

/// The whole mutable state of one mock.
#[derive(Debug)]
pub(crate) struct State {
    pub instance_id: String,
    pub instance_secret_key: String,
    pub issuer: String,
    pub authorized_party: String,
    pub behaviour: Behaviour,
    pub key: SigningKey,
    pub machines: Vec<Machine>,
    pub tokens: Tokens,
    pub users: Vec<User>,
    pub sessions: Vec<Session>,
    pub clock_offset_ms: i64,
    pub calls: BTreeMap<Endpoint, u64>,
    pub faults: Vec<FaultRule>,
    pub latency: Duration,
    pub outage: Option<u16>,
    /// When set, the `keys` both JWKS routes serve instead of the instance key.
    pub jwks_keys: Option<Vec<Value>>,
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl State {
    pub fn from_seed(seed: &Seed, key: SigningKey) -> Result<Self, SetupError> {
        let now = system_ms();
        let inst = &seed.instance;
        let mut state = Self {
            instance_id: inst.id.clone().unwrap_or_else(ids::instance_id),
            instance_secret_key: inst
                .secret_key
                .clone()
                .unwrap_or_else(|| format!("sk_test_{}", &ids::machine_secret_key()[3..])),
            issuer: inst
                .issuer
                .clone()
                .unwrap_or_else(|| "https://clerk.mock.localhost".into()),
            authorized_party: inst
                .authorized_party
                .clone()
                .unwrap_or_else(|| "http://localhost:3000".into()),
            behaviour: seed.behaviour.clone(),
            key,
            machines: Vec::new(),
            tokens: Tokens::default(),
            users: Vec::new(),
            sessions: Vec::new(),
            clock_offset_ms: 0,
            calls: BTreeMap::new(),
            faults: Vec::new(),
            latency: Duration::ZERO,
            outage: None,
            jwks_keys: None,
        };
        if !state.instance_id.starts_with("ins_") {
            return Err(SetupError::Seed(format!(
                "instance id must start with ins_: {}",
                state.instance_id
            )));
        }
        if !state.instance_secret_key.starts_with("sk_") {
            return Err(SetupError::Seed(
                "instance secret_key must start with sk_".into(),
            ));
        }
        for m in &seed.machines {
            let id = m.id.clone().unwrap_or_else(ids::machine_id);
            if !ids::is_machine_id(&id) {
                return Err(SetupError::Seed(format!(
                    "machine id {id:?} must match ^mch_\\w{{27}}$"
                )));
            }
            if m.name.is_empty() || m.name.len() > 255 {
                return Err(SetupError::Seed(format!(
                    "machine {id}: name must be 1 to 255 characters"
                )));
            }
            let secret_key = m.secret_key.clone().unwrap_or_else(ids::machine_secret_key);
            if !secret_key.starts_with("ak_") {
                return Err(SetupError::Seed(format!(
                    "machine {id}: secret_key must start with ak_"
                )));
            }
            state.machines.push(Machine {
                id,
                name: m.name.clone(),
                secret_key,
                previous_keys: Vec::new(),
                scoped: Vec::new(),
                default_token_ttl: m.default_token_ttl.unwrap_or(3600),
                created_at: now,
                updated_at: now,
            });
        }
        for m in &seed.machines {
            let from = state
                .machines
                .iter()
                .position(|x| Some(&x.id) == m.id.as_ref() || (m.id.is_none() && x.name == m.name))
                .ok_or_else(|| SetupError::Seed("seed machine vanished".into()))?;
            for target in &m.scoped_machines {
                let to = state
                    .machines
                    .iter()
                    .find(|x| &x.id == target || &x.name == target)
                    .map(|x| x.id.clone())
                    .ok_or_else(|| {
                        SetupError::Seed(format!(
                            "machine {}: scoped machine {target:?} is not in the seed",
                            m.name
                        ))
                    })?;
                state.machines[from].scoped.push((to, now));
            }
        }
        for u in &seed.users {
            state.users.push(User {
                id: u.id.clone().unwrap_or_else(ids::user_id),
                first_name: u.first_name.clone(),
                last_name: u.last_name.clone(),
                email: u.email.clone(),
                created_at: now,
            });
        }
        Ok(state)
    }

    pub fn now_ms(&self) -> i64 {
        system_ms() + self.clock_offset_ms
    }

    fn caller(&self, headers: &http::HeaderMap) -> Result<Caller, Reply> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(error(
                401,
                "authentication_invalid",
                "Invalid authentication",
                "Unable to authenticate the request, you need to supply an active session",
            ));
        };
        let value = value.to_str().unwrap_or_default();
        let Some(key) = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|k| !k.is_empty())
        else {
            return Err(error(
                401,
                "authorization_header_format_invalid",
                "Invalid Authorization header format",
                "Invalid Authorization header format. Must be 'Bearer <YOUR_API_KEY>'",
            ));
        };
        if key == self.instance_secret_key {
            return Ok(Caller::Instance);
        }
        let now = self.now_ms();
        for m in &self.machines {
            if m.secret_key == key
                || m.previous_keys
                    .iter()
                    .any(|(k, until)| k == key && *until > now)
            {
                return Ok(Caller::Machine(m.id.clone()));
            }
        }
        Err(key_invalid())
    }

    fn require_instance(&self, headers: &http::HeaderMap) -> Result<(), Reply> {
        match self.caller(headers)? {
            Caller::Instance => Ok(()),
            Caller::Machine(_) => Err(key_invalid()),
        }
    }

    /// Routes one request. `path` has no query string.
    pub fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> (Endpoint, Reply) {
        let (ep, rest) = route(method, path);
        let m = method;
        *self.calls.entry(ep).or_insert(0) += 1;

        if let Some(status) = self.outage
            && ep != Endpoint::Health
        {
            return (ep, fault_reply(status, None));
        }
        let reply = match ep {
            Endpoint::CreateToken => self.create_token(headers, body),
            Endpoint::VerifyToken => self.verify_token(headers, body),
            Endpoint::RevokeToken => self.revoke_token(headers, rest[1], body),
            Endpoint::ListTokens => self.list_tokens(headers, query),
            Endpoint::OtherMachineVerify => self.caller(headers).map(|_| not_found("token")),
            Endpoint::Jwks => self
                .require_instance(headers)
                .map(|_| Reply::ok(200, self.jwks())),
            Endpoint::PublicJwks => Ok(Reply::ok(200, self.jwks())),
            Endpoint::ListMachines => self.list_machines(headers, query),
            Endpoint::CreateMachine => self.create_machine(headers, body),
            Endpoint::GetMachine => self.get_machine(headers, rest[1]),
            Endpoint::UpdateMachine => self.update_machine(headers, rest[1], body),
            Endpoint::DeleteMachine => self.delete_machine(headers, rest[1]),
            Endpoint::GetMachineSecretKey => self.get_secret_key(headers, rest[1]),
            Endpoint::RotateMachineSecretKey => self.rotate_secret_key(headers, rest[1], body),
            Endpoint::CreateMachineScope => self.create_scope(headers, rest[1], body),
            Endpoint::DeleteMachineScope => self.delete_scope(headers, rest[1], rest[3]),
            Endpoint::CreateUser => self.create_user(headers, body),
            Endpoint::GetUser => self.get_user(headers, rest[1]),
            Endpoint::CreateSession => self.create_session(headers, body),
            Endpoint::CreateSessionToken => {
                self.create_session_token(headers, rest[1], rest.get(3).copied(), body)
            }
            Endpoint::CreateTestingToken => {
                self.require_instance(headers).map(|_| self.testing_token())
            }
            Endpoint::Health => Ok(Reply::ok(200, json!({ "status": "ok" }))),
            Endpoint::Unknown => Ok(error(
                404,
                "resource_not_found",
                "not found",
                &format!("{m} {path} is not a route of this mock"),
            )),
        };
        (ep, reply.unwrap_or_else(|e| e))
    }

    pub fn jwks(&self) -> Value {
        match &self.jwks_keys {
            Some(keys) => json!({ "keys": keys }),
            None => json!({ "keys": [self.key.jwk(&self.instance_id)] }),
        }
    }
}

/// Which endpoint `method` `path` is, and the path's segments after any `/v1`.
pub(crate) fn route<'p>(method: &str, path: &'p str) -> (Endpoint, Vec<&'p str>) {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // M2M and machine-verify routes are served with and without /v1: Clerk's JS SDK calls
    // them unversioned, the Python and Go SDKs under /v1 (docs/clerk-behaviour.md, *Routes*).
    let (versioned, rest) = match segments.split_first() {
        Some((&"v1", rest)) => (true, rest.to_vec()),
        _ => (false, segments.clone()),
    };
    let m = method;
    let ep = match (m, rest.as_slice()) {
        ("POST", ["m2m_tokens"]) => Endpoint::CreateToken,
        ("POST", ["m2m_tokens", "verify"]) => Endpoint::VerifyToken,
        ("POST", ["m2m_tokens", _, "revoke"]) => Endpoint::RevokeToken,
        ("GET", ["m2m_tokens"]) => Endpoint::ListTokens,
        ("POST", ["api_keys", "verify"])
        | ("POST", ["oauth_applications", "access_tokens", "verify"]) => {
            Endpoint::OtherMachineVerify
        }
        ("GET", ["jwks"]) if versioned => Endpoint::Jwks,
        ("GET", [".well-known", "jwks.json"]) if !versioned => Endpoint::PublicJwks,
        ("GET", ["machines"]) if versioned => Endpoint::ListMachines,
        ("POST", ["machines"]) if versioned => Endpoint::CreateMachine,
        ("GET", ["machines", _]) if versioned => Endpoint::GetMachine,
        ("PATCH", ["machines", _]) if versioned => Endpoint::UpdateMachine,
        ("DELETE", ["machines", _]) if versioned => Endpoint::DeleteMachine,
        ("GET", ["machines", _, "secret_key"]) if versioned => Endpoint::GetMachineSecretKey,
        ("POST", ["machines", _, "secret_key", "rotate"]) if versioned => {
            Endpoint::RotateMachineSecretKey
        }
        ("POST", ["machines", _, "scopes"]) if versioned => Endpoint::CreateMachineScope,
        ("DELETE", ["machines", _, "scopes", _]) if versioned => Endpoint::DeleteMachineScope,
        ("POST", ["users"]) if versioned => Endpoint::CreateUser,
        ("GET", ["users", _]) if versioned => Endpoint::GetUser,
        ("POST", ["sessions"]) if versioned => Endpoint::CreateSession,
        ("POST", ["sessions", _, "tokens"]) | ("POST", ["sessions", _, "tokens", _])
            if versioned =>
        {
            Endpoint::CreateSessionToken
        }
        ("POST", ["testing_tokens"]) if versioned => Endpoint::CreateTestingToken,
        ("GET", ["healthz"]) if !versioned => Endpoint::Health,
        _ => Endpoint::Unknown,
    };
    (ep, rest)
}
