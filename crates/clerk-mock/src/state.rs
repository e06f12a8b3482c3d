//! The mock's state and the behaviour of every route.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::ids;
use crate::jwt::{self, SigningKey};
use crate::seed::{Behaviour, NullLifetime, RevokedVerify, Seed};

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

#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub id: String,
    pub name: String,
    pub secret_key: String,
    /// Rotated-out keys and when they stop working (Unix ms).
    pub previous_keys: Vec<(String, i64)>,
    /// (to machine id, created_at)
    pub scoped: Vec<(String, i64)>,
    pub default_token_ttl: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub id: String,
    pub secret: String,
    pub subject: String,
    pub claims: Value,
    pub scopes: Vec<String>,
    pub revoked: bool,
    pub revocation_reason: Option<String>,
    pub expiration: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
}

/// What a handler answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn ok(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }
}

/// Clerk's error body.
pub(crate) fn error(status: u16, code: &str, message: &str, long_message: &str) -> Reply {
    error_with_meta(status, code, message, long_message, json!({}))
}

fn error_with_meta(
    status: u16,
    code: &str,
    message: &str,
    long_message: &str,
    meta: Value,
) -> Reply {
    let trace: String = ids::token_id()[3..].to_owned();
    Reply::ok(
        status,
        json!({
            "errors": [{ "message": message, "long_message": long_message, "code": code, "meta": meta }],
            "meta": {},
            "clerk_trace_id": trace,
        }),
    )
}

fn bad_param(param: &str, long_message: String) -> Reply {
    error_with_meta(
        400,
        "bad_request",
        "Bad Request",
        &long_message,
        json!({ "param_name": param }),
    )
}

fn not_found(what: &str) -> Reply {
    error(
        404,
        "resource_not_found",
        "not found",
        &format!("No {what} was found"),
    )
}

fn machine_not_found(id: &str) -> Reply {
    error(
        404,
        "machine_not_found",
        "Machine not found",
        &format!("No machine was found with id {id}"),
    )
}

/// Error body for an injected status.
pub(crate) fn fault_reply(status: u16, retry_after: Option<u64>) -> Reply {
    let mut reply = match status {
        429 => error(
            429,
            "too_many_requests",
            "Too many requests",
            "Too many requests, retry later",
        ),
        401 => error(
            401,
            "clerk_key_invalid",
            "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.",
            "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.",
        ),
        404 => not_found("resource"),
        s if s >= 500 => error(
            s,
            "internal_clerk_error",
            "Oops, an unexpected error occurred",
            "Oops, an unexpected error occurred",
        ),
        s => error(s, "bad_request", "Bad request", "Bad request"),
    };
    if let Some(secs) = retry_after {
        reply.headers.push(("retry-after", secs.to_string()));
    }
    reply
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
    pub tokens: Vec<Token>,
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
    pub fn from_seed(seed: &Seed, key: SigningKey) -> Result<Self, String> {
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
            tokens: Vec::new(),
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
            return Err(format!(
                "instance id must start with ins_: {}",
                state.instance_id
            ));
        }
        if !state.instance_secret_key.starts_with("sk_") {
            return Err("instance secret_key must start with sk_".into());
        }
        for m in &seed.machines {
            let id = m.id.clone().unwrap_or_else(ids::machine_id);
            if !ids::is_machine_id(&id) {
                return Err(format!("machine id {id:?} must match ^mch_\\w{{27}}$"));
            }
            if m.name.is_empty() || m.name.len() > 255 {
                return Err(format!("machine {id}: name must be 1 to 255 characters"));
            }
            let secret_key = m.secret_key.clone().unwrap_or_else(ids::machine_secret_key);
            if !secret_key.starts_with("ak_") {
                return Err(format!("machine {id}: secret_key must start with ak_"));
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
                .ok_or("seed machine vanished")?;
            for target in &m.scoped_machines {
                let to = state
                    .machines
                    .iter()
                    .find(|x| &x.id == target || &x.name == target)
                    .map(|x| x.id.clone())
                    .ok_or_else(|| {
                        format!(
                            "machine {}: scoped machine {target:?} is not in the seed",
                            m.name
                        )
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

    pub fn machine(&self, id: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.id == id)
    }

    fn machine_mut(&mut self, id: &str) -> Option<&mut Machine> {
        self.machines.iter_mut().find(|m| m.id == id)
    }

    pub fn machine_json(&self, m: &Machine, with_scoped: bool) -> Value {
        let mut v = json!({
            "object": "machine",
            "id": m.id,
            "name": m.name,
            "instance_id": self.instance_id,
            "created_at": m.created_at,
            "updated_at": m.updated_at,
            "default_token_ttl": m.default_token_ttl,
        });
        if with_scoped {
            let scoped: Vec<Value> = m
                .scoped
                .iter()
                .filter_map(|(id, _)| self.machine(id))
                .map(|t| self.machine_json(t, false))
                .collect();
            v["scoped_machines"] = Value::Array(scoped);
        }
        v
    }

    pub fn token_json(&self, t: &Token, include_secret: bool) -> Value {
        let now = self.now_ms();
        let mut v = json!({
            "object": "machine_to_machine_token",
            "id": t.id,
            "subject": t.subject,
            "claims": t.claims,
            "scopes": t.scopes,
            "revoked": t.revoked,
            "revocation_reason": t.revocation_reason,
            "expired": t.expiration.is_some_and(|e| e <= now),
            "expiration": t.expiration,
            "last_used_at": t.last_used_at,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
        });
        if include_secret {
            v["token"] = Value::String(t.secret.clone());
        }
        v
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
        let segments: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        // M2M and machine-verify routes are served with and without /v1 (reference §1.1).
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

    fn create_token(&mut self, headers: &http::HeaderMap, body: &[u8]) -> Result<Reply, Reply> {
        let subject = match self.caller(headers)? {
            Caller::Machine(id) => id,
            Caller::Instance => {
                return Err(error(
                    401,
                    "machine_secret_key_invalid",
                    "The provided Machine Secret Key is invalid. Make sure that your Machine Secret Key is correct.",
                    "The provided Machine Secret Key is invalid. Make sure that your Machine Secret Key is correct.",
                ));
            }
        };
        let body = parse_object(body, true)?;
        only_params(
            &body,
            &[
                "token_format",
                "seconds_until_expiration",
                "claims",
                "min_remaining_ttl_seconds",
            ],
        )?;
        let format = match body.get("token_format") {
            None | Some(Value::Null) => "opaque",
            Some(Value::String(s)) if s == "opaque" || s == "jwt" => s.as_str(),
            Some(_) => {
                return Err(bad_param(
                    "token_format",
                    "token_format must be one of: opaque, jwt".into(),
                ));
            }
        };
        let machine = self
            .machine(&subject)
            .cloned()
            .ok_or_else(|| machine_not_found(&subject))?;
        let lifetime_ms: Option<i64> = match body.get("seconds_until_expiration") {
            None | Some(Value::Null) => match self.behaviour.null_lifetime {
                NullLifetime::DefaultTtl => Some(machine.default_token_ttl as i64 * 1000),
                NullLifetime::Never => None,
            },
            Some(Value::Number(n)) => match n.as_f64() {
                Some(s) if s > 0.0 && s < 1e13 => Some((s * 1000.0) as i64),
                _ => {
                    return Err(bad_param(
                        "seconds_until_expiration",
                        "seconds_until_expiration must be greater than 0".into(),
                    ));
                }
            },
            Some(_) => {
                return Err(bad_param(
                    "seconds_until_expiration",
                    "seconds_until_expiration must be a number".into(),
                ));
            }
        };
        let claims = body.get("claims").cloned().unwrap_or(Value::Null);
        if let Value::Object(map) = &claims {
            for reserved in ["iss", "sub", "exp", "nbf", "iat", "jti"] {
                if map.contains_key(reserved) {
                    return Err(error_with_meta(
                        400,
                        "machine_token_reserved_claim",
                        "reserved claim used",
                        &format!("You can't use the reserved claim: '{reserved}'"),
                        json!({ "param_name": "claims" }),
                    ));
                }
            }
        }
        let min_remaining: Option<i64> = match body.get("min_remaining_ttl_seconds") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().map(|v| v as i64),
            Some(_) => {
                return Err(bad_param(
                    "min_remaining_ttl_seconds",
                    "min_remaining_ttl_seconds must be an integer >= 0".into(),
                ));
            }
        };
        if let (Some(min), Some(life)) = (min_remaining, lifetime_ms)
            && min * 1000 >= life
        {
            return Err(bad_param(
                "min_remaining_ttl_seconds",
                "min_remaining_ttl_seconds must be less than the token lifetime".into(),
            ));
        }
        let now = self.now_ms();
        let scopes: Vec<String> = machine.scoped.iter().map(|(id, _)| id.clone()).collect();
        if format == "opaque"
            && let Some(min) = min_remaining
        {
            let reusable = self.tokens.iter().rev().find(|t| {
                t.subject == subject
                    && !t.revoked
                    && t.claims == claims
                    && t.scopes == scopes
                    && t.expiration.is_none_or(|e| e - now >= min * 1000)
            });
            if let Some(t) = reusable {
                return Ok(Reply::ok(201, self.token_json(t, true)));
            }
        }
        let id = ids::token_id();
        let expiration = lifetime_ms.map(|l| now + l);
        let secret = if format == "jwt" {
            let iat = now / 1000;
            let mut payload = Map::new();
            if let Value::Object(extra) = &claims {
                payload.extend(extra.clone());
            }
            payload.insert("iss".into(), json!(self.issuer));
            payload.insert("sub".into(), json!(subject));
            payload.insert("iat".into(), json!(iat));
            payload.insert("nbf".into(), json!(iat));
            // A JWT always carries exp; a "never" lifetime becomes ten years.
            payload.insert(
                "exp".into(),
                json!(expiration.map(|e| e / 1000).unwrap_or(iat + 315_360_000)),
            );
            payload.insert("jti".into(), json!(id));
            // Clerk's own `scopes` is written over any custom claim of that name, even when
            // the machine has no scopes, so a minting machine cannot name its receivers.
            payload.insert("scopes".into(), json!(scopes.join(" ")));
            let header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.instance_id, "cat": jwt::CAT_M2M });
            self.key.sign(&header, &Value::Object(payload))
        } else {
            ids::opaque_secret()
        };
        let token = Token {
            id,
            secret,
            subject,
            claims,
            scopes,
            revoked: false,
            revocation_reason: None,
            expiration,
            last_used_at: None,
            created_at: now,
            updated_at: now,
        };
        let reply = Reply::ok(201, self.token_json(&token, true));
        // JWT-format tokens are stateless: not listable, revocable or verifiable at BAPI.
        if format == "opaque" {
            self.tokens.push(token);
        }
        Ok(reply)
    }

    fn verify_token(&mut self, headers: &http::HeaderMap, body: &[u8]) -> Result<Reply, Reply> {
        let caller = self.caller(headers)?;
        let body = parse_object(body, false)?;
        only_params(&body, &["token", "secret"])?;
        // `secret` is the pre-2025-08 field name, still sent by clerk-backend-api 6.
        let presented = match (body.get("token"), body.get("secret")) {
            (Some(Value::String(t)), _) | (None | Some(Value::Null), Some(Value::String(t))) => {
                t.clone()
            }
            _ => return Err(bad_param("token", "token is required".into())),
        };
        let now = self.now_ms();
        let revoked_verify = self.behaviour.revoked_verify;
        let Some(index) = self.tokens.iter().position(|t| t.secret == presented) else {
            return Err(not_found("machine token"));
        };
        let t = &self.tokens[index];
        if let Caller::Machine(verifier) = &caller
            && !t.scopes.contains(verifier)
        {
            // Not disclosed: an out-of-scope token looks like an unknown one.
            return Err(not_found("machine token"));
        }
        let expired = t.expiration.is_some_and(|e| e <= now);
        if (t.revoked || expired) && revoked_verify == RevokedVerify::NotFound {
            return Err(not_found("machine token"));
        }
        self.tokens[index].last_used_at = Some(now);
        Ok(Reply::ok(200, self.token_json(&self.tokens[index], false)))
    }

    fn revoke_token(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        let caller = self.caller(headers)?;
        if !ids::is_token_id(id) {
            return Err(bad_param(
                "m2m_token_id",
                "Invalid 'url_parameter.m2m_token_id': Failed regex check".to_string(),
            ));
        }
        let body = parse_object(body, true)?;
        only_params(&body, &["revocation_reason"])?;
        let reason = match body.get("revocation_reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(bad_param(
                    "revocation_reason",
                    "revocation_reason must be a string".into(),
                ));
            }
        };
        let now = self.now_ms();
        let Some(t) = self.tokens.iter_mut().find(|t| t.id == id) else {
            return Err(not_found("machine token"));
        };
        if let Caller::Machine(m) = &caller
            && &t.subject != m
        {
            return Err(not_found("machine token"));
        }
        if !t.revoked {
            t.revoked = true;
            t.revocation_reason = reason;
            t.updated_at = now;
        }
        let t = t.clone();
        Ok(Reply::ok(200, self.token_json(&t, false)))
    }

    fn list_tokens(
        &self,
        headers: &http::HeaderMap,
        query: &[(String, String)],
    ) -> Result<Reply, Reply> {
        let caller = self.caller(headers)?;
        let q = |k: &str| {
            query
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let subject =
            q("subject").ok_or_else(|| bad_param("subject", "subject is required".into()))?;
        if !ids::is_machine_id(subject) {
            return Err(bad_param(
                "subject",
                "Invalid 'query_parameter.subject': Failed regex check".into(),
            ));
        }
        let include_revoked = parse_bool(q("revoked"), "revoked")?;
        let include_expired = parse_bool(q("expired"), "expired")?;
        let limit = parse_range(q("limit"), "limit", 1, 100, 10)?;
        let offset = parse_range(q("offset"), "offset", 0, u64::MAX, 0)?;
        if let Caller::Machine(m) = &caller
            && m != subject
        {
            return Err(error(
                403,
                "authorization_invalid",
                "Unauthorized request",
                "You are not authorized to perform this request",
            ));
        }
        if self.machine(subject).is_none() {
            return Err(machine_not_found(subject));
        }
        let now = self.now_ms();
        let matching: Vec<&Token> = self
            .tokens
            .iter()
            .rev()
            .filter(|t| t.subject == subject)
            .filter(|t| include_revoked || !t.revoked)
            .filter(|t| include_expired || t.expiration.is_none_or(|e| e > now))
            .collect();
        let page: Vec<Value> = matching
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|t| self.token_json(t, false))
            .collect();
        Ok(Reply::ok(
            200,
            json!({ "m2m_tokens": page, "total_count": matching.len() }),
        ))
    }

    fn list_machines(
        &self,
        headers: &http::HeaderMap,
        query: &[(String, String)],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let q = |k: &str| {
            query
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let limit = parse_range(q("limit"), "limit", 1, 500, 10)?;
        let offset = parse_range(q("offset"), "offset", 0, u64::MAX, 0)?;
        let needle = q("query").unwrap_or("");
        let mut list: Vec<&Machine> = self
            .machines
            .iter()
            .filter(|m| {
                needle.is_empty()
                    || m.id == needle
                    || m.name.to_lowercase().contains(&needle.to_lowercase())
            })
            .collect();
        match q("order_by").unwrap_or("-created_at") {
            "name" | "+name" => list.sort_by(|a, b| a.name.cmp(&b.name)),
            "-name" => list.sort_by(|a, b| b.name.cmp(&a.name)),
            "created_at" | "+created_at" => {}
            "-created_at" => list.reverse(),
            other => {
                return Err(bad_param(
                    "order_by",
                    format!("order_by {other:?} is not supported"),
                ));
            }
        }
        let data: Vec<Value> = list
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|m| self.machine_json(m, true))
            .collect();
        Ok(Reply::ok(
            200,
            json!({ "data": data, "total_count": list.len() }),
        ))
    }

    fn create_machine(&mut self, headers: &http::HeaderMap, body: &[u8]) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body = parse_object(body, false)?;
        only_params(&body, &["name", "scoped_machines", "default_token_ttl"])?;
        let name = match body.get("name") {
            Some(v) => machine_name(v)?,
            None => {
                return Err(form_error(
                    "form_param_missing",
                    "name",
                    "name must be included.",
                ));
            }
        };
        let ttl = match body.get("default_token_ttl").filter(|v| !v.is_null()) {
            Some(v) => token_ttl(v)?,
            None => 3600,
        };
        let mut scoped = Vec::new();
        let now = self.now_ms();
        if let Some(v) = body.get("scoped_machines").filter(|v| !v.is_null()) {
            let list = v.as_array().ok_or_else(|| {
                form_error(
                    "form_param_format_invalid",
                    "scoped_machines",
                    "scoped_machines must be an array",
                )
            })?;
            if list.len() > 150 {
                return Err(form_error(
                    "form_param_value_invalid",
                    "scoped_machines",
                    "at most 150 scoped machines",
                ));
            }
            for item in list {
                let id = item.as_str().unwrap_or_default();
                if self.machine(id).is_none() {
                    return Err(machine_not_found(id));
                }
                scoped.push((id.to_owned(), now));
            }
        }
        let m = Machine {
            id: ids::machine_id(),
            name,
            secret_key: ids::machine_secret_key(),
            previous_keys: Vec::new(),
            scoped,
            default_token_ttl: ttl,
            created_at: now,
            updated_at: now,
        };
        let mut json = self.machine_json(&m, true);
        json["secret_key"] = json!(m.secret_key);
        self.machines.push(m);
        Ok(Reply::ok(200, json))
    }

    fn get_machine(&self, headers: &http::HeaderMap, id: &str) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let m = self.machine(id).ok_or_else(|| machine_not_found(id))?;
        Ok(Reply::ok(200, self.machine_json(m, true)))
    }

    fn update_machine(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body = parse_object(body, true)?;
        only_params(&body, &["name", "default_token_ttl"])?;
        let now = self.now_ms();
        let name = body
            .get("name")
            .filter(|v| !v.is_null())
            .map(machine_name)
            .transpose()?;
        let ttl = body
            .get("default_token_ttl")
            .filter(|v| !v.is_null())
            .map(token_ttl)
            .transpose()?;
        let m = self.machine_mut(id).ok_or_else(|| machine_not_found(id))?;
        if let Some(n) = name {
            m.name = n;
        }
        if let Some(t) = ttl {
            m.default_token_ttl = t;
        }
        m.updated_at = now;
        let m = m.clone();
        Ok(Reply::ok(200, self.machine_json(&m, true)))
    }

    fn delete_machine(&mut self, headers: &http::HeaderMap, id: &str) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let before = self.machines.len();
        self.machines.retain(|m| m.id != id);
        if self.machines.len() == before {
            return Err(machine_not_found(id));
        }
        for m in &mut self.machines {
            m.scoped.retain(|(to, _)| to != id);
        }
        Ok(Reply::ok(
            200,
            json!({ "object": "machine", "id": id, "deleted": true }),
        ))
    }

    fn get_secret_key(&self, headers: &http::HeaderMap, id: &str) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let m = self.machine(id).ok_or_else(|| machine_not_found(id))?;
        Ok(Reply::ok(
            200,
            json!({ "object": "machine_secret_key", "secret": m.secret_key }),
        ))
    }

    fn rotate_secret_key(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body = parse_object(body, false)?;
        only_params(&body, &["previous_token_ttl"])?;
        let ttl = match body.get("previous_token_ttl") {
            None | Some(Value::Null) => {
                return Err(form_error(
                    "form_param_missing",
                    "previous_token_ttl",
                    "previous_token_ttl must be included.",
                ));
            }
            Some(v) => match v.as_u64() {
                Some(t) if t <= 28_800 => t as i64,
                _ => {
                    return Err(form_error(
                        "form_param_value_invalid",
                        "previous_token_ttl",
                        "previous_token_ttl must be between 0 and 28800",
                    ));
                }
            },
        };
        let now = self.now_ms();
        let m = self.machine_mut(id).ok_or_else(|| machine_not_found(id))?;
        let old = std::mem::replace(&mut m.secret_key, ids::machine_secret_key());
        if ttl > 0 {
            m.previous_keys.push((old, now + ttl * 1000));
        }
        m.updated_at = now;
        Ok(Reply::ok(
            200,
            json!({ "object": "machine_secret_key", "secret": m.secret_key }),
        ))
    }

    fn create_scope(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body = parse_object(body, false)?;
        only_params(&body, &["to_machine_id"])?;
        let to = body
            .get("to_machine_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                form_error(
                    "form_param_missing",
                    "to_machine_id",
                    "to_machine_id must be included.",
                )
            })?
            .to_owned();
        if self.machine(&to).is_none() {
            return Err(machine_not_found(&to));
        }
        let now = self.now_ms();
        let m = self.machine_mut(id).ok_or_else(|| machine_not_found(id))?;
        if m.scoped.iter().any(|(t, _)| *t == to) {
            return Err(error(
                409,
                "duplicate_record",
                "duplicate record",
                "This machine scope already exists",
            ));
        }
        if m.scoped.len() >= 150 {
            return Err(form_error(
                "form_param_value_invalid",
                "to_machine_id",
                "a machine can have at most 150 scopes",
            ));
        }
        m.scoped.push((to.clone(), now));
        Ok(Reply::ok(
            200,
            json!({ "object": "machine_scope", "from_machine_id": id, "to_machine_id": to, "created_at": now }),
        ))
    }

    fn delete_scope(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        other: &str,
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let m = self.machine_mut(id).ok_or_else(|| machine_not_found(id))?;
        let before = m.scoped.len();
        m.scoped.retain(|(t, _)| t != other);
        if m.scoped.len() == before {
            return Err(not_found("machine scope"));
        }
        Ok(Reply::ok(
            200,
            json!({ "object": "machine_scope", "from_machine_id": id, "to_machine_id": other, "deleted": true }),
        ))
    }

    pub fn user_json(u: &User) -> Value {
        json!({
            "object": "user",
            "id": u.id,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "email_addresses": [{ "object": "email_address", "email_address": u.email }],
            "created_at": u.created_at,
            "updated_at": u.created_at,
        })
    }

    fn create_user(&mut self, headers: &http::HeaderMap, body: &[u8]) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body = parse_object(body, true)?;
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let email = body
            .get("email_address")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let u = User {
            id: ids::user_id(),
            first_name: text("first_name"),
            last_name: text("last_name"),
            email,
            created_at: self.now_ms(),
        };
        let json = Self::user_json(&u);
        self.users.push(u);
        Ok(Reply::ok(200, json))
    }

    fn get_user(&self, headers: &http::HeaderMap, id: &str) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let u = self
            .users
            .iter()
            .find(|u| u.id == id)
            .ok_or_else(|| not_found("user"))?;
        Ok(Reply::ok(200, Self::user_json(u)))
    }

    pub fn session_json(&self, s: &Session) -> Value {
        json!({
            "object": "session",
            "id": s.id,
            "user_id": s.user_id,
            "client_id": "client_mock",
            "status": "active",
            "last_active_at": s.created_at,
            "expire_at": s.created_at + 7 * 86_400_000,
            "abandon_at": s.created_at + 30 * 86_400_000,
            "created_at": s.created_at,
            "updated_at": s.created_at,
        })
    }

    pub fn new_session(&mut self, user_id: &str) -> Option<Session> {
        self.users.iter().find(|u| u.id == user_id)?;
        let s = Session {
            id: ids::session_id(),
            user_id: user_id.to_owned(),
            created_at: self.now_ms(),
        };
        self.sessions.push(s.clone());
        Some(s)
    }

    fn create_session(&mut self, headers: &http::HeaderMap, body: &[u8]) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body = parse_object(body, false)?;
        let user_id = body.get("user_id").and_then(Value::as_str).ok_or_else(|| {
            form_error("form_param_missing", "user_id", "user_id must be included.")
        })?;
        let s = self.new_session(user_id).ok_or_else(|| not_found("user"))?;
        Ok(Reply::ok(200, self.session_json(&s)))
    }

    /// Claims and header of a session token for `session`.
    pub fn session_token_parts(
        &self,
        session: &Session,
        ttl_secs: u64,
        template: bool,
    ) -> (Value, Value) {
        let iat = self.now_ms() / 1000;
        let header = json!({
            "alg": "RS256",
            "kid": self.instance_id,
            "typ": "JWT",
            "cat": if template { jwt::CAT_TEMPLATE } else { jwt::CAT_SESSION },
        });
        let claims = json!({
            "azp": self.authorized_party,
            "exp": iat + ttl_secs as i64,
            "fva": [0, -1],
            "iat": iat,
            "iss": self.issuer,
            "jti": ids::jti(),
            "nbf": iat - 10,
            "sid": session.id,
            "sub": session.user_id,
            "v": 2,
        });
        (header, claims)
    }

    fn create_session_token(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        template: Option<&str>,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body = parse_object(body, true)?;
        let ttl = match body.get("expires_in_seconds") {
            None | Some(Value::Null) => self.behaviour.session_token_ttl_seconds,
            Some(v) => match v.as_u64() {
                Some(t) if (30..=315_360_000).contains(&t) => t,
                _ => {
                    return Err(bad_param(
                        "expires_in_seconds",
                        "expires_in_seconds must be between 30 and 315360000".into(),
                    ));
                }
            },
        };
        let session = self
            .sessions
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| not_found("session"))?;
        let (header, claims) = self.session_token_parts(&session, ttl, template.is_some());
        Ok(Reply::ok(
            200,
            json!({ "object": "token", "jwt": self.key.sign(&header, &claims) }),
        ))
    }

    fn testing_token(&self) -> Reply {
        let now = self.now_ms() / 1000;
        let token = format!("{now}-{}", &ids::opaque_secret()[3..]);
        Reply::ok(
            200,
            json!({ "object": "testing_token", "token": token, "expires_at": now + 3600 }),
        )
    }
}

fn key_invalid() -> Reply {
    let msg = "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.";
    error(401, "clerk_key_invalid", msg, msg)
}

/// A machine name: 1 to 255 characters.
fn machine_name(v: &Value) -> Result<String, Reply> {
    match v.as_str() {
        Some(n) if !n.is_empty() && n.len() <= 255 => Ok(n.to_owned()),
        _ => Err(form_error(
            "form_param_format_invalid",
            "name",
            "name must be 1 to 255 characters",
        )),
    }
}

/// A machine's default token lifetime: 1 s to 10 years.
fn token_ttl(v: &Value) -> Result<u64, Reply> {
    match v.as_u64() {
        Some(t) if (1..=315_360_000).contains(&t) => Ok(t),
        _ => Err(form_error(
            "form_param_value_invalid",
            "default_token_ttl",
            "default_token_ttl must be between 1 and 315360000",
        )),
    }
}

fn form_error(code: &str, param: &str, long: &str) -> Reply {
    let message = match code {
        "form_param_missing" => "is missing",
        "form_param_unknown" => "is unknown",
        _ => "is invalid",
    };
    error_with_meta(422, code, message, long, json!({ "param_name": param }))
}

fn parse_object(body: &[u8], empty_ok: bool) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if empty_ok {
            Ok(Map::new())
        } else {
            Err(error(
                400,
                "request_body_invalid",
                "Request body invalid",
                "The request body is invalid. Please consult the API documentation for more information.",
            ))
        };
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(
            400,
            "request_body_invalid",
            "Request body invalid",
            "The request body is invalid. Please consult the API documentation for more information.",
        )),
    }
}

fn only_params(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Reply> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(error_with_meta(
            400,
            "bad_request",
            "is unknown",
            &format!("{k} is not a valid parameter for this request."),
            json!({ "param_name": k }),
        )),
        None => Ok(()),
    }
}

fn parse_bool(v: Option<&str>, name: &str) -> Result<bool, Reply> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(bad_param(name, format!("{name} must be true or false"))),
    }
}

/// The spec types these query parameters as `number`, and Clerk's Python SDK sends `10.0`:
/// accept any integral number.
fn integral(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().or_else(|| {
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1e15)
            .map(|f| f as u64)
    })
}

fn parse_range(
    v: Option<&str>,
    name: &str,
    min: u64,
    max: u64,
    default: u64,
) -> Result<u64, Reply> {
    match v {
        None => Ok(default),
        Some(s) => match integral(s) {
            Some(n) if n >= min && n <= max => Ok(n),
            _ => Err(bad_param(
                name,
                format!("{name} must be an integer between {min} and {max}"),
            )),
        },
    }
}
