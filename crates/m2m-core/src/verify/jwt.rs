//! JWT verification in the order of Clerk's `verifyToken` (docs/clerk-behaviour.md): category, `typ`,
//! `alg`, key, **signature before any claim**, then `sub`, `azp`, `exp`, `nbf`, `iat`, `iss` (and `azp` for sessions, checked after the common claims).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::claims::{Claim, SessionClaims};
use super::classify::{CAT_M2M, CAT_TEMPLATE, DecodedJwt, JwtHeader, classify, decode_raw};
use super::error::{Reason, VerifyError};
use super::jwks::KeyStore;
use super::jwt_cache::{Checked, Hashed, JwtCache, JwtCacheSettings};
use super::principal::{Claims, MachinePrincipal, Principal, UserPrincipal};
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

/// Verifies session and M2M JWTs with keys from a [`KeyStore`], remembering the ones it accepted
/// (see [`JwtCache`]).
#[derive(Debug)]
pub struct JwtVerifier {
    keys: KeyStore,
    policy: JwtPolicy,
    clock: Arc<dyn Clock>,
    cache: Option<JwtCache>,
}

/// The largest RSA signature (8192-bit keys, the most `RSA_PKCS1_2048_8192_*` accepts).
const MAX_SIGNATURE: usize = 1024;

impl JwtVerifier {
    /// A verifier using `keys` and `policy`, without a cache.
    pub fn new(keys: KeyStore, policy: JwtPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys,
            policy,
            clock,
            cache: None,
        }
    }

    /// Keeps accepted tokens in a [`JwtCache`] with `settings` (none when they turn it off).
    pub fn with_cache(mut self, settings: &JwtCacheSettings) -> Self {
        self.cache = JwtCache::new(settings);
        self
    }

    /// The key store (e.g. to prefetch at start).
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The cache of accepted tokens, if on.
    pub fn cache(&self) -> Option<&JwtCache> {
        self.cache.as_ref()
    }

    /// Verifies a JWT, session or M2M as [`classify`] routes it. A token accepted before is
    /// answered from the cache once its key and time claims are checked again.
    pub async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        let cached = match &self.cache {
            // Not even shaped like a JWT: classify says why, with no hashing.
            Some(cache) if token.contains('.') => {
                let hashed = JwtCache::hash(token);
                let key = hashed.key;
                if let Some(entry) = cache.get(&key) {
                    match self.recheck(&entry.checked).await {
                        Ok(true) => {
                            cache.hit();
                            return Ok(entry.principal.clone());
                        }
                        // Another key now answers to its kid: verify again from scratch.
                        Ok(false) => cache.drop_entry(&key),
                        Err(e) => {
                            if matches!(e, VerifyError::Invalid(_)) {
                                cache.drop_entry(&key);
                            }
                            return Err(e);
                        }
                    }
                }
                cache.miss();
                Some((cache, hashed))
            }
            _ => None,
        };
        // Boxed: a full verification (and a JWKS fetch under it) kept inline would make this
        // future, and every one that awaits it up to the request's, larger than a cache hit
        // needs, and copied on each move.
        Box::pin(self.verify_uncached(token, cached)).await
    }

    /// [`verify`](Self::verify) without the cache's answer; the result goes into the cache when
    /// `cached` holds it and the token's hashes.
    async fn verify_uncached(
        &self,
        token: &str,
        cached: Option<(&JwtCache, Hashed)>,
    ) -> Result<Principal, VerifyError> {
        let signed = cached.as_ref().map(|(_, h)| h);
        // `mt_…` (not reached through `Verifier`, which sends those to the opaque verifier) and
        // what is not even shaped like a JWT: `classify` says why.
        if token.starts_with("mt_") || !token.contains('.') {
            classify(token)?;
            return Err(VerifyError::Invalid(Reason::TypeMismatch));
        }
        // Routed as `classify` routes, from the claims a session token needs and nothing more:
        // no `Value` of every claim is built for a session token.
        let raw = decode_raw(token)?;
        let claims = SessionClaims::parse(&raw.payload)
            .map_err(|_| VerifyError::Malformed(Reason::NotJsonObjects))?;
        let machine_subject = claims.sub.as_str().is_some_and(|s| s.starts_with("mch_"));
        let (principal, checked) = if machine_subject || raw.header.cat.as_str() == Some(CAT_M2M) {
            let payload = serde_json::from_str::<Value>(&raw.payload)
                .map_err(|_| VerifyError::Malformed(Reason::NotJsonObjects))?;
            let jwt = DecodedJwt {
                header: raw.header,
                payload,
                signing_input: raw.signing_input,
                signature: raw.signature,
            };
            let (m, checked) = self.m2m(jwt, signed).await?;
            (Principal::Machine(m), checked)
        } else {
            let token = Parts {
                header: &raw.header,
                signing_input: raw.signing_input,
                signature: raw.signature,
            };
            let (u, checked) = self.session(token, &claims, &raw.payload, signed).await?;
            (Principal::User(u), checked)
        };
        if let Some((cache, hashed)) = cached {
            cache.insert(
                hashed.key,
                &principal,
                checked,
                self.now_ms(),
                self.clock.now(),
            );
        }
        Ok(principal)
    }

    /// A session token, its claims read from `json` (its payload).
    async fn session(
        &self,
        token: Parts<'_>,
        claims: &SessionClaims<'_>,
        json: &str,
        signed: Option<&Hashed>,
    ) -> Result<(UserPrincipal, Checked), VerifyError> {
        let header = token.header;
        if matches!(header.cat.as_str(), Some(CAT_M2M | CAT_TEMPLATE)) {
            return Err(VerifyError::Invalid(Reason::TypeMismatch));
        }
        if claims.sub.as_str().is_some_and(|s| s.starts_with("mch_")) {
            return Err(VerifyError::Invalid(Reason::TypeMismatch));
        }
        if matches!(header.typ.as_str(), Some("at+jwt" | "application/at+jwt")) {
            return Err(VerifyError::Invalid(Reason::TypeMismatch));
        }
        let (alg, key) = self.check_signature(token, signed).await?;
        let checked = self.check_common(
            Common {
                sub: &claims.sub,
                exp: &claims.exp,
                nbf: &claims.nbf,
                iat: &claims.iat,
                iss: &claims.iss,
            },
            header,
            alg,
            key,
        )?;
        // `azp` is the browser origin a session token was minted for; M2M tokens have none.
        let azp = claims.azp.as_str();
        if !self.policy.authorized_parties.is_empty()
            && !azp.is_some_and(|a| self.policy.authorized_parties.iter().any(|p| p == a))
        {
            return Err(VerifyError::Invalid(Reason::AuthorizedParties));
        }
        if claims.sts.as_str() == Some("pending") {
            return Err(VerifyError::Invalid(Reason::PendingSession));
        }
        let user = UserPrincipal {
            user_id: non_empty(&claims.sub)?,
            session_id: non_empty(&claims.sid)?,
            org_id: claims.org_id().map(str::to_owned),
            authorized_party: azp.map(str::to_owned),
            actor: claims.act.clone(),
            claims: Claims::from_checked_json(json),
        };
        Ok((user, checked))
    }

    async fn m2m(
        &self,
        jwt: DecodedJwt<'_>,
        signed: Option<&Hashed>,
    ) -> Result<(MachinePrincipal, Checked), VerifyError> {
        if jwt.header.cat.is_present() && jwt.header.cat.as_str() != Some(CAT_M2M) {
            return Err(VerifyError::Invalid(Reason::TypeMismatch));
        }
        let (mut claims, checked) = self.verify_common(jwt, signed).await?;
        let machine_id = string_claim(&claims, "sub")?;
        if !machine_id.starts_with("mch_") {
            return Err(VerifyError::Invalid(Reason::TypeMismatch));
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
            return Err(VerifyError::Invalid(Reason::NotScoped));
        }
        let token_id = claims
            .get("jti")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let expires_at_ms = claims
            .get("exp")
            .and_then(Value::as_f64)
            .map(|e| (e * 1000.0) as i64);
        // What remains once the registered claims are taken out is the custom claims.
        for registered in ["iss", "sub", "exp", "nbf", "iat", "jti"] {
            claims.remove(registered);
        }
        let machine = MachinePrincipal {
            machine_id,
            token_id,
            scopes,
            claims: if claims.is_empty() {
                None
            } else {
                Some(Arc::new(Value::Object(claims)))
            },
            format: TokenFormat::Jwt,
            expires_at_ms,
        };
        Ok((machine, checked))
    }

    /// The checks every JWT passes, in Clerk's order; the claims, and what a cache hit must
    /// check again. `signed`: the token's hashes, when the cache already took them.
    async fn verify_common(
        &self,
        jwt: DecodedJwt<'_>,
        signed: Option<&Hashed>,
    ) -> Result<(Map<String, Value>, Checked), VerifyError> {
        let token = Parts {
            header: &jwt.header,
            signing_input: jwt.signing_input,
            signature: jwt.signature,
        };
        let (alg, key) = self.check_signature(token, signed).await?;
        // Only now are claims looked at.
        let Value::Object(claims) = jwt.payload else {
            return Err(VerifyError::Invalid(Reason::Invalid));
        };
        let checked = self.check_common(
            Common {
                sub: &Claim::of(&claims, "sub"),
                exp: &Claim::of(&claims, "exp"),
                nbf: &Claim::of(&claims, "nbf"),
                iat: &Claim::of(&claims, "iat"),
                iss: &Claim::of(&claims, "iss"),
            },
            &jwt.header,
            alg,
            key,
        )?;
        Ok((claims, checked))
    }

    /// The header's `typ` and `alg`, the key, the signature: all before any claim is read.
    /// Returns the algorithm and the fingerprint of the key that verified it.
    async fn check_signature(
        &self,
        token: Parts<'_>,
        signed: Option<&Hashed>,
    ) -> Result<(Algorithm, [u8; 32]), VerifyError> {
        let header = token.header;
        if header.typ.is_present() && header.typ.as_str() != Some("JWT") {
            return Err(VerifyError::Invalid(Reason::Type));
        }
        let alg = match header.alg.as_str() {
            Some("RS256") => Algorithm::RS256,
            Some("RS384") => Algorithm::RS384,
            Some("RS512") => Algorithm::RS512,
            _ => return Err(VerifyError::Invalid(Reason::Algorithm)),
        };
        // typ and alg are checked before the key is resolved (Clerk resolves first), so a token
        // with a bad header never causes a JWKS fetch; the outcome is the same rejection.
        let key = self.keys.key(header.kid.as_str(), alg).await?;
        // The signature's bytes on the stack: as jsonwebtoken, a part that is not base64url (or
        // longer than any RSA signature we accept) is an invalid signature.
        let mut sig = [0u8; MAX_SIGNATURE + 3];
        let valid = URL_SAFE_NO_PAD
            .decode_slice(token.signature, &mut sig)
            .is_ok_and(|n| {
                let sig = &sig[..n];
                n <= MAX_SIGNATURE
                    && match signed {
                        // The signed part was hashed for the cache key already.
                        Some(h)
                            if alg == Algorithm::RS256
                                && h.signed_len == token.signing_input.len() =>
                        {
                            key.verify_sha256(&h.signed, sig)
                        }
                        _ => key.verify(alg, token.signing_input.as_bytes(), sig),
                    }
            });
        if !valid {
            return Err(VerifyError::Invalid(Reason::Signature));
        }
        Ok((alg, *key.fingerprint()))
    }

    /// The claims every JWT must have right once its signature holds, in Clerk's order: `sub`
    /// a string, `exp`, `nbf`, `iat` (numbers, against now ± skew), `iss`.
    fn check_common(
        &self,
        c: Common<'_>,
        header: &JwtHeader,
        alg: Algorithm,
        key: [u8; 32],
    ) -> Result<Checked, VerifyError> {
        if c.sub.as_str().is_none() {
            return Err(VerifyError::Invalid(Reason::Invalid));
        }
        let Some(exp) = c.exp.as_f64() else {
            return Err(VerifyError::Invalid(Reason::Invalid));
        };
        let number = |claim: &Claim<'_>| {
            if claim.is_absent() {
                return Ok(None);
            }
            claim
                .as_f64()
                .map(Some)
                .ok_or(VerifyError::Invalid(Reason::Invalid))
        };
        let now_ms = self.now_ms();
        check_exp(exp, now_ms)?;
        let nbf = number(c.nbf)?;
        check_nbf(nbf, now_ms)?;
        let iat = number(c.iat)?;
        check_iat(iat, now_ms)?;
        if let Some(expected) = &self.policy.issuer
            && c.iss.as_str() != Some(expected.as_str())
        {
            return Err(VerifyError::Invalid(Reason::Issuer));
        }
        Ok(Checked {
            kid: header.kid.as_str().map(str::to_owned),
            alg,
            key,
            exp,
            nbf,
            iat,
        })
    }

    /// A cached verdict still holds: the key published under its `kid` now (resolved by the
    /// JWKS rules, so a stale set is refreshed first) is the one that verified it (`Ok(false)`
    /// if another key is), and its time claims hold now.
    async fn recheck(&self, c: &Checked) -> Result<bool, VerifyError> {
        let key = self.keys.key(c.kid.as_deref(), c.alg).await?;
        if key.fingerprint() != &c.key {
            return Ok(false);
        }
        let now_ms = self.now_ms();
        check_exp(c.exp, now_ms)?;
        check_nbf(c.nbf, now_ms)?;
        check_iat(c.iat, now_ms)?;
        Ok(true)
    }

    fn now_ms(&self) -> f64 {
        self.clock.unix_now().as_millis() as f64
    }
}

const SKEW_MS: f64 = CLOCK_SKEW.as_millis() as f64;

/// Expired when `exp·1000 ≤ now − skew`.
pub(crate) fn expired(exp: f64, now_ms: f64) -> bool {
    exp * 1000.0 <= now_ms - SKEW_MS
}

fn check_exp(exp: f64, now_ms: f64) -> Result<(), VerifyError> {
    if expired(exp, now_ms) {
        return Err(VerifyError::Invalid(Reason::Expired));
    }
    Ok(())
}

/// Not active yet when `nbf·1000 > now + skew`.
fn check_nbf(nbf: Option<f64>, now_ms: f64) -> Result<(), VerifyError> {
    if nbf.is_some_and(|nbf| nbf * 1000.0 > now_ms + SKEW_MS) {
        return Err(VerifyError::Invalid(Reason::NotActiveYet));
    }
    Ok(())
}

/// Issued in the future when `iat·1000 > now + skew`.
fn check_iat(iat: Option<f64>, now_ms: f64) -> Result<(), VerifyError> {
    if iat.is_some_and(|iat| iat * 1000.0 > now_ms + SKEW_MS) {
        return Err(VerifyError::Invalid(Reason::IatInFuture));
    }
    Ok(())
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

/// A token's signed parts and its decoded header.
#[derive(Clone, Copy)]
struct Parts<'a> {
    header: &'a JwtHeader,
    signing_input: &'a str,
    signature: &'a str,
}

/// The claims [`JwtVerifier::check_common`] reads, from a session token's [`SessionClaims`] or
/// an M2M token's `Value`.
struct Common<'a> {
    sub: &'a Claim<'a>,
    exp: &'a Claim<'a>,
    nbf: &'a Claim<'a>,
    iat: &'a Claim<'a>,
    iss: &'a Claim<'a>,
}

/// A claim that must be a non-empty string, owned.
fn non_empty(claim: &Claim<'_>) -> Result<String, VerifyError> {
    claim
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or(VerifyError::Invalid(Reason::Invalid))
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<String, VerifyError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or(VerifyError::Invalid(Reason::Invalid))
}
