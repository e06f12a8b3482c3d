//! `/m2m_tokens`: create, verify, revoke, list.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::params::{Empty, Param, Params, parse_body, parse_bool, parse_range, query_param};
use super::reply::{Reply, bad_param, error, error_with_meta, machine_not_found, not_found};
use super::{Caller, State};
use crate::ids;
use crate::jwt;
use crate::seed::{NullLifetime, RevokedVerify};

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

/// The stored (opaque) tokens, in creation order, found by index rather than by a scan: a
/// verify costs the same with three tokens or 300,000 (a scan took 5–12 ms at 300,000).
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    all: Vec<Token>,
    /// Position in `all` by bearer secret, by id, and every position of a subject's tokens.
    by_secret: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
    by_subject: HashMap<String, Vec<usize>>,
}

impl Tokens {
    /// Stores `token` (ids and secrets are random and never reused).
    pub fn push(&mut self, token: Token) {
        let at = self.all.len();
        self.by_secret.insert(token.secret.clone(), at);
        self.by_id.insert(token.id.clone(), at);
        self.by_subject
            .entry(token.subject.clone())
            .or_default()
            .push(at);
        self.all.push(token);
    }

    /// The token whose bearer value is `secret`.
    pub fn by_secret_mut(&mut self, secret: &str) -> Option<&mut Token> {
        let at = *self.by_secret.get(secret)?;
        self.all.get_mut(at)
    }

    /// The token with id `id`.
    pub fn by_id_mut(&mut self, id: &str) -> Option<&mut Token> {
        let at = *self.by_id.get(id)?;
        self.all.get_mut(at)
    }

    /// The tokens of `subject`, oldest first.
    pub fn of_subject<'a>(
        &'a self,
        subject: &str,
    ) -> impl DoubleEndedIterator<Item = &'a Token> + 'a {
        self.by_subject
            .get(subject)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&at| self.all.get(at))
    }
}

/// `POST /m2m_tokens`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateToken {
    token_format: Param<TokenFormat>,
    seconds_until_expiration: Param<f64>,
    /// Any JSON; an object's keys become custom claims.
    claims: Value,
    min_remaining_ttl_seconds: Param<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TokenFormat {
    Opaque,
    Jwt,
}

/// `POST /m2m_tokens/verify`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VerifyToken {
    token: Param<String>,
    /// The pre-2025-08 name of `token`, still sent by clerk-backend-api 6.
    secret: Param<String>,
}

/// `POST /m2m_tokens/{id}/revoke`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RevokeToken {
    revocation_reason: Param<String>,
}

impl State {
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

    pub(super) fn create_token(
        &mut self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Reply, Reply> {
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
        let body: CreateToken = parse_body(body, Empty::IsObject, Params::Only)?;
        let format = body
            .token_format
            .optional(|| {
                bad_param(
                    "token_format",
                    "token_format must be one of: opaque, jwt".into(),
                )
            })?
            .unwrap_or(TokenFormat::Opaque);
        let machine = self
            .machine(&subject)
            .cloned()
            .ok_or_else(|| machine_not_found(&subject))?;
        let seconds = body.seconds_until_expiration.optional(|| {
            bad_param(
                "seconds_until_expiration",
                "seconds_until_expiration must be a number".into(),
            )
        })?;
        let lifetime_ms: Option<i64> = match seconds {
            None => match self.behaviour.null_lifetime {
                NullLifetime::DefaultTtl => Some(machine.default_token_ttl as i64 * 1000),
                NullLifetime::Never => None,
            },
            Some(s) if s > 0.0 && s < 1e13 => Some((s * 1000.0) as i64),
            Some(_) => {
                return Err(bad_param(
                    "seconds_until_expiration",
                    "seconds_until_expiration must be greater than 0".into(),
                ));
            }
        };
        let claims = body.claims;
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
        let min_remaining: Option<i64> = body
            .min_remaining_ttl_seconds
            .optional(|| {
                bad_param(
                    "min_remaining_ttl_seconds",
                    "min_remaining_ttl_seconds must be an integer >= 0".into(),
                )
            })?
            .map(|v| v as i64);
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
        if format == TokenFormat::Opaque
            && let Some(min) = min_remaining
        {
            let reusable = self.tokens.of_subject(&subject).rev().find(|t| {
                !t.revoked
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
        let secret = if format == TokenFormat::Jwt {
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
        if format == TokenFormat::Opaque {
            self.tokens.push(token);
        }
        Ok(reply)
    }

    pub(super) fn verify_token(
        &mut self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Reply, Reply> {
        let caller = self.caller(headers)?;
        let body: VerifyToken = parse_body(body, Empty::Invalid, Params::Only)?;
        let presented = match (body.token, body.secret) {
            (Param::Valid(t), _) | (Param::Absent | Param::Null, Param::Valid(t)) => t,
            _ => return Err(bad_param("token", "token is required".into())),
        };
        let now = self.now_ms();
        let revoked_verify = self.behaviour.revoked_verify;
        let Some(t) = self.tokens.by_secret_mut(&presented) else {
            return Err(not_found("machine token"));
        };
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
        t.last_used_at = Some(now);
        let t = t.clone();
        Ok(Reply::ok(200, self.token_json(&t, false)))
    }

    pub(super) fn revoke_token(
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
        let body: RevokeToken = parse_body(body, Empty::IsObject, Params::Only)?;
        let reason = body.revocation_reason.optional(|| {
            bad_param(
                "revocation_reason",
                "revocation_reason must be a string".into(),
            )
        })?;
        let now = self.now_ms();
        let Some(t) = self.tokens.by_id_mut(id) else {
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

    pub(super) fn list_tokens(
        &self,
        headers: &http::HeaderMap,
        query: &[(String, String)],
    ) -> Result<Reply, Reply> {
        let caller = self.caller(headers)?;
        let q = |k: &str| query_param(query, k);
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
            .of_subject(subject)
            .rev()
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
}
