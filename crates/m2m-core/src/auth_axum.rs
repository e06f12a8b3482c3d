//! axum glue: `Principal` as an extractor, and rejections as RFC 6750 + RFC 9457 responses.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthRejection;
use crate::auth::{FOR_MACHINES, FOR_USERS, MACHINE_NOT_ALLOWED, authenticate};
use crate::verify::{MachinePrincipal, Principal, UserPrincipal, Verifier};

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.http_response().map(axum::body::Body::new)
    }
}

/// The caller, verified with the state's [`Verifier`]; a [`Principal`] that an
/// `AuthLayer` or an earlier extractor already put in the request's
/// extensions is reused.
impl<S> FromRequestParts<S> for Principal
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let verifier = Arc::<Verifier>::from_ref(state);
        authenticate(&verifier, &parts.headers, &mut parts.extensions).await
    }
}

/// Extractor that requires a user.
#[derive(Debug, Clone)]
pub struct RequireUser(pub UserPrincipal);

impl<S> FromRequestParts<S> for RequireUser
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::User(u) => Ok(Self(u)),
            Principal::Machine(_) => Err(AuthRejection::Forbidden(FOR_USERS)),
        }
    }
}

/// Extractor that requires a machine (of any id; check with [`require_machine`] for an
/// allow-list).
#[derive(Debug, Clone)]
pub struct RequireMachine(pub MachinePrincipal);

impl<S> FromRequestParts<S> for RequireMachine
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Machine(m) => Ok(Self(m)),
            Principal::User(_) => Err(AuthRejection::Forbidden(FOR_MACHINES)),
        }
    }
}

/// The machine, if it is one of `allowed`; otherwise 403. An authenticated machine that is not
/// on the list is never silently trusted.
pub fn require_machine<'a>(
    principal: &'a Principal,
    allowed: &[&str],
) -> Result<&'a MachinePrincipal, AuthRejection> {
    principal
        .machine_in(allowed)
        .ok_or(AuthRejection::Forbidden(MACHINE_NOT_ALLOWED))
}
