//! Where JWT verification keys come from, and the JWKS cache.
//!
//! ```text
//! age of the key set   0 ──────────── 80 % TTL ───── TTL ─────────────── max staleness
//!                      fresh: no network  │ background    │ stale: a request waits ≤ stale_wait
//!                                         │ refresh       │ for the refresh in flight; if it
//!                                         │ (single       │ completes, its set decides (a kid it
//!                                         │ flight)       │ no longer lists is refused); if not,
//!                                         │               │ the last good keys serve   ──▶ then 503
//! ```
//! A refresh never runs on the request path: it is a spawned task, one at a time, each bounded by
//! `fetch_timeout`, and after a failure the next one starts no sooner than the retry gap after
//! the *end* of the failed one.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384,
    RSA_PKCS1_2048_8192_SHA512, RsaParameters, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::budget::LogLimiter;
use super::error::{Reason, VerifyError};
use crate::clerk::{ClerkClient, ClerkError};
use crate::clock::Clock;
use crate::error::InvalidValue;

/// How long fetched keys are fresh (Clerk's SDK: 5 minutes).
pub const JWKS_TTL: Duration = Duration::from_secs(300);
/// At most one refetch per this interval when a token names an unknown `kid`, so a flood of
/// random `kid`s cannot flood Clerk.
pub const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// No two fetches closer than this (from the end of one to the start of the next).
pub const MIN_FETCH_GAP: Duration = Duration::from_secs(1);

/// JWKS cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    /// How long a fetched set is fresh (`CLERK_JWKS_CACHE_TTL_SECONDS`, default 300 s, as
    /// Clerk's SDK). A background refresh starts at 80 % of it.
    pub ttl: Duration,
    /// How long a request that meets a stale set waits for the refresh in flight (250 ms).
    pub stale_wait: Duration,
    /// How long past its fetch the last good set may still serve when no refresh succeeds
    /// (24 h); after that JWTs get 503 until a refresh succeeds.
    pub max_staleness: Duration,
    /// Upper bound of one refresh, all HTTP attempts included (5 s).
    pub fetch_timeout: Duration,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            ttl: JWKS_TTL,
            stale_wait: Duration::from_millis(250),
            max_staleness: Duration::from_secs(24 * 3600),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

impl JwksSettings {
    /// When a background refresh is due: at 80 % of the TTL.
    pub fn refresh_after(&self) -> Duration {
        self.ttl.mul_f64(0.8)
    }

    /// The pause after a failed refresh, from its end: a tenth of the TTL, 1–30 s.
    pub fn retry_gap(&self) -> Duration {
        (self.ttl / 10).clamp(MIN_FETCH_GAP, UNKNOWN_KID_REFETCH_INTERVAL)
    }
}

/// An RSA public key that verifies JWT signatures, parsed once (not per verification) for each of
/// RS256, RS384 and RS512, with aws-lc-rs's `RSA_PKCS1_2048_8192_*` parameters: the ones
/// `jsonwebtoken` uses, so the same keys and signatures pass.
pub struct JwtKey {
    rs256: Option<ParsedPublicKey>,
    rs384: Option<ParsedPublicKey>,
    rs512: Option<ParsedPublicKey>,
    fingerprint: [u8; 32],
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("usable", &self.rs256.is_some())
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    /// From a DER `RSAPublicKey` or `SubjectPublicKeyInfo`. A key aws-lc-rs cannot parse is kept
    /// and verifies nothing (`token-invalid-signature`), as before it was parsed up front.
    fn from_der(der: &[u8]) -> Self {
        let parse = |p: &'static RsaParameters| ParsedPublicKey::new(p, der).ok();
        Self::new(
            [
                parse(&RSA_PKCS1_2048_8192_SHA256),
                parse(&RSA_PKCS1_2048_8192_SHA384),
                parse(&RSA_PKCS1_2048_8192_SHA512),
            ],
            &[b"der", der],
        )
    }

    /// From a JWK's decoded modulus and exponent.
    fn from_components(n: &[u8], e: &[u8]) -> Self {
        let c = RsaPublicKeyComponents { n, e };
        let parse = |p: &'static RsaParameters| c.to_parsed_public_key(p).ok();
        Self::new(
            [
                parse(&RSA_PKCS1_2048_8192_SHA256),
                parse(&RSA_PKCS1_2048_8192_SHA384),
                parse(&RSA_PKCS1_2048_8192_SHA512),
            ],
            &[b"n", &(n.len() as u64).to_be_bytes(), n, b"e", e],
        )
    }

    fn new(parsed: [Option<ParsedPublicKey>; 3], material: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for part in material {
            h.update(part);
        }
        let [rs256, rs384, rs512] = parsed;
        Self {
            rs256,
            rs384,
            rs512,
            fingerprint: h.finalize().into(),
        }
    }

    /// Whether `signature` (raw bytes) is `alg`'s signature of `message` under this key.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        let key = match alg {
            Algorithm::RS256 => &self.rs256,
            Algorithm::RS384 => &self.rs384,
            Algorithm::RS512 => &self.rs512,
            _ => &None,
        };
        key.as_ref()
            .is_some_and(|k| k.verify_sig(message, signature).is_ok())
    }

    /// As [`verify`](Self::verify), for an RS256 signature over a message whose SHA-256 is
    /// `digest` (hashed once for the JWT cache's key and this check).
    pub(crate) fn verify_sha256(
        &self,
        digest: &aws_lc_rs::digest::Digest,
        signature: &[u8],
    ) -> bool {
        self.rs256
            .as_ref()
            .is_some_and(|k| k.verify_digest_sig(digest, signature).is_ok())
    }

    /// SHA-256 of the key material: equal for the same key fetched again, different for another
    /// key published under the same `kid`.
    pub(crate) fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }
}

/// Where the keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// `CLERK_JWT_KEY`: one PEM public key, no network. The token's `kid` is not checked against
    /// it (as in Clerk's SDK).
    Pem(Arc<JwtKey>),
    /// `CLERK_JWKS_URL`: a public JWKS (e.g. the Frontend API's `/.well-known/jwks.json`).
    Url(String),
    /// `CLERK_SECRET_KEY`: BAPI `GET /jwks` with the instance key.
    Bapi(SecretString),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pem(_) => f.write_str("KeySource::Pem"),
            Self::Url(u) => write!(f, "KeySource::Url({u})"),
            Self::Bapi(_) => f.write_str("KeySource::Bapi([REDACTED])"),
        }
    }
}

impl KeySource {
    /// Parses a PEM public key (`-----BEGIN PUBLIC KEY-----` or `RSA PUBLIC KEY`). Literal `\n`
    /// sequences, as env files often carry, are accepted.
    pub fn from_pem(pem: &str) -> Result<Self, InvalidValue> {
        let not_a_key = || InvalidValue::new("not a PEM-encoded RSA public key");
        let pem = pem.trim().replace("\\n", "\n");
        let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| not_a_key())?;
        let der = key.try_get_as_bytes().map_err(|_| not_a_key())?;
        Ok(Self::Pem(Arc::new(JwtKey::from_der(der))))
    }
}

struct KeyEntry {
    key: Arc<JwtKey>,
    /// The JWK's `alg`, if it named one of ours; a token must then use exactly it.
    alg: Option<Algorithm>,
}

struct Snapshot {
    keys: HashMap<String, KeyEntry>,
    fetched_at: Option<Instant>,
    /// Bumped by every successful refresh.
    generation: u64,
}

#[derive(Default)]
struct RefreshState {
    in_flight: bool,
    last_end: Option<Instant>,
    last_failed: bool,
    last_unknown_kid: Option<Instant>,
}

struct Inner {
    source: KeySource,
    client: ClerkClient,
    clock: Arc<dyn Clock>,
    settings: JwksSettings,
    snapshot: ArcSwap<Snapshot>,
    state: Mutex<RefreshState>,
    /// Bumped when a refresh attempt ends (success or not).
    done: watch::Sender<u64>,
    ticker: AtomicBool,
    too_old_log: LogLimiter,
}

/// Keys by `kid`, refreshed in the background before they go stale, and on an unknown `kid`
/// (rate-limited). A well-formed answer replaces the set, even when it lists no usable key; a
/// failed refresh (transport error, non-2xx, unparsable body) keeps the last good keys, up to
/// `max_staleness`.
pub struct KeyStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("source", &self.inner.source)
            .field("settings", &self.inner.settings)
            .field(
                "kids",
                &self.inner.snapshot.load().keys.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unavailable(reason: &str) -> VerifyError {
    VerifyError::Unavailable {
        reason: reason.into(),
        retry_after: Duration::from_secs(5),
    }
}

impl KeyStore {
    /// A store with explicit cache settings.
    pub fn with_settings(
        source: KeySource,
        client: ClerkClient,
        clock: Arc<dyn Clock>,
        settings: JwksSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                client,
                clock,
                settings,
                snapshot: ArcSwap::from_pointee(Snapshot {
                    keys: HashMap::new(),
                    fetched_at: None,
                    generation: 0,
                }),
                state: Mutex::new(RefreshState::default()),
                done: watch::channel(0).0,
                ticker: AtomicBool::new(false),
                too_old_log: LogLimiter::new(Duration::from_secs(60)),
            }),
        }
    }

    /// The key to verify a token signed with `alg` whose header names `kid`. Only keys usable
    /// for that (RSA; `use` absent or `sig`; `key_ops` absent or with `verify`; `alg` absent or
    /// equal to the token's) are ever returned.
    pub async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<JwtKey>, VerifyError> {
        let inner = &self.inner;
        if let KeySource::Pem(key) = &inner.source {
            return Ok(key.clone());
        }
        let Some(kid) = kid else {
            return Err(VerifyError::Invalid(Reason::Kid));
        };
        inner.start_ticker();
        let now = inner.clock.now();
        // The common case, a fresh set that has the key, without taking a reference count.
        {
            let snap = inner.snapshot.load();
            if snap
                .fetched_at
                .is_some_and(|t| now < t + inner.settings.ttl)
                && let Some(entry) = snap.keys.get(kid)
            {
                return usable(entry, alg);
            }
        }
        let snap = inner.snapshot.load_full();
        let fresh = snap
            .fetched_at
            .is_some_and(|t| now < t + inner.settings.ttl);
        if let Some(entry) = snap.keys.get(kid) {
            if fresh {
                return usable(entry, alg);
            }
            // Stale but known: wait briefly for a refresh. If one completes, its set decides;
            // if not (Clerk slow or down), the last good key serves, up to max staleness.
            if let Some(rx) = inner.start_refresh(Why::Stale) {
                wait(rx, inner.settings.stale_wait).await;
            }
            let latest = inner.snapshot.load_full();
            if latest.generation != snap.generation {
                return match latest.keys.get(kid) {
                    Some(e) => usable(e, alg),
                    None => Err(VerifyError::Invalid(Reason::Kid)),
                };
            }
            if snap
                .fetched_at
                .is_some_and(|t| inner.clock.now() < t + inner.settings.max_staleness)
            {
                return usable(entry, alg);
            }
            if let Some(held_back) = inner.too_old_log.allow(inner.clock.now()) {
                tracing::warn!(
                    refused_since_last_line = held_back,
                    "JWT signing keys are older than their maximum staleness and cannot be refreshed; refusing JWTs with 503"
                );
            }
            return Err(unavailable("signing keys too old"));
        }
        // Unknown kid: a rotated key, or junk. Wait for at most one (bounded) refetch, itself
        // at most one per interval.
        let why = if snap.fetched_at.is_none() {
            Why::Initial
        } else if fresh {
            Why::UnknownKid
        } else {
            Why::Stale
        };
        if let Some(rx) = inner.start_refresh(why) {
            wait(
                rx,
                inner.settings.fetch_timeout + Duration::from_millis(100),
            )
            .await;
        }
        let latest = inner.snapshot.load_full();
        match latest.fetched_at {
            None => Err(unavailable("signing keys could not be loaded")),
            Some(t) if inner.clock.now() >= t + inner.settings.max_staleness => {
                Err(unavailable("signing keys too old"))
            }
            Some(_) => match latest.keys.get(kid) {
                Some(e) => usable(e, alg),
                None => Err(VerifyError::Invalid(Reason::Kid)),
            },
        }
    }

    /// Fetches keys now (e.g. at start) and starts the background refresh; returns how many
    /// usable keys were loaded.
    pub async fn prefetch(&self) -> Result<usize, VerifyError> {
        let inner = &self.inner;
        if matches!(inner.source, KeySource::Pem(_)) {
            return Ok(1);
        }
        inner.start_ticker();
        if let Some(rx) = inner.start_refresh(Why::Initial) {
            wait(
                rx,
                inner.settings.fetch_timeout + Duration::from_millis(100),
            )
            .await;
        }
        let snap = inner.snapshot.load();
        match snap.fetched_at {
            Some(_) => Ok(snap.keys.len()),
            None => Err(unavailable("signing keys could not be loaded")),
        }
    }
}

/// Waits until the refresh in flight ends, or `at_most`.
async fn wait(mut rx: watch::Receiver<u64>, at_most: Duration) {
    let _ = tokio::time::timeout(at_most, rx.changed()).await;
}

fn usable(entry: &KeyEntry, alg: Algorithm) -> Result<Arc<JwtKey>, VerifyError> {
    match entry.alg {
        Some(a) if a != alg => Err(VerifyError::Invalid(Reason::Algorithm)),
        _ => Ok(entry.key.clone()),
    }
}

/// Resets `in_flight` even if the refresh task is dropped midway (runtime shutdown).
struct InFlight<'a>(&'a Inner, bool);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.0.state);
            st.in_flight = false;
            st.last_end = Some(self.0.clock.now());
            st.last_failed = !self.1;
        }
        self.0.done.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Inner {
    /// Starts a refresh unless one is running (then joins it) or the rules say not yet.
    /// Returns a receiver that changes when the refresh ends.
    fn start_refresh(self: &Arc<Self>, why: Why) -> Option<watch::Receiver<u64>> {
        let mut st = lock(&self.state);
        if st.in_flight {
            return Some(self.done.subscribe());
        }
        let now = self.clock.now();
        let after = |t: Option<Instant>, gap: Duration| t.is_none_or(|t| now >= t + gap);
        let allowed = after(st.last_end, MIN_FETCH_GAP)
            && match why {
                Why::Initial => true,
                Why::Stale => !st.last_failed || after(st.last_end, self.settings.retry_gap()),
                Why::UnknownKid => after(st.last_unknown_kid, UNKNOWN_KID_REFETCH_INTERVAL),
            };
        if !allowed {
            return None;
        }
        if why == Why::UnknownKid {
            st.last_unknown_kid = Some(now);
        }
        st.in_flight = true;
        let rx = self.done.subscribe();
        drop(st);
        let inner = self.clone();
        tokio::spawn(async move {
            let mut guard = InFlight(&inner, false);
            guard.1 = inner.fetch_and_store().await;
        });
        Some(rx)
    }

    /// Refreshes before the set goes stale, from a task that holds the store only weakly.
    fn start_ticker(self: &Arc<Self>) {
        // A load first: no write to a shared cache line on every verification.
        if self.ticker.load(Ordering::Acquire) || self.ticker.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let tick =
            (self.settings.ttl / 20).clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(inner) = weak.upgrade() else { break };
                let due = inner
                    .snapshot
                    .load()
                    .fetched_at
                    .is_none_or(|t| inner.clock.now() >= t + inner.settings.refresh_after());
                if due {
                    let _ = inner.start_refresh(Why::Stale);
                }
            }
        });
    }

    /// One refresh, bounded by `fetch_timeout`. Returns whether the answer was stored (it then
    /// replaced the set, however few keys it lists).
    async fn fetch_and_store(&self) -> bool {
        let fetch = async {
            match &self.source {
                KeySource::Pem(_) => Ok(JwkSet { keys: Vec::new() }),
                KeySource::Url(url) => self.client.jwks_from_url(url).await,
                KeySource::Bapi(sk) => self.client.jwks(sk).await,
            }
        };
        match tokio::time::timeout(self.settings.fetch_timeout, fetch).await {
            Ok(Ok(set)) => {
                // A well-formed answer is the key set, even an empty one: keeping keys Clerk no
                // longer lists would accept what Clerk's SDK refuses. Only a failed fetch keeps
                // the last good set.
                let keys = usable_keys(&set);
                if keys.is_empty() {
                    tracing::error!(
                        listed = set.keys.len(),
                        "the JWKS lists no usable RSA signing key: every JWT is refused (401 jwk-kid-mismatch) until it lists one"
                    );
                } else {
                    tracing::debug!(count = keys.len(), "JWKS loaded");
                }
                let generation = self.snapshot.load().generation + 1;
                self.snapshot.store(Arc::new(Snapshot {
                    keys,
                    fetched_at: Some(self.clock.now()),
                    generation,
                }));
                true
            }
            Ok(Err(ClerkError::Unauthorized { .. }))
                if matches!(self.source, KeySource::Bapi(_)) =>
            {
                tracing::error!(
                    "Clerk rejected CLERK_SECRET_KEY when fetching the JWKS; keeping the previous keys"
                );
                false
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys");
                false
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = self.settings.fetch_timeout.as_millis() as u64,
                    "JWKS refresh timed out; keeping the previous keys"
                );
                false
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Initial,
    Stale,
    UnknownKid,
}

/// The keys that may verify a signature: RSA, `use` absent or `sig`, `key_ops` absent or with
/// `verify`, `alg` absent or one of RS256/RS384/RS512 (kept, to be matched against the token's).
/// WebCrypto's JWK import, which Clerk's SDK uses, refuses the others too.
fn usable_keys(set: &JwkSet) -> HashMap<String, KeyEntry> {
    set.keys
        .iter()
        .filter(|k| matches!(k.algorithm, AlgorithmParameters::RSA(_)))
        .filter(|k| {
            matches!(
                k.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            )
        })
        .filter(|k| {
            k.common
                .key_operations
                .as_ref()
                .is_none_or(|ops| ops.contains(&KeyOperations::Verify))
        })
        .filter_map(|k| {
            let alg = match k.common.key_algorithm {
                None => None,
                Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
                Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
                Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
                Some(_) => return None,
            };
            let kid = k.common.key_id.clone()?;
            let AlgorithmParameters::RSA(rsa) = &k.algorithm else {
                return None;
            };
            // As jsonwebtoken's `DecodingKey::from_jwk`: a component that is not base64url
            // makes the key unusable.
            let n = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
            let e = URL_SAFE_NO_PAD.decode(&rsa.e).ok()?;
            let key = JwtKey::from_components(&n, &e);
            Some((
                kid,
                KeyEntry {
                    key: Arc::new(key),
                    alg,
                },
            ))
        })
        .collect()
}
