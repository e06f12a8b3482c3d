//! What every receiving glue shares: turning a request's headers into a [`Principal`] or an
//! [`AuthRejection`], the per-route [`Require`]ments, and how a rejection is answered (RFC 6750 +
//! RFC 9457 problem+json for HTTP, a trailers-only status for gRPC). The axum extractor and the
//! tower layer both call these, so the two cannot answer differently.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::verify::{Principal, VerifyError};

/// 403 detail when a machine calls a route for users.
pub(crate) const FOR_USERS: &str = "this route is for users";
/// 403 detail when a user calls a route for machines.
pub(crate) const FOR_MACHINES: &str = "this route is for machines";
/// 403 detail when a machine not on the route's list calls it.
pub(crate) const MACHINE_NOT_ALLOWED: &str = "this machine is not allowed to call this route";

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejection {
    /// Authentication failed.
    Verify(VerifyError),
    /// Authenticated, but this caller may not do this (403).
    Forbidden(&'static str),
}

impl From<VerifyError> for AuthRejection {
    fn from(e: VerifyError) -> Self {
        Self::Verify(e)
    }
}

/// gRPC status codes a rejection maps to (grpc/grpc `doc/statuscodes.md`).
mod grpc_code {
    pub const INTERNAL: u8 = 13;
    pub const UNAVAILABLE: u8 = 14;
    pub const UNAUTHENTICATED: u8 = 16;
    pub const PERMISSION_DENIED: u8 = 7;
}

impl AuthRejection {
    /// The HTTP status: 401, 403, 503 (Clerk or the JWKS unreachable) or 500 (this server
    /// cannot verify anything).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Verify(VerifyError::Missing | VerifyError::Malformed(_))
            | Self::Verify(VerifyError::Invalid(_)) => StatusCode::UNAUTHORIZED,
            Self::Verify(VerifyError::Unavailable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Verify(VerifyError::Misconfigured(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The gRPC status code: `UNAUTHENTICATED` (16), `PERMISSION_DENIED` (7), `UNAVAILABLE` (14)
    /// or `INTERNAL` (13), in the order of [`status`](Self::status)'s 401, 403, 503, 500.
    pub fn grpc_code(&self) -> u8 {
        match self.status() {
            StatusCode::UNAUTHORIZED => grpc_code::UNAUTHENTICATED,
            StatusCode::FORBIDDEN => grpc_code::PERMISSION_DENIED,
            StatusCode::SERVICE_UNAVAILABLE => grpc_code::UNAVAILABLE,
            _ => grpc_code::INTERNAL,
        }
    }

    /// The human-readable detail: one of our fixed strings, never anything from the token.
    pub fn detail(&self) -> &'static str {
        match self {
            Self::Verify(VerifyError::Missing) => "missing bearer token",
            Self::Verify(e @ (VerifyError::Malformed(_) | VerifyError::Invalid(_))) => {
                e.description().unwrap_or("invalid token")
            }
            Self::Verify(VerifyError::Unavailable { .. }) => {
                "authentication is temporarily unavailable; retry later"
            }
            Self::Verify(VerifyError::Misconfigured(_)) => "the server cannot verify credentials",
            Self::Forbidden(detail) => detail,
        }
    }

    /// The RFC 6750 challenge, if this rejection carries one.
    fn challenge(&self) -> Option<HeaderValue> {
        match self {
            Self::Verify(VerifyError::Missing) => Some(HeaderValue::from_static("Bearer")),
            Self::Verify(VerifyError::Malformed(_) | VerifyError::Invalid(_)) => {
                // The description is one of our fixed strings: nothing from the token.
                HeaderValue::from_str(&format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    self.detail()
                ))
                .ok()
            }
            Self::Forbidden(_) => Some(HeaderValue::from_static(
                "Bearer error=\"insufficient_scope\"",
            )),
            Self::Verify(VerifyError::Unavailable { .. } | VerifyError::Misconfigured(_)) => None,
        }
    }

    fn retry_after(&self) -> Option<HeaderValue> {
        match self {
            Self::Verify(VerifyError::Unavailable { retry_after, .. }) => {
                Some(HeaderValue::from(retry_after.as_secs().max(1)))
            }
            _ => None,
        }
    }

    /// The HTTP answer: the [`status`](Self::status), an `application/problem+json` body (RFC
    /// 9457), `WWW-Authenticate` (RFC 6750) on 401 and 403, `Retry-After` on 503.
    pub fn http_response(&self) -> Response<Full<Bytes>> {
        let status = self.status();
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.detail(),
        });
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        self.add_headers(headers);
        response
    }

    /// The gRPC answer: HTTP 200, trailers-only, `grpc-status` [`grpc_code`](Self::grpc_code) and
    /// `grpc-message` [`detail`](Self::detail); `www-authenticate` and `retry-after` are passed as
    /// metadata, as on HTTP.
    pub fn grpc_response(&self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::new()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(
            "grpc-status",
            HeaderValue::from(u16::from(self.grpc_code())),
        );
        if let Ok(message) = HeaderValue::from_str(&grpc_message(self.detail())) {
            headers.insert("grpc-message", message);
        }
        self.add_headers(headers);
        response
    }

    /// [`grpc_response`](Self::grpc_response) when the request is gRPC (`content-type:
    /// application/grpc…`), else [`http_response`](Self::http_response).
    pub fn response_for(&self, request_headers: &HeaderMap) -> Response<Full<Bytes>> {
        if is_grpc(request_headers) {
            self.grpc_response()
        } else {
            self.http_response()
        }
    }

    fn add_headers(&self, headers: &mut HeaderMap) {
        if let Some(v) = self.challenge() {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(v) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, v);
        }
    }
}

/// Whether a request is gRPC (any `application/grpc` content type: `+proto`, `-web`, …).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2): printable ASCII but `%` as is.
fn grpc_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Authenticates a request: the [`Principal`] an earlier layer or extractor put in `extensions`,
/// else the `Authorization` header verified by `verifier` (the principal is then stored in
/// `extensions` for handlers and later layers). Logs why a request was refused, without the
/// token.
#[cfg(any(feature = "axum", feature = "tower"))]
pub(crate) async fn authenticate(
    verifier: &crate::Verifier,
    headers: &HeaderMap,
    extensions: &mut http::Extensions,
) -> Result<Principal, AuthRejection> {
    if let Some(p) = extensions.get::<Principal>() {
        return Ok(p.clone());
    }
    let header = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let client = peer(extensions).map(|p| verifier.client_addr(p, headers));
    let principal = verifier
        .verify_header_from(header, client)
        .await
        .inspect_err(|e| match e {
            // The cause (this service's key refused, Clerk down, budget spent, JWKS
            // unreachable) is logged where it happens, rate-limited: one line per request would
            // let a flood flood the log.
            VerifyError::Misconfigured(m) => {
                tracing::debug!(error = %m, "cannot verify credentials")
            }
            VerifyError::Unavailable { reason, .. } => {
                tracing::debug!(%reason, "credentials could not be verified now")
            }
            other => tracing::debug!(reason = %other, "credentials rejected"),
        })?;
    extensions.insert(principal.clone());
    Ok(principal)
}

/// The connection's peer: a [`PeerAddr`](crate::verifier::PeerAddr) the server inserted, else axum's
/// `ConnectInfo<SocketAddr>` (which `service_kit::serve` and `into_make_service_with_connect_info`
/// insert). `None` when neither is there: the request then draws on the whole miss budget.
#[cfg(any(feature = "axum", feature = "tower"))]
fn peer(extensions: &http::Extensions) -> Option<std::net::IpAddr> {
    if let Some(crate::verifier::PeerAddr(ip)) = extensions.get::<crate::verifier::PeerAddr>() {
        return Some(*ip);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(addr.ip());
    }
    None
}

/// Who may call a route or gRPC method, checked after authentication; a caller that does not
/// qualify gets 403 (`PERMISSION_DENIED`).
///
/// Clerk machines carry no role of their own, and an M2M token's custom claims are chosen by the
/// machine that mints it, so a "role" read from the claims would be the caller's own say-so. A
/// role is therefore a set of machine ids: `Require::machine_ids([applier_id])`.
#[derive(Debug, Clone)]
pub struct Require(Rule);

#[derive(Debug, Clone)]
enum Rule {
    Authenticated,
    User,
    Machine,
    MachineIds(Arc<[String]>),
    Either(Box<Rule>, Box<Rule>),
}

impl Require {
    /// Any authenticated caller, user or machine (the default).
    pub fn authenticated() -> Self {
        Self(Rule::Authenticated)
    }

    /// A user (Clerk session token).
    pub fn user() -> Self {
        Self(Rule::User)
    }

    /// A machine (M2M token) of any id that this service accepts.
    pub fn machine() -> Self {
        Self(Rule::Machine)
    }

    /// A machine whose id (`mch_…`) is one of `ids`.
    pub fn machine_ids<I, S>(ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(Rule::MachineIds(ids.into_iter().map(Into::into).collect()))
    }

    /// This requirement or `other` (e.g. `Require::user().or(Require::machine_ids([..]))`). A
    /// caller meeting neither is refused with `other`'s reason.
    pub fn or(self, other: Require) -> Self {
        Self(Rule::Either(Box::new(self.0), Box::new(other.0)))
    }

    /// Whether `principal` qualifies; otherwise the 403.
    pub fn check(&self, principal: &Principal) -> Result<(), AuthRejection> {
        self.0.check(principal).map_err(AuthRejection::Forbidden)
    }
}

impl Rule {
    fn check(&self, principal: &Principal) -> Result<(), &'static str> {
        match (self, principal) {
            (Self::Authenticated, _) | (Self::User, Principal::User(_)) => Ok(()),
            (Self::Machine, Principal::Machine(_)) => Ok(()),
            (Self::User, Principal::Machine(_)) => Err(FOR_USERS),
            (Self::Machine, Principal::User(_)) => Err(FOR_MACHINES),
            (Self::MachineIds(ids), p) => match p.as_machine() {
                Some(m) if ids.contains(&m.machine_id) => Ok(()),
                _ => Err(MACHINE_NOT_ALLOWED),
            },
            (Self::Either(a, b), p) => a.check(p).or_else(|_| b.check(p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Reason;

    #[test]
    fn grpc_messages_are_percent_encoded_printable_ascii() {
        assert_eq!(grpc_message("token-expired"), "token-expired");
        assert_eq!(grpc_message("100% sure\n"), "100%25 sure%0A");
        assert_eq!(grpc_message("é"), "%C3%A9");
    }

    #[test]
    fn statuses_and_grpc_codes_line_up() {
        let cases = [
            (AuthRejection::Verify(VerifyError::Missing), 401, 16),
            (
                AuthRejection::Verify(VerifyError::Invalid(Reason::Expired)),
                401,
                16,
            ),
            (
                AuthRejection::Verify(VerifyError::Malformed(Reason::EmptyToken)),
                401,
                16,
            ),
            (AuthRejection::Forbidden(FOR_USERS), 403, 7),
            (
                AuthRejection::Verify(VerifyError::Unavailable {
                    reason: "clerk down".into(),
                    retry_after: std::time::Duration::from_secs(3),
                }),
                503,
                14,
            ),
            (
                AuthRejection::Verify(VerifyError::Misconfigured("x".into())),
                500,
                13,
            ),
        ];
        for (rejection, status, code) in cases {
            assert_eq!(rejection.status().as_u16(), status, "{rejection:?}");
            assert_eq!(rejection.grpc_code(), code, "{rejection:?}");
            let grpc = rejection.grpc_response();
            assert_eq!(grpc.status(), StatusCode::OK);
            assert_eq!(grpc.headers()["grpc-status"], code.to_string().as_str());
            assert_eq!(
                grpc.headers()["grpc-message"],
                grpc_message(rejection.detail()).as_str()
            );
            assert_eq!(rejection.http_response().status().as_u16(), status);
        }
    }
}
