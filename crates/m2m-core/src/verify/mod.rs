//! Verifying incoming credentials: Clerk user session JWTs and M2M tokens (opaque and JWT), on
//! the same routes, never confused with each other.
//!
//! ```text
//! Authorization header ──▶ bearer_token() ──▶ classify()
//!    mt_…                      ──▶ OpaqueVerifier: cache(sha256) → POST /m2m_tokens/verify → Machine
//!    JWT, sub mch_… or cat M2M ──▶ JwtVerifier: cache(sha256) → verify_m2m (local, JWKS)     → Machine
//!    other JWT                 ──▶ JwtVerifier: cache(sha256) → verify_session (local, JWKS) → User
//!    anything else             ──▶ 401, no network call
//! ```

mod budget;
mod builder;
mod claims;
mod classify;
mod client;
mod error;
mod header;
mod jwks;
mod jwt;
mod jwt_cache;
mod opaque;
mod principal;

use std::net::IpAddr;
use std::sync::Arc;

pub use budget::{MAX_TRACKED_CLIENTS, MissBudget};
pub use builder::VerifierConfigBuilder;
pub use classify::{
    DecodedJwt, HeaderParam, JwtHeader, TokenKind, classify, decode_jwt, is_opaque_m2m,
};
pub use client::{PeerAddr, TrustedProxies};
pub use error::{Reason, VerifyError};
pub use header::{MAX_HEADER_LEN, bearer_token};
#[cfg(feature = "cli")]
pub(crate) use jwks::JWKS_TTL;
pub use jwks::{JwksSettings, JwtKey, KeySource, KeyStore};
pub use jwt::{JwtPolicy, JwtVerifier};
pub use jwt_cache::{
    JwtCache, JwtCacheSettings, JwtCacheStats, SWEEP_EVERY as JWT_CACHE_SWEEP_EVERY,
};
pub use opaque::{OpaqueCacheSettings, OpaqueStats, OpaqueVerifier};
pub use principal::{Claims, MachinePrincipal, Principal, UserPrincipal};

use crate::clerk::ClerkClient;
use crate::clock::Clock;

/// Verifies any bearer token this API accepts.
#[derive(Debug)]
pub struct Verifier {
    opaque: Option<OpaqueVerifier>,
    jwt: Option<JwtVerifier>,
}

impl Verifier {
    /// A verifier from its parts; either may be absent (tokens of that kind are then rejected).
    /// Built by [`VerifierConfig::build`].
    pub(crate) fn new(opaque: Option<OpaqueVerifier>, jwt: Option<JwtVerifier>) -> Self {
        Self { opaque, jwt }
    }

    /// Verifies the raw `Authorization` header value (`None` when absent), from a caller whose
    /// address is not known (see [`verify_header_from`](Self::verify_header_from)).
    pub async fn verify_header(&self, header: Option<&[u8]>) -> Result<Principal, VerifyError> {
        self.verify_header_from(header, None).await
    }

    /// Verifies the raw `Authorization` header value (`None` when absent) sent by `client`
    /// (from [`client_addr`](Self::client_addr)).
    pub async fn verify_header_from(
        &self,
        header: Option<&[u8]>,
        client: Option<IpAddr>,
    ) -> Result<Principal, VerifyError> {
        let token = bearer_token(header)?;
        self.verify_token_from(token, client).await
    }

    /// Verifies a bearer token from a caller whose address is not known: an opaque token that
    /// must be asked at Clerk then draws on the whole miss budget, with no per-client share.
    pub async fn verify_token(&self, token: &str) -> Result<Principal, VerifyError> {
        self.verify_token_from(token, None).await
    }

    /// The client a request comes from, for [`verify_token_from`](Self::verify_token_from):
    /// the connection's `peer`, or, when `peer` is one of the configured trusted proxies
    /// (`M2M_VERIFY_TRUSTED_PROXIES`, none by default), the rightmost `X-Forwarded-For` hop
    /// that is not.
    pub fn client_addr(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        match &self.opaque {
            Some(o) => o.client_addr(peer, headers),
            None => peer.to_canonical(),
        }
    }

    /// Verifies a bearer token sent by `client`. An opaque token Clerk must be asked about is
    /// charged to that client's share of the miss budget first, so one client cannot spend the
    /// budget for all; JWTs are verified locally and cost no Clerk call. A kind of token this
    /// verifier has no key for is the caller's problem, not ours: 401 `token-type-not-accepted`,
    /// never a 500.
    pub async fn verify_token_from(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<Principal, VerifyError> {
        // Anything but an opaque token is the JWT verifier's, cache first.
        if let Some(v) = &self.jwt
            && !token.starts_with("mt_")
        {
            return v.verify(token).await;
        }
        match classify(token)? {
            TokenKind::OpaqueM2m => match &self.opaque {
                Some(v) => v.verify_from(token, client).await.map(Principal::Machine),
                None => Err(not_accepted("opaque M2M token")),
            },
            TokenKind::M2mJwt(_) => Err(not_accepted("M2M JWT")),
            TokenKind::SessionJwt(_) => Err(not_accepted("session JWT")),
        }
    }

    /// Opaque-token cache counters, if opaque tokens are accepted.
    pub fn opaque_stats(&self) -> Option<&Arc<OpaqueStats>> {
        self.opaque.as_ref().map(OpaqueVerifier::stats)
    }

    /// The cache of verified JWTs, if JWTs are accepted and the cache is on.
    pub fn jwt_cache(&self) -> Option<&JwtCache> {
        self.jwt.as_ref().and_then(JwtVerifier::cache)
    }

    /// Loads the JWKS now, so the first request does not pay for it. Failure is not fatal: keys
    /// are fetched again on demand.
    pub async fn prefetch_keys(&self) -> Result<usize, VerifyError> {
        match &self.jwt {
            Some(j) => j.keys().prefetch().await,
            None => Ok(0),
        }
    }
}

/// Plain `http://` to anything but this machine.
fn insecure(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        let local = match u.host_str() {
            Some("localhost") => true,
            Some(h) => h
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        u.scheme() == "http" && !local
    })
}

fn not_accepted(kind: &'static str) -> VerifyError {
    tracing::debug!(
        kind,
        "token of a type this service is not configured to accept"
    );
    VerifyError::Invalid(Reason::TypeNotAccepted)
}

/// The API side's settings (docs/verification.md, *Configuration*).
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// `CLERK_API_BASE_URL`.
    pub api_base_url: String,
    /// Key for `POST /m2m_tokens/verify`: `CLERK_MACHINE_SECRET_KEY` (this service's machine;
    /// Clerk then enforces scopes), else `CLERK_SECRET_KEY` (any token of the instance).
    pub verify_key: Option<secrecy::SecretString>,
    /// `CLERK_MACHINE_SECRET_KEY_FILE`, when `verify_key` is the machine key read from it: the
    /// verifier follows the file ([`MachineKey::watched`](crate::MachineKey::watched)), so a
    /// rotated key verifies without a restart. `None`: the key is fixed.
    pub machine_key_file: Option<std::path::PathBuf>,
    /// Where JWT keys come from: `CLERK_JWT_KEY`, else `CLERK_JWKS_URL`, else `CLERK_SECRET_KEY`.
    pub key_source: Option<KeySource>,
    /// `CLERK_AUTHORIZED_PARTIES` and `CLERK_ISSUER`.
    pub policy: JwtPolicy,
    /// `M2M_VERIFY_CACHE_TTL_SECONDS` (default 60; 0 disables the cache), the miss budget
    /// (`M2M_VERIFY_MISS_BURST`, `M2M_VERIFY_MISS_PER_SECOND`), each client's share of it
    /// (`M2M_VERIFY_MISS_PER_CLIENT_BURST`, `M2M_VERIFY_MISS_PER_CLIENT_PER_SECOND`) and who may
    /// name the client (`M2M_VERIFY_TRUSTED_PROXIES`).
    pub cache: OpaqueCacheSettings,
    /// `CLERK_MACHINE_ID`: this service's own machine (`mch_…`). Every M2M token must list it in
    /// its scopes. Without it, M2M JWTs are refused, and so are opaque tokens when they can only
    /// be verified with the instance key (Clerk then checks no scope).
    pub machine_id: Option<String>,
    /// JWKS cache (`CLERK_JWKS_CACHE_TTL_SECONDS`, default 300).
    pub jwks: JwksSettings,
    /// Cache of verified JWTs (`CLERK_JWT_CACHE_MAX_ENTRIES`, default 100,000, 0 = off;
    /// `CLERK_JWT_CACHE_MAX_MIB`, default 64).
    pub jwt_cache: JwtCacheSettings,
}

impl VerifierConfig {
    /// Settings that are legal but probably not meant; [`build`](Self::build) logs each at WARN.
    pub fn startup_warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.key_source.is_some() && self.policy.authorized_parties.is_empty() {
            out.push(
                "session JWTs are accepted but CLERK_AUTHORIZED_PARTIES is empty: a session token minted for any origin of this Clerk instance is accepted",
            );
        }
        if self.key_source.is_none()
            && (!self.policy.authorized_parties.is_empty() || self.policy.issuer.is_some())
        {
            out.push(
                "CLERK_AUTHORIZED_PARTIES / CLERK_ISSUER are set but no JWT key is (CLERK_JWT_KEY, CLERK_JWKS_URL or CLERK_SECRET_KEY): every JWT gets 401 token-type-not-accepted",
            );
        }
        if insecure(&self.api_base_url) {
            out.push(
                "CLERK_API_BASE_URL is plain http to another host: keys and tokens cross the network unencrypted (fine only for a local mock)",
            );
        }
        if let Some(KeySource::Url(url)) = &self.key_source
            && insecure(url)
        {
            out.push(
                "CLERK_JWKS_URL is plain http to another host: whoever can alter that traffic can substitute signing keys and forge any JWT (fine only for a local mock)",
            );
        }
        out
    }

    /// Builds the verifier, logging [`startup_warnings`](Self::startup_warnings), the receiver
    /// binding (which M2M tokens will be refused for want of `CLERK_MACHINE_ID`) and how long a
    /// revoked opaque token may keep working.
    pub fn build(&self, client: &ClerkClient, clock: Arc<dyn Clock>) -> Verifier {
        for w in self.startup_warnings() {
            tracing::warn!("{w}");
        }
        let opaque = self.verify_key.clone().map(|k| {
            let key = match &self.machine_key_file {
                Some(path) => crate::MachineKey::watched(k, path, clock.clone()),
                None => crate::MachineKey::fixed(k),
            };
            OpaqueVerifier::with_machine_key(client.clone(), key, self.cache.clone(), clock.clone())
                .with_receiver(self.machine_id.clone())
        });
        let mut policy = self.policy.clone();
        if policy.receiver.is_none() {
            policy.receiver.clone_from(&self.machine_id);
        }
        let jwt = self.key_source.clone().map(|s| {
            JwtVerifier::new(
                KeyStore::with_settings(s, client.clone(), clock.clone(), self.jwks.clone()),
                policy.clone(),
                clock,
            )
            .with_cache(&self.jwt_cache)
        });
        if policy.receiver.is_none() {
            if jwt.is_some() {
                tracing::warn!(
                    "CLERK_MACHINE_ID is not set: M2M tokens in JWT format are refused (token-not-scoped-to-receiver)"
                );
            }
            if opaque.as_ref().is_some_and(|o| !o.can_bind()) {
                tracing::warn!(
                    "CLERK_MACHINE_ID is not set and opaque M2M tokens can only be verified with the instance key: they are refused (token-not-scoped-to-receiver)"
                );
            }
        }
        if jwt.is_some() {
            tracing::info!(
                max_entries = self.jwt_cache.max_entries,
                max_mib = self.jwt_cache.max_bytes >> 20,
                "verified JWTs are cached until their exp (CLERK_JWT_CACHE_MAX_ENTRIES, 0 = off); exp, nbf, iat and the signing key are checked again on every use"
            );
        }
        if opaque.is_some() {
            tracing::info!(
                cache_ttl_secs = self.cache.ttl.as_secs(),
                refresh_ahead_secs = self.cache.refresh_ahead.min(self.cache.ttl / 2).as_secs(),
                "opaque M2M verdicts are cached: a revoked token keeps working for at most M2M_VERIFY_CACHE_TTL_SECONDS; hot tokens are re-verified M2M_VERIFY_CACHE_REFRESH_AHEAD_SECONDS before that"
            );
        }
        Verifier::new(opaque, jwt)
    }
}
