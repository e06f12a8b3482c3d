//! Extractors: the authenticated caller with its role, and JSON/query bodies whose rejections
//! are problem+json.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use jobtracker_types::UserId;
use m2m_core::{Principal, Verifier};
use serde::de::DeserializeOwned;
use std::sync::{Arc, LazyLock};

use service_kit::LogThrottle;
use tracing::Instrument as _;

use super::ApiContext;
use crate::error::ApiError;
use crate::policy::{Access, Action, Role, access};

impl FromRef<ApiContext> for Arc<Verifier> {
    fn from_ref(ctx: &ApiContext) -> Self {
        ctx.verifier.clone()
    }
}

/// The audit name of `principal`: `user:user_…`, or `user:user_… (act:user_…)` when someone
/// is impersonating the user (Clerk's `act` claim), or `machine:mch_…`.
pub fn actor_of(principal: &Principal) -> String {
    match principal {
        Principal::User(u) => match &u.actor {
            Some(act) => format!("user:{} (act:{})", u.user_id, impersonator(act)),
            None => principal.actor(),
        },
        Principal::Machine(_) => principal.actor(),
    }
}

/// The impersonator's id from an `act` claim (`{"sub": "user_…", …}`): only an id's characters,
/// at most 64, so nothing odd reaches the audit trail; `unknown` when it has no usable `sub`.
pub fn impersonator(act: &serde_json::Value) -> String {
    act.get("sub")
        .and_then(serde_json::Value::as_str)
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .unwrap_or("unknown")
        .to_owned()
}

/// Any authenticated caller, role or not: m2m-core's `Principal`, verified in an `auth` span
/// (with traces on, a Clerk verification shows as its `clerk` child; a cache hit, or a JWT
/// checked locally, has none) and refusals counted in `auth_failures_total`. The span's target
/// is `spans` at DEBUG, which only traces turn on ([`service_kit::trace`]), so it costs
/// nothing per request otherwise.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequestParts<ApiContext> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &ApiContext,
    ) -> Result<Self, Self::Rejection> {
        Principal::from_request_parts(parts, ctx)
            .instrument(tracing::debug_span!(target: "spans", "auth"))
            .await
            .inspect_err(|r| ctx.metrics.auth_failure(r))
            .map(Self)
            .map_err(ApiError::from)
    }
}

/// The authenticated caller and its role. A machine with no role is refused (403), never trusted.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The user's id (the session's subject), parsed once; `None` for a machine.
    pub user: Option<UserId>,
    pub role: Role,
    /// `user:…` (with `(act:…)` when impersonated) or `machine:…`, for the audit trail.
    pub actor: String,
}

impl FromRequestParts<ApiContext> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &ApiContext,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, ctx).await?;
        let user = match &principal {
            // Clerk's user ids are `user_…`: a session whose subject is not one is refused, so
            // a user's own-data rules never meet an id they cannot compare.
            Principal::User(u) => Some(UserId::parse(&u.user_id).map_err(|_| {
                ApiError::Forbidden("the session's subject is not a Clerk user id".into())
            })?),
            Principal::Machine(_) => None,
        };
        let role = match &principal {
            Principal::User(_) => Role::User,
            Principal::Machine(m) => match ctx.roles.iter().find(|(id, _)| *id == m.machine_id) {
                Some((_, role)) => *role,
                None => {
                    // A valid token, so a known machine; still one line per request unthrottled.
                    static NO_ROLE: LazyLock<LogThrottle> = LazyLock::new(LogThrottle::default);
                    if let Some(suppressed) = NO_ROLE.admit() {
                        tracing::warn!(machine_id = %m.machine_id, suppressed, "authenticated machine has no role in this API");
                    }
                    return Err(ApiError::Forbidden(format!(
                        "machine {} has no role in this API",
                        m.machine_id
                    )));
                }
            },
        };
        let actor = actor_of(&principal);
        Ok(Self {
            principal,
            user,
            role,
            actor,
        })
    }
}

impl Caller {
    /// The caller's user id, if a user.
    pub fn user_id(&self) -> Option<&UserId> {
        self.user.as_ref()
    }

    /// What the caller may reach for `action`; 403 when nothing.
    pub fn allowed(&self, action: Action) -> Result<Access, ApiError> {
        match access(self.role, action) {
            Access::No => Err(ApiError::Forbidden(format!(
                "{} may not do this",
                role_name(self.role)
            ))),
            a => Ok(a),
        }
    }

    /// 403 unless the caller may act on `owner`'s data.
    pub fn require(&self, action: Action, owner: &UserId) -> Result<(), ApiError> {
        match self.allowed(action)? {
            Access::Any => Ok(()),
            _ if self.user_id() == Some(owner) => Ok(()),
            _ => Err(ApiError::Forbidden(
                "you may only access your own data".into(),
            )),
        }
    }

    /// Like [`require`](Self::require), but answers 404 so other users' ids are not disclosed.
    pub fn require_visible(
        &self,
        action: Action,
        owner: &UserId,
        what: &'static str,
    ) -> Result<(), ApiError> {
        match self.require(action, owner) {
            Err(ApiError::Forbidden(_))
                if self.role == Role::User && access(Role::User, action) == Access::Own =>
            {
                Err(ApiError::NotFound(what))
            }
            other => other,
        }
    }

    /// For lists: `Some(user)` when the caller sees only its own data.
    pub fn list_scope(&self, action: Action) -> Result<Option<UserId>, ApiError> {
        match self.allowed(action)? {
            Access::Any => Ok(None),
            // Own data only: a caller with no user id has none, so it sees nothing.
            _ => self
                .user
                .clone()
                .map(Some)
                .ok_or_else(|| ApiError::Forbidden("only users have their own data".into())),
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "a user",
        Role::Representer => "the candidate-representer",
        Role::Applier => "the job-applier",
    }
}

/// `Json<T>` with problem+json rejections: 415 without a JSON content type, 413 over the body
/// limit, 400 for invalid JSON, 422 naming the offending field (its path, e.g. `questions[2]`).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::Unsupported(
                "expected Content-Type: application/json".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge("request body too large".into())
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        parse_json(&bytes).map(Self)
    }
}

/// Parses a JSON body: 400 when it is not JSON, 422 naming the field when it does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize::<_, T>(&mut de);
    if parsed.is_ok() {
        // Trailing garbage after the value is a syntax error too.
        de.end()
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    }
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => {
            let inner = e.inner();
            if !matches!(inner.classify(), serde_json::error::Category::Data) {
                return Err(ApiError::BadRequest(format!("invalid JSON: {inner}")));
            }
            let message = inner.to_string();
            let path = e.path().to_string();
            let field = if let Some(rest) = message.strip_prefix("unknown field `") {
                rest.split('`').next().unwrap_or_default().to_owned()
            } else if path == "." || path.is_empty() {
                message.split('`').nth(1).unwrap_or("body").to_owned()
            } else {
                path
            };
            Err(ApiError::invalid(&field, message))
        }
    }
}

/// `Query<T>` with a 422 rejection.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| ApiError::invalid("query", e.body_text()))
    }
}
