//! Opaque `mt_…` tokens, verified at Clerk and cached by a hash of the token.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::budget::{Budget, LogLimiter, MissBudget, Refusal, retry_after_secs};
use super::client::{ClientKey, TrustedProxies};
use super::error::{Reason, VerifyError};
use super::principal::MachinePrincipal;
use crate::clerk::{ClerkClient, ClerkError, M2mToken};
use crate::clock::Clock;
use crate::machine_key::MachineKey;
use crate::token_format::TokenFormat;

/// Cache settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OpaqueCacheSettings {
    /// How long a positive answer is reused (`M2M_VERIFY_CACHE_TTL_SECONDS`, default 60 s),
    /// capped by the token's own expiry. Zero: every request is verified at Clerk.
    pub ttl: Duration,
    /// How long a "not found / revoked" answer is reused (default 5 s).
    pub negative_ttl: Duration,
    /// Entries kept at most (default 100,000) in each of the two caches (valid tokens; rejected
    /// tokens), so memory stays bounded under a flood of tokens and a flood of rejected tokens
    /// never evicts a valid token's entry.
    pub max_entries: u64,
    /// How many verifications may ask Clerk (`M2M_VERIFY_MISS_BURST`,
    /// `M2M_VERIFY_MISS_PER_SECOND`); over it, 503 without a call.
    pub budget: MissBudget,
    /// Each client address's share of that budget (`M2M_VERIFY_MISS_PER_CLIENT_BURST`,
    /// `M2M_VERIFY_MISS_PER_CLIENT_PER_SECOND`; default [`MissBudget::PER_CLIENT`], 10 and
    /// 2/s): a client past its share gets 503 without spending the budget, so a spray from one
    /// address cannot starve another's new token. Applies when the client is known: the
    /// `AuthLayer` and the axum extractor take it from the connection (see
    /// [`trusted_proxies`](Self::trusted_proxies)); a direct caller passes it to
    /// [`Verifier::verify_token_from`](crate::Verifier::verify_token_from).
    pub per_client: MissBudget,
    /// Peers whose `X-Forwarded-For` names the client (`M2M_VERIFY_TRUSTED_PROXIES`; empty by
    /// default: the header is ignored and the peer is the client).
    pub trusted_proxies: TrustedProxies,
    /// A positive entry used this close to its end is re-verified in the background, once, so a
    /// hot token never waits for Clerk at the TTL and a revocation is seen before the entry
    /// lapses (`M2M_VERIFY_CACHE_REFRESH_AHEAD_SECONDS`, default 10 s; at most half the TTL;
    /// zero: never). It costs no extra call: the entry would be re-verified at the TTL anyway.
    pub refresh_ahead: Duration,
}

impl Default for OpaqueCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            max_entries: 100_000,
            budget: MissBudget::default(),
            per_client: MissBudget::PER_CLIENT,
            trusted_proxies: TrustedProxies::default(),
            refresh_ahead: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
enum Verdict {
    Valid(MachinePrincipal),
    Invalid(Reason),
}

#[derive(Debug)]
struct Entry {
    verdict: Verdict,
    valid_until: Instant,
    /// Set once a background re-verification of this entry has started.
    refreshing: AtomicBool,
}

impl Entry {
    fn new(verdict: Verdict, valid_until: Instant) -> Self {
        Self {
            verdict,
            valid_until,
            refreshing: AtomicBool::new(false),
        }
    }
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
    /// Verifications refused with 503 and no Clerk call because the miss budget was spent.
    pub budget_refusals: AtomicU64,
    /// Verifications refused with 503 and no Clerk call because their client address had spent
    /// its share of the budget (`M2M_VERIFY_MISS_PER_CLIENT_*`).
    pub client_share_refusals: AtomicU64,
    /// Verifications refused with 503 because Clerk answered 429 (that call, and those made
    /// while its `Retry-After` runs, which are not sent).
    pub clerk_rate_limited: AtomicU64,
    /// Background re-verifications of hot entries shortly before they lapse.
    pub refreshed_ahead: AtomicU64,
    /// Entries evicted to stay within `max_entries` (either cache; expiry is not counted).
    pub evictions: AtomicU64,
}

/// Verifies opaque tokens at Clerk with this service's key.
pub struct OpaqueVerifier {
    inner: Arc<Inner>,
}

/// The state a background re-verification shares with the verifier.
struct Inner {
    client: ClerkClient,
    key: MachineKey,
    settings: OpaqueCacheSettings,
    clock: Arc<dyn Clock>,
    /// Positive verdicts only: a flood of rejected tokens cannot evict them.
    valid: Cache,
    /// Negative verdicts ("not found", revoked, expired).
    invalid: Cache,
    /// Hashes of tokens Clerk has called valid in the last hour: their re-verifications draw on
    /// the budget's reserved bucket, which random tokens cannot reach.
    known: moka::future::Cache<[u8; 32], ()>,
    budget: Budget,
    refusal_log: LogLimiter,
    clerk_log: LogLimiter,
    stats: Arc<OpaqueStats>,
    receiver: Option<String>,
    instance_key: bool,
}

type Cache = moka::future::Cache<[u8; 32], Arc<Entry>>;

/// How long a token Clerk called valid keeps its claim on the reserved budget.
const KNOWN_FOR: Duration = Duration::from_secs(3600);

/// One WARN line per this interval when verifications are refused or Clerk misbehaves.
const LOG_EVERY: Duration = Duration::from_secs(60);

impl fmt::Debug for OpaqueVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaqueVerifier")
            .field("settings", &self.inner.settings)
            .field("receiver", &self.inner.receiver)
            .field("instance_key", &self.inner.instance_key)
            .finish_non_exhaustive()
    }
}

impl OpaqueVerifier {
    /// `key` is the receiving machine's secret key (Clerk then verifies only tokens scoped to
    /// it) or the instance secret key (Clerk then verifies any token of the instance, so this
    /// verifier refuses every token until [`Self::with_receiver`] names this service). It may
    /// follow its file ([`MachineKey::watched`]): a rotated key verifies from the next Clerk call on, and a verification Clerk refuses
    /// with 401/403 is retried once when the file holds a new key.
    pub fn with_machine_key(
        client: ClerkClient,
        key: MachineKey,
        settings: OpaqueCacheSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let backstop = settings
            .ttl
            .max(settings.negative_ttl)
            .max(Duration::from_secs(1));
        let stats = Arc::new(OpaqueStats::default());
        let cache = || {
            let stats = stats.clone();
            moka::future::Cache::builder()
                .max_capacity(settings.max_entries)
                .time_to_live(backstop)
                .eviction_listener(move |_, _, cause| {
                    if cause == moka::notification::RemovalCause::Size {
                        stats.evictions.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .build()
        };
        let instance_key = {
            use secrecy::ExposeSecret;
            !key.current().expose_secret().starts_with("ak_")
        };
        let inner = Inner {
            client,
            key,
            valid: cache(),
            invalid: cache(),
            known: moka::future::Cache::builder()
                .max_capacity(settings.max_entries)
                .time_to_live(KNOWN_FOR)
                .build(),
            budget: Budget::new(settings.budget, settings.per_client, clock.clone()),
            refusal_log: LogLimiter::new(LOG_EVERY),
            clerk_log: LogLimiter::new(LOG_EVERY),
            settings,
            clock,
            stats,
            receiver: None,
            instance_key,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Binds the verifier to this service's machine id (`mch_…`): a token is accepted only if
    /// Clerk's answer lists it in `scopes`, whichever key verifies it.
    pub fn with_receiver(mut self, machine_id: Option<String>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.receiver = machine_id,
            // Unreachable (the Arc is shared only by background tasks, which need a verify);
            // binding to nothing would fail closed anyway.
            None => tracing::error!("OpaqueVerifier::with_receiver called after first use"),
        }
        self
    }

    /// Whether a token can be accepted at all: with the instance key, Clerk checks no scope,
    /// so without a receiver id nothing is bound to this service.
    pub(crate) fn can_bind(&self) -> bool {
        self.inner.receiver.is_some() || !self.inner.instance_key
    }

    /// Hit/miss/call counters.
    pub fn stats(&self) -> &Arc<OpaqueStats> {
        &self.inner.stats
    }

    /// The client a request comes from: `peer`, or behind a trusted proxy the address it
    /// forwarded for ([`OpaqueCacheSettings::trusted_proxies`]).
    pub fn client_addr(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        self.inner.settings.trusted_proxies.client(peer, headers)
    }

    /// Verifies `token` (already shape-checked as `mt_…`) sent by `client`, whose share of the
    /// miss budget pays if Clerk must be asked.
    ///
    /// The common case, a fresh positive verdict in the cache, awaits nothing but the cache
    /// lookup; everything else (a stale or negative entry, a Clerk call) is a separate boxed
    /// future. Kept inline, that path would make this future, and every future up to the
    /// request's (extractors, handlers, middleware) ~6 KiB, copied on each move.
    pub async fn verify_from(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<MachinePrincipal, VerifyError> {
        let this = &*self.inner;
        if !self.can_bind() {
            return Err(VerifyError::Invalid(Reason::NotScoped));
        }
        let mut seen = None;
        if !this.settings.ttl.is_zero() {
            let key = key_of(token);
            let now = this.clock.now();
            if let Some(entry) = this.valid.get(&key).await {
                if this.still_valid(&entry, now) {
                    this.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    self.refresh_ahead(key, token, &entry, now);
                    return verdict(&entry);
                }
                seen = Some((key, now, entry));
            }
        }
        Box::pin(self.verify_slow(token, seen, client.map(ClientKey::from))).await
    }

    /// [`verify`](Self::verify) past a cache hit. `stale`: the positive entry found no longer
    /// valid, with its key and when it was looked at.
    async fn verify_slow(
        &self,
        token: &str,
        stale: Option<([u8; 32], Instant, Arc<Entry>)>,
        client: Option<ClientKey>,
    ) -> Result<MachinePrincipal, VerifyError> {
        let this = &*self.inner;
        if this.settings.ttl.is_zero() {
            this.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
            let known = this.known.contains_key(&key_of(token));
            let entry = this.ask_clerk(token, known, client).await?;
            if matches!(entry.verdict, Verdict::Valid(_)) {
                this.known.insert(key_of(token), ()).await;
            }
            return verdict(&entry);
        }
        let (key, now) = match stale {
            Some((key, now, entry)) => {
                remove_if_same(&this.valid, key, &entry).await;
                (key, now)
            }
            None => (key_of(token), this.clock.now()),
        };
        if let Some(entry) = this.invalid.get(&key).await {
            if now < entry.valid_until {
                this.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return verdict(&entry);
            }
            remove_if_same(&this.invalid, key, &entry).await;
        }
        this.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        // Concurrent misses for one token share one Clerk call. Only a positive verdict enters
        // `valid`; a negative one goes to `invalid` and reaches the waiters as an error; errors
        // (Clerk down, budget spent) are not cached at all.
        let known = this.known.contains_key(&key);
        let entry = this
            .valid
            .try_get_with(key, async {
                let entry = Arc::new(this.ask_clerk(token, known, client).await?);
                match entry.verdict {
                    Verdict::Valid(_) => Ok(entry),
                    Verdict::Invalid(r) => {
                        this.invalid.insert(key, entry).await;
                        Err(VerifyError::Invalid(r))
                    }
                }
            })
            .await
            .map_err(|e: Arc<VerifyError>| (*e).clone())?;
        if !known {
            this.known.insert(key, ()).await;
        }
        verdict(&entry)
    }

    /// Starts one background re-verification of a hot positive entry near its end.
    fn refresh_ahead(&self, key: [u8; 32], token: &str, entry: &Arc<Entry>, now: Instant) {
        let this = &*self.inner;
        let ahead = this.settings.refresh_ahead.min(this.settings.ttl / 2);
        let Verdict::Valid(principal) = &entry.verdict else {
            return;
        };
        if ahead.is_zero() || now + ahead < entry.valid_until {
            return;
        }
        // A token about to expire is not worth a call: Clerk would only say it expired.
        let horizon_ms = (this.clock.unix_now() + ahead).as_millis() as i64;
        if principal.expires_at_ms.is_some_and(|e| e <= horizon_ms) {
            return;
        }
        if entry.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        let token = SecretString::from(token.to_owned());
        let seen = entry.clone();
        runtime.spawn(async move { inner.reverify(key, token, seen).await });
    }
}

impl Inner {
    /// A cached positive verdict is served only before its `valid_until` (monotonic) and before
    /// the token's own expiry (wall clock), whichever comes first.
    fn still_valid(&self, entry: &Entry, now: Instant) -> bool {
        if now >= entry.valid_until {
            return false;
        }
        match &entry.verdict {
            Verdict::Valid(p) => p
                .expires_at_ms
                .is_none_or(|e| e > self.clock.unix_now().as_millis() as i64),
            Verdict::Invalid(_) => true,
        }
    }

    /// Asks Clerk, within the miss budget (`known`: the token was valid before, so the reserved
    /// bucket pays; else `client`'s share, then the budget).
    async fn ask_clerk(
        &self,
        token: &str,
        known: bool,
        client: Option<ClientKey>,
    ) -> Result<Entry, VerifyError> {
        if let Err((why, wait)) = self.budget.admit(known, client) {
            let counter = match why {
                Refusal::Budget => &self.stats.budget_refusals,
                Refusal::ClientShare => &self.stats.client_share_refusals,
                Refusal::ClerkBackoff => &self.stats.clerk_rate_limited,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Some(held_back) = self.refusal_log.allow(self.clock.now()) {
                tracing::warn!(
                    cause = ?why,
                    refused_since_last_line = held_back,
                    "refusing M2M token verifications with 503: too many cache misses would reach Clerk (M2M_VERIFY_MISS_BURST / M2M_VERIFY_MISS_PER_SECOND, or one client's share: M2M_VERIFY_MISS_PER_CLIENT_*), or Clerk asked us to slow down"
                );
            }
            return Err(VerifyError::Unavailable {
                reason: "verification budget spent".into(),
                retry_after: retry_after_secs(wait),
            });
        }
        self.stats.clerk_calls.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let negative = |r| {
            Ok(Entry::new(
                Verdict::Invalid(r),
                now + self.settings.negative_ttl,
            ))
        };
        let key = self.key.current();
        let answer = match self.client.verify_m2m_token(&key, token).await {
            Err(ClerkError::Unauthorized { .. } | ClerkError::Forbidden { .. })
                if self.key.refused(&key) =>
            {
                // Our key was rotated and its file holds the new one: one more try, no loop.
                tracing::info!(
                    "Clerk refused this service's machine key; verifying again with the key now in its file"
                );
                self.stats.clerk_calls.fetch_add(1, Ordering::Relaxed);
                self.client
                    .verify_m2m_token(&self.key.current(), token)
                    .await
            }
            other => other,
        };
        match answer {
            Ok(t) => match self.accept(t) {
                Ok((principal, ttl)) => Ok(Entry::new(Verdict::Valid(principal), now + ttl)),
                Err(r) => negative(r),
            },
            Err(ClerkError::NotFound { .. }) => negative(Reason::NotFound),
            Err(ClerkError::BadRequest { status, body }) => {
                // The token's shape was checked before the call, so a 400/409/422 means Clerk
                // refused *our* request (a retired Clerk-API-Version, a changed body schema):
                // not the caller's fault, and not to be cached as a 401 for every token. Fail
                // closed with 503 and tell the operator. Clerk's message is not logged: it
                // could quote the request.
                if let Some(held_back) = self.clerk_log.allow(self.clock.now()) {
                    tracing::error!(
                        status,
                        code = body.code().unwrap_or(""),
                        clerk_trace_id = body.clerk_trace_id.as_deref().unwrap_or(""),
                        refused_since_last_line = held_back,
                        "Clerk refused our M2M verify request as malformed; answering 503 until fixed (check m2m-core's CLERK_API_VERSION against Clerk's changelog)"
                    );
                }
                Err(VerifyError::Unavailable {
                    reason: "Clerk refused the verify request".into(),
                    retry_after: Duration::from_secs(5),
                })
            }
            Err(e @ (ClerkError::Unauthorized { .. } | ClerkError::Forbidden { .. })) => {
                // Every M2M request fails this way until the key is fixed: one line per request
                // would let any client grow the log.
                if let Some(held_back) = self.clerk_log.allow(self.clock.now()) {
                    tracing::error!(error = %e, refused_since_last_line = held_back, "Clerk rejected this service's own key while verifying an M2M token: check CLERK_MACHINE_SECRET_KEY");
                }
                Err(VerifyError::Misconfigured(
                    "Clerk rejected the key used to verify M2M tokens".into(),
                ))
            }
            Err(ClerkError::RateLimited { retry_after, .. }) => {
                // Not retried (the client never retries a 429 on verify): every verify call is
                // paused for Clerk's Retry-After, and this request gets 503 with it.
                self.stats
                    .clerk_rate_limited
                    .fetch_add(1, Ordering::Relaxed);
                let asked = retry_after.unwrap_or(Duration::from_secs(5));
                let pause = self.budget.clerk_said_slow_down(asked);
                if let Some(held_back) = self.clerk_log.allow(self.clock.now()) {
                    tracing::warn!(
                        pause_secs = pause.as_secs(),
                        refused_since_last_line = held_back,
                        "Clerk rate-limited M2M token verification (429); pausing verify calls"
                    );
                }
                Err(VerifyError::Unavailable {
                    reason: "Clerk rate limited".into(),
                    retry_after: retry_after_secs(asked),
                })
            }
            Err(e) => {
                if let Some(held_back) = self.clerk_log.allow(self.clock.now()) {
                    tracing::warn!(error = %e, refused_since_last_line = held_back, "cannot verify M2M token: Clerk unavailable");
                }
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
    /// Re-verifies a cached positive verdict (see [`OpaqueCacheSettings::refresh_ahead`]): a
    /// positive answer replaces it, a negative one moves the token to the negative cache at
    /// once. On an error (Clerk down, budget spent) the entry simply lapses at its end.
    async fn reverify(&self, key: [u8; 32], token: SecretString, seen: Arc<Entry>) {
        self.stats.refreshed_ahead.fetch_add(1, Ordering::Relaxed);
        let Ok(fresh) = self.ask_clerk(token.expose_secret(), true, None).await else {
            return;
        };
        let fresh = Arc::new(fresh);
        match fresh.verdict {
            Verdict::Valid(_) => {
                self.known.insert(key, ()).await;
                replace_if_same(&self.valid, key, &seen, fresh).await;
            }
            Verdict::Invalid(_) => {
                self.invalid.insert(key, fresh).await;
                remove_if_same(&self.valid, key, &seen).await;
            }
        }
    }

    fn accept(&self, t: M2mToken) -> Result<(MachinePrincipal, Duration), Reason> {
        if t.revoked {
            return Err(Reason::Revoked);
        }
        let now_ms = self.clock.unix_now().as_millis() as i64;
        // Clerk's `expiration` is final: no skew allowance past it, whatever `expired` says.
        if t.expired || t.expiration.is_some_and(|e| e <= now_ms) {
            return Err(Reason::Expired);
        }
        if !t.subject.starts_with("mch_") {
            return Err(Reason::TypeMismatch);
        }
        if let Some(me) = &self.receiver
            && !t.scopes.iter().any(|s| s == me)
        {
            return Err(Reason::NotScoped);
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
                claims: t.claims.map(Arc::new),
                format: TokenFormat::Opaque,
                expires_at_ms: t.expiration,
            },
            ttl,
        ))
    }
}

/// Stores `fresh` under `key` only if it still holds `seen`: a re-verification that finishes
/// late never overwrites a newer verdict.
async fn replace_if_same(cache: &Cache, key: [u8; 32], seen: &Arc<Entry>, fresh: Arc<Entry>) {
    cache
        .entry(key)
        .and_compute_with(|current| {
            let same = current.is_some_and(|c| Arc::ptr_eq(c.value(), seen));
            std::future::ready(if same {
                moka::ops::compute::Op::Put(fresh)
            } else {
                moka::ops::compute::Op::Nop
            })
        })
        .await;
}

/// Removes `key` only if it still holds `seen`, so a reader holding a lapsed entry cannot remove
/// a fresher one that another request has just stored.
async fn remove_if_same(cache: &Cache, key: [u8; 32], seen: &Arc<Entry>) {
    cache
        .entry(key)
        .and_compute_with(|current| {
            let same = current.is_some_and(|c| Arc::ptr_eq(c.value(), seen));
            std::future::ready(if same {
                moka::ops::compute::Op::Remove
            } else {
                moka::ops::compute::Op::Nop
            })
        })
        .await;
}

fn key_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn verdict(entry: &Entry) -> Result<MachinePrincipal, VerifyError> {
    match &entry.verdict {
        Verdict::Valid(p) => Ok(p.clone()),
        Verdict::Invalid(r) => Err(VerifyError::Invalid(*r)),
    }
}
