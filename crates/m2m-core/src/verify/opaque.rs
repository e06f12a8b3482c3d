//! Opaque `mt_…` tokens, verified at Clerk and cached by a hash of the token.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::error::{VerifyError, reason};
use super::principal::{MachinePrincipal, TokenFormat};
use crate::clerk::{ClerkClient, ClerkError, M2mToken};
use crate::clock::Clock;

/// Cache settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OpaqueCacheSettings {
    /// How long a positive answer is reused (`M2M_VERIFY_CACHE_TTL_SECONDS`, default 60 s),
    /// capped by the token's own expiry. Zero: every request is verified at Clerk.
    pub ttl: Duration,
    /// How long a "not found / revoked" answer is reused (default 5 s).
    pub negative_ttl: Duration,
    /// Entries kept at most (default 100,000), so memory stays bounded under a flood of tokens.
    pub max_entries: u64,
}

impl Default for OpaqueCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            max_entries: 100_000,
        }
    }
}

#[derive(Debug, Clone)]
enum Verdict {
    Valid(MachinePrincipal),
    Invalid(&'static str),
}

#[derive(Debug)]
struct Entry {
    verdict: Verdict,
    valid_until: Instant,
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct OpaqueStats {
    /// Answers served from the cache.
    pub cache_hits: AtomicU64,
    /// Answers that needed Clerk (or joined a call in flight).
    pub cache_misses: AtomicU64,
    /// Calls made to Clerk's verify endpoint.
    pub clerk_calls: AtomicU64,
}

/// Verifies opaque tokens at Clerk with this service's key.
pub struct OpaqueVerifier {
    client: ClerkClient,
    key: SecretString,
    settings: OpaqueCacheSettings,
    clock: Arc<dyn Clock>,
    cache: moka::future::Cache<[u8; 32], Arc<Entry>>,
    stats: Arc<OpaqueStats>,
    receiver: Option<String>,
    instance_key: bool,
}

impl fmt::Debug for OpaqueVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaqueVerifier")
            .field("settings", &self.settings)
            .field("receiver", &self.receiver)
            .field("instance_key", &self.instance_key)
            .finish_non_exhaustive()
    }
}

impl OpaqueVerifier {
    /// `key` is the receiving machine's secret key (Clerk then verifies only tokens scoped to
    /// it) or the instance secret key (Clerk then verifies any token of the instance, so this
    /// verifier refuses every token until [`Self::with_receiver`] names this service).
    pub fn new(
        client: ClerkClient,
        key: SecretString,
        settings: OpaqueCacheSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let backstop = settings
            .ttl
            .max(settings.negative_ttl)
            .max(Duration::from_secs(1));
        let cache = moka::future::Cache::builder()
            .max_capacity(settings.max_entries)
            .time_to_live(backstop)
            .build();
        let instance_key = {
            use secrecy::ExposeSecret;
            !key.expose_secret().starts_with("ak_")
        };
        Self {
            client,
            key,
            settings,
            clock,
            cache,
            stats: Arc::default(),
            receiver: None,
            instance_key,
        }
    }

    /// Binds the verifier to this service's machine id (`mch_…`): a token is accepted only if
    /// Clerk's answer lists it in `scopes`, whichever key verifies it.
    pub fn with_receiver(mut self, machine_id: Option<String>) -> Self {
        self.receiver = machine_id;
        self
    }

    /// Whether a token can be accepted at all: with the instance key, Clerk checks no scope,
    /// so without a receiver id nothing is bound to this service.
    pub(crate) fn can_bind(&self) -> bool {
        self.receiver.is_some() || !self.instance_key
    }

    /// Hit/miss/call counters.
    pub fn stats(&self) -> &Arc<OpaqueStats> {
        &self.stats
    }

    /// Verifies `token` (already shape-checked as `mt_…`).
    pub async fn verify(&self, token: &str) -> Result<MachinePrincipal, VerifyError> {
        if !self.can_bind() {
            return Err(VerifyError::Invalid(reason::NOT_SCOPED));
        }
        if self.settings.ttl.is_zero() {
            self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
            return match self.ask_clerk(token).await? {
                Entry {
                    verdict: Verdict::Valid(p),
                    ..
                } => Ok(p),
                Entry {
                    verdict: Verdict::Invalid(r),
                    ..
                } => Err(VerifyError::Invalid(r)),
            };
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(entry) = self.cache.get(&key).await {
            if self.clock.now() < entry.valid_until {
                self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return verdict(&entry);
            }
            self.cache.invalidate(&key).await;
        }
        self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        // Concurrent misses for one token share one Clerk call; errors (Clerk down) are not cached.
        let entry = self
            .cache
            .try_get_with(key, async { self.ask_clerk(token).await.map(Arc::new) })
            .await
            .map_err(|e: Arc<VerifyError>| (*e).clone())?;
        verdict(&entry)
    }

    async fn ask_clerk(&self, token: &str) -> Result<Entry, VerifyError> {
        self.stats.clerk_calls.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let negative = |r| {
            Ok(Entry {
                verdict: Verdict::Invalid(r),
                valid_until: now + self.settings.negative_ttl,
            })
        };
        match self.client.verify_m2m_token(&self.key, token).await {
            Ok(t) => match self.accept(t) {
                Ok((principal, ttl)) => Ok(Entry {
                    verdict: Verdict::Valid(principal),
                    valid_until: now + ttl,
                }),
                Err(r) => negative(r),
            },
            Err(ClerkError::NotFound { .. }) => negative(reason::NOT_FOUND),
            Err(ClerkError::BadRequest { .. }) => negative(reason::INVALID),
            Err(e @ (ClerkError::Unauthorized { .. } | ClerkError::Forbidden { .. })) => {
                tracing::error!(error = %e, "Clerk rejected this service's own key while verifying an M2M token: check CLERK_MACHINE_SECRET_KEY");
                Err(VerifyError::Misconfigured(
                    "Clerk rejected the key used to verify M2M tokens".into(),
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot verify M2M token: Clerk unavailable");
                Err(VerifyError::Unavailable {
                    reason: "Clerk unavailable".into(),
                    retry_after: e
                        .retry_after()
                        .unwrap_or(Duration::from_secs(5))
                        .max(Duration::from_secs(1)),
                })
            }
        }
    }

    /// A 2xx from Clerk is accepted only if it is not revoked or expired (defence in depth:
    /// Clerk's SDKs do not check these flags) and names a machine.
    fn accept(&self, t: M2mToken) -> Result<(MachinePrincipal, Duration), &'static str> {
        if t.revoked {
            return Err(reason::REVOKED);
        }
        let now_ms = self.clock.unix_now().as_millis() as i64;
        let skew = super::jwt::CLOCK_SKEW.as_millis() as i64;
        if t.expired || t.expiration.is_some_and(|e| e <= now_ms - skew) {
            return Err(reason::EXPIRED);
        }
        if !t.subject.starts_with("mch_") {
            return Err(reason::TYPE_MISMATCH);
        }
        if let Some(me) = &self.receiver
            && !t.scopes.iter().any(|s| s == me)
        {
            return Err(reason::NOT_SCOPED);
        }
        let left = t
            .expiration
            .map(|e| Duration::from_millis(u64::try_from(e - now_ms).unwrap_or(0)));
        let ttl = left.map_or(self.settings.ttl, |l| l.min(self.settings.ttl));
        Ok((
            MachinePrincipal {
                machine_id: t.subject,
                token_id: t.id,
                scopes: t.scopes,
                claims: t.claims,
                format: TokenFormat::Opaque,
                expires_at_ms: t.expiration,
            },
            ttl,
        ))
    }
}

fn verdict(entry: &Entry) -> Result<MachinePrincipal, VerifyError> {
    match &entry.verdict {
        Verdict::Valid(p) => Ok(p.clone()),
        Verdict::Invalid(r) => Err(VerifyError::Invalid(r)),
    }
}
