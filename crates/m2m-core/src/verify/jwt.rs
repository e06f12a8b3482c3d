//! JWT verification in the order of Clerk's `verifyToken` (docs/clerk-behaviour.md): category, `typ`,
//! `alg`, key, **signature before any claim**, then `sub`, `azp`, `exp`, `nbf`, `iat`, `iss` (and `azp` for sessions, checked after the common claims).

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::classify::{CAT_M2M, CAT_TEMPLATE, DecodedJwt};
use super::error::{VerifyError, reason};
use super::jwks::KeyStore;
use super::principal::{MachinePrincipal, UserPrincipal};
use crate::clock::Clock;
use crate::token_format::TokenFormat;

/// Clock skew allowed on `exp`, `nbf` and `iat` (Clerk's default).
pub const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// Claims policy for JWTs.
#[derive(Debug, Clone, Default)]
pub struct JwtPolicy {
    /// When non-empty, a session token's `azp` must be present and one of these (exact match).
    /// Not applied to M2M JWTs, which carry no `azp`.
    pub authorized_parties: Vec<String>,
    /// When set, `iss` must equal it.
    pub issuer: Option<String>,
    /// This service's own machine id (`mch_…`, `CLERK_MACHINE_ID`). An M2M JWT is accepted only
    /// if its `scopes` claim lists this id (`aud` never counts); without it every M2M JWT is
    /// refused, since any machine's token for any other service would otherwise pass.
    pub receiver: Option<String>,
}

/// Verifies session and M2M JWTs with keys from a [`KeyStore`].
#[derive(Debug)]
pub struct JwtVerifier {
    keys: KeyStore,
    policy: JwtPolicy,
    clock: Arc<dyn Clock>,
}

impl JwtVerifier {
    /// A verifier using `keys` and `policy`.
    pub fn new(keys: KeyStore, policy: JwtPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys,
            policy,
            clock,
        }
    }

    /// The key store (e.g. to prefetch at start).
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// A user session token → the user. Rejects M2M and template categories, `mch_` subjects and
    /// pending sessions.
    pub async fn verify_session(&self, jwt: &DecodedJwt<'_>) -> Result<UserPrincipal, VerifyError> {
        match jwt.header.get("cat").and_then(Value::as_str) {
            Some(CAT_M2M) | Some(CAT_TEMPLATE) => {
                return Err(VerifyError::Invalid(reason::TYPE_MISMATCH));
            }
            _ => {}
        }
        if jwt
            .payload
            .get("sub")
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with("mch_"))
        {
            return Err(VerifyError::Invalid(reason::TYPE_MISMATCH));
        }
        if matches!(
            jwt.header.get("typ").and_then(Value::as_str),
            Some("at+jwt" | "application/at+jwt")
        ) {
            return Err(VerifyError::Invalid(reason::TYPE_MISMATCH));
        }
        let claims = self.verify_common(jwt).await?;
        // `azp` is the browser origin a session token was minted for; M2M tokens have none.
        if !self.policy.authorized_parties.is_empty() {
            let azp = claims.get("azp").and_then(Value::as_str);
            if !azp.is_some_and(|a| self.policy.authorized_parties.iter().any(|p| p == a)) {
                return Err(VerifyError::Invalid(reason::AUTHORIZED_PARTIES));
            }
        }
        if claims.get("sts").and_then(Value::as_str) == Some("pending") {
            return Err(VerifyError::Invalid(reason::PENDING_SESSION));
        }
        let user_id = string_claim(&claims, "sub")?;
        let session_id = string_claim(&claims, "sid")?;
        Ok(UserPrincipal {
            user_id,
            session_id,
            org_id: claims
                .get("o")
                .and_then(|o| o.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            authorized_party: claims.get("azp").and_then(Value::as_str).map(str::to_owned),
            actor: claims.get("act").cloned(),
            claims,
        })
    }

    /// An M2M JWT → the machine. Rejects any `cat` other than M2M and any subject that is not a
    /// machine. Verified locally: a JWT cannot be revoked.
    pub async fn verify_m2m(&self, jwt: &DecodedJwt<'_>) -> Result<MachinePrincipal, VerifyError> {
        if let Some(cat) = jwt.header.get("cat")
            && cat.as_str() != Some(CAT_M2M)
        {
            return Err(VerifyError::Invalid(reason::TYPE_MISMATCH));
        }
        let claims = self.verify_common(jwt).await?;
        let machine_id = string_claim(&claims, "sub")?;
        if !machine_id.starts_with("mch_") {
            return Err(VerifyError::Invalid(reason::TYPE_MISMATCH));
        }
        // Receiver binding: Clerk writes the machines a token is for into `scopes`, over any
        // custom claim of that name. `aud` is never used: a minting machine can set it to
        // anything through its custom claims.
        let scopes = receivers(claims.get("scopes"));
        let bound = self
            .policy
            .receiver
            .as_deref()
            .is_some_and(|me| scopes.iter().any(|s| s == me));
        if !bound {
            return Err(VerifyError::Invalid(reason::NOT_SCOPED));
        }
        let custom: serde_json::Map<String, Value> = claims
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "iss" | "sub" | "exp" | "nbf" | "iat" | "jti")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(MachinePrincipal {
            machine_id,
            token_id: claims
                .get("jti")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            scopes,
            claims: if custom.is_empty() {
                None
            } else {
                Some(Value::Object(custom))
            },
            format: TokenFormat::Jwt,
            expires_at_ms: claims
                .get("exp")
                .and_then(Value::as_f64)
                .map(|e| (e * 1000.0) as i64),
        })
    }

    async fn verify_common(&self, jwt: &DecodedJwt<'_>) -> Result<Value, VerifyError> {
        match jwt.header.get("typ") {
            None => {}
            Some(Value::String(t)) if t == "JWT" => {}
            Some(_) => return Err(VerifyError::Invalid(reason::TYPE)),
        }
        let alg = match jwt.header.get("alg").and_then(Value::as_str) {
            Some("RS256") => Algorithm::RS256,
            Some("RS384") => Algorithm::RS384,
            Some("RS512") => Algorithm::RS512,
            _ => return Err(VerifyError::Invalid(reason::ALGORITHM)),
        };
        // typ and alg are checked before the key is resolved (Clerk resolves first), so a token
        // with a bad header never causes a JWKS fetch; the outcome is the same rejection.
        let kid = jwt.header.get("kid").and_then(Value::as_str);
        let key = self.keys.key(kid, alg).await?;
        let valid =
            jsonwebtoken::crypto::verify(jwt.signature, jwt.signing_input.as_bytes(), &key, alg)
                .unwrap_or(false);
        if !valid {
            return Err(VerifyError::Invalid(reason::SIGNATURE));
        }
        // Only now are claims looked at.
        let claims = jwt.payload.clone();
        if !claims.get("sub").is_some_and(Value::is_string) {
            return Err(VerifyError::Invalid(reason::INVALID));
        }
        let now_ms = self.clock.unix_now().as_millis() as f64;
        let skew_ms = CLOCK_SKEW.as_millis() as f64;
        let Some(exp) = claims.get("exp").and_then(Value::as_f64) else {
            return Err(VerifyError::Invalid(reason::INVALID));
        };
        if exp * 1000.0 <= now_ms - skew_ms {
            return Err(VerifyError::Invalid(reason::EXPIRED));
        }
        match claims.get("nbf") {
            None => {}
            Some(v) => match v.as_f64() {
                Some(nbf) if nbf * 1000.0 > now_ms + skew_ms => {
                    return Err(VerifyError::Invalid(reason::NOT_ACTIVE_YET));
                }
                Some(_) => {}
                None => return Err(VerifyError::Invalid(reason::INVALID)),
            },
        }
        match claims.get("iat") {
            None => {}
            Some(v) => match v.as_f64() {
                Some(iat) if iat * 1000.0 > now_ms + skew_ms => {
                    return Err(VerifyError::Invalid(reason::IAT_IN_FUTURE));
                }
                Some(_) => {}
                None => return Err(VerifyError::Invalid(reason::INVALID)),
            },
        }
        if let Some(expected) = &self.policy.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(expected.as_str())
        {
            return Err(VerifyError::Invalid(reason::ISSUER));
        }
        Ok(claims)
    }
}

/// A receivers claim: a space-separated string, or an array of strings.
fn receivers(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn string_claim(claims: &Value, name: &str) -> Result<String, VerifyError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or(VerifyError::Invalid(reason::INVALID))
}
