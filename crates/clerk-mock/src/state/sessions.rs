//! `/v1/users`, `/v1/sessions` and their tokens, `/v1/testing_tokens`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use super::params::{Empty, Param, Params, parse_body};
use super::reply::{Reply, bad_param, form_error, not_found};
use crate::ids;
use crate::jwt;

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

/// `POST /v1/users`: of Clerk's many parameters the mock reads three and ignores the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateUser {
    first_name: Param<String>,
    last_name: Param<String>,
    /// The first item, if a string, is the user's email.
    email_address: Param<Vec<Value>>,
}

/// `POST /v1/sessions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateSession {
    user_id: Param<String>,
}

/// `POST /v1/sessions/{id}/tokens[/{template}]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateSessionToken {
    expires_in_seconds: Param<u64>,
}

impl State {
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

    pub(super) fn create_user(
        &mut self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body: CreateUser = parse_body(body, Empty::IsObject, Params::Any)?;
        let email = body
            .email_address
            .valid()
            .and_then(|a| a.first().and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        let u = User {
            id: ids::user_id(),
            first_name: body.first_name.valid().unwrap_or_default(),
            last_name: body.last_name.valid().unwrap_or_default(),
            email,
            created_at: self.now_ms(),
        };
        let json = Self::user_json(&u);
        self.users.push(u);
        Ok(Reply::ok(200, json))
    }

    pub(super) fn get_user(&self, headers: &http::HeaderMap, id: &str) -> Result<Reply, Reply> {
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

    pub(super) fn create_session(
        &mut self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body: CreateSession = parse_body(body, Empty::Invalid, Params::Any)?;
        let user_id = body.user_id.valid().ok_or_else(|| {
            form_error("form_param_missing", "user_id", "user_id must be included.")
        })?;
        let s = self
            .new_session(&user_id)
            .ok_or_else(|| not_found("user"))?;
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

    pub(super) fn create_session_token(
        &mut self,
        headers: &http::HeaderMap,
        id: &str,
        template: Option<&str>,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        self.require_instance(headers)?;
        let body: CreateSessionToken = parse_body(body, Empty::IsObject, Params::Any)?;
        let ttl = match body.expires_in_seconds {
            Param::Absent | Param::Null => self.behaviour.session_token_ttl_seconds,
            Param::Valid(t) if (30..=315_360_000).contains(&t) => t,
            _ => {
                return Err(bad_param(
                    "expires_in_seconds",
                    "expires_in_seconds must be between 30 and 315360000".into(),
                ));
            }
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

    pub(super) fn testing_token(&self) -> Reply {
        let now = self.now_ms() / 1000;
        let token = format!("{now}-{}", &ids::opaque_secret()[3..]);
        Reply::ok(
            200,
            json!({ "object": "testing_token", "token": token, "expires_at": now + 3600 }),
        )
    }
}
