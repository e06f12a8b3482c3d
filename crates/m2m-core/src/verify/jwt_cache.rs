//! Verified JWTs (session tokens and JWT-format M2M tokens), kept so that a repeat costs a hash
//! and a lookup instead of an RSA verification.
//!
//! ```text
//! token ──▶ SHA-256 ──▶ cache ── hit ──▶ key of its kid still the key that verified it?
//!                         │               (the JWKS rules: fresh set, or wait for the refresh)
//!                         │                 no, kid gone ────────▶ 401 jwk-kid-mismatch, entry dropped
//!                         │                 no, another key ─────▶ entry dropped, verified anew
//!                         │                 yes ──▶ exp, nbf, iat against now ± skew ──▶ principal / 401
//!                         └─ miss ──▶ full verification ──▶ accepted? ──▶ inserted (lives until exp)
//! ```
//!
//! Only accepted tokens are inserted, so rejected ones cannot evict anything. Everything else a
//! verification checks is a function of the token's bytes and of this verifier's fixed settings
//! (issuer, authorized parties, receiver), so the cached verdict is the verdict; only time and
//! the key set change, and both are checked again on every hit.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{self, Digest, SHA256};
use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::jwt::expired;
use super::principal::Principal;

/// Cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtCacheSettings {
    /// Entries kept at most (`CLERK_JWT_CACHE_MAX_ENTRIES`, default 100,000). Zero turns the
    /// cache off: every JWT is verified from scratch.
    pub max_entries: u64,
    /// Estimated memory the entries may take at most (`CLERK_JWT_CACHE_MAX_MIB`, default
    /// 64 MiB). Whichever bound is reached first applies.
    pub max_bytes: u64,
}

impl Default for JwtCacheSettings {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

impl JwtCacheSettings {
    /// Whether JWTs are cached at all.
    pub fn enabled(&self) -> bool {
        self.max_entries > 0 && self.max_bytes > 0
    }
}

/// What a verification established that can change later: the key (by `kid`, and which key
/// material answered to it) and the time claims. The rest is the verdict.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: [u8; 32],
    pub(crate) exp: f64,
    pub(crate) nbf: Option<f64>,
    pub(crate) iat: Option<f64>,
}

/// A verified token.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) principal: Principal,
    pub(crate) checked: Checked,
    weight: u32,
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct JwtCacheStats {
    /// Verifications answered from the cache.
    pub hits: AtomicU64,
    /// Verifications that found no usable entry (and verified the signature).
    pub misses: AtomicU64,
    /// Entries dropped on a hit because their key is no longer published under its `kid`, or
    /// their token has expired.
    pub dropped: AtomicU64,
    /// Entries evicted to stay within the cache's bounds, and entries refused for weighing more
    /// than a shard of the cache holds (their tokens are verified on every use); expired
    /// entries swept away are not counted.
    pub evictions: AtomicU64,
}

/// The cache key: a SHA-256 hash of the whole token. The token itself is never stored.
pub(crate) type Key = [u8; 32];

/// A token's cache key, and the SHA-256 of its signed part (what an RS256 signature signs).
pub(crate) struct Hashed {
    pub(crate) key: Key,
    /// SHA-256 of the token up to its last `.`: handed to the RS256 check on a miss, so the
    /// signed part is hashed once, not twice.
    pub(crate) signed: Digest,
    /// Length of that part.
    pub(crate) signed_len: usize,
}

type Entries = quick_cache::sync::Cache<
    Key,
    Arc<Entry>,
    ByWeight,
    quick_cache::DefaultHashBuilder,
    CountEvictions,
>;

/// Verified JWTs by SHA-256 of the token, bounded in entries and in estimated bytes; an entry
/// is used no later than its token's `exp` (plus the clock skew, as a verification would), and
/// expired entries are swept away in the background every [`SWEEP_EVERY`].
///
/// The table is `quick_cache`'s (sharded, a read lock and an atomic per lookup, no allocation on
/// a hit, one `Arc` per insert). Eviction is its S3-FIFO: a newly verified token enters a small
/// probation queue and is the first to go unless it is used again, and a token evicted from
/// there is remembered, so one that comes back is admitted to the main queue: a flood of tokens
/// used once cannot push out the ones in use.
pub struct JwtCache {
    entries: Arc<Entries>,
    /// Weight of the smallest entry: `max_bytes / max_entries`, so the byte bound also bounds
    /// the number of entries.
    floor: u64,
    /// When the next sweep of expired entries is due (the verifier's monotonic clock).
    next_sweep: Mutex<Option<Instant>>,
    stats: Arc<JwtCacheStats>,
}

impl fmt::Debug for JwtCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCache")
            .field("entries", &self.entries.len())
            .field("weighted_size", &self.entries.weight())
            .finish_non_exhaustive()
    }
}

/// An entry's estimated bytes, computed once at insert.
#[derive(Clone)]
struct ByWeight;

impl quick_cache::Weighter<Key, Arc<Entry>> for ByWeight {
    fn weight(&self, _: &Key, e: &Arc<Entry>) -> u64 {
        u64::from(e.weight)
    }
}

/// Counts evictions (entries pushed out to stay within the bounds).
#[derive(Clone)]
struct CountEvictions(Arc<JwtCacheStats>);

impl quick_cache::Lifecycle<Key, Arc<Entry>> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _: &mut (), _: Key, _: Arc<Entry>) {
        self.0.evictions.fetch_add(1, Ordering::Relaxed);
    }
}

impl JwtCache {
    /// A cache with `settings`, or `None` when they turn it off.
    pub fn new(settings: &JwtCacheSettings) -> Option<Self> {
        if !settings.enabled() {
            return None;
        }
        let floor = (settings.max_bytes / settings.max_entries).max(1);
        let stats = Arc::new(JwtCacheStats::default());
        let options = quick_cache::OptionsBuilder::new()
            // A guess at the entries the byte bound holds (the table grows past it if needed).
            .estimated_items_capacity(
                usize::try_from(settings.max_entries.min(settings.max_bytes / 1024).max(1))
                    .unwrap_or(usize::MAX),
            )
            .weight_capacity(settings.max_bytes)
            .build()
            .ok()?;
        let entries = Entries::with_options(
            options,
            ByWeight,
            quick_cache::DefaultHashBuilder::default(),
            CountEvictions(stats.clone()),
        );
        Some(Self {
            entries: Arc::new(entries),
            floor,
            next_sweep: Mutex::new(None),
            stats,
        })
    }

    /// Hit, miss and drop counters.
    pub fn stats(&self) -> &JwtCacheStats {
        &self.stats
    }

    /// Entries now held (expired ones not yet swept away included: they are never used).
    pub fn entry_count(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Estimated bytes now held.
    pub fn weighted_size(&self) -> u64 {
        self.entries.weight()
    }

    /// `SHA-256("jwt-cache\0" ‖ SHA-256(signed part) ‖ signature part)`, the parts split at the
    /// token's last `.`: a different token gives a different key unless SHA-256 collides.
    pub(crate) fn hash(token: &str) -> Hashed {
        let (signed, signature) = token.rsplit_once('.').unwrap_or((token, ""));
        let inner = digest::digest(&SHA256, signed.as_bytes());
        let mut outer = digest::Context::new(&SHA256);
        outer.update(b"jwt-cache\0");
        outer.update(inner.as_ref());
        outer.update(signature.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(outer.finish().as_ref());
        Hashed {
            key,
            signed: inner,
            signed_len: signed.len(),
        }
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        self.entries.get(key)
    }

    pub(crate) fn drop_entry(&self, key: &Key) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        self.entries.remove(key);
    }

    /// Keeps an accepted token's verdict until its `exp` (`now_ms`: the wall clock, Unix ms;
    /// `now`: the monotonic clock, which schedules the sweeps).
    pub(crate) fn insert(
        &self,
        key: Key,
        principal: &Principal,
        checked: Checked,
        now_ms: f64,
        now: Instant,
    ) {
        self.sweep_if_due(now_ms, now);
        let left_ms = checked.exp * 1000.0 - now_ms;
        // A token in its last second (or accepted only thanks to the skew) is not worth keeping.
        if left_ms.is_nan() || left_ms < 1000.0 {
            return;
        }
        let bytes = size_of::<Entry>() as u64
            + ENTRY_OVERHEAD
            + checked.kid.as_ref().map_or(0, |k| k.len() as u64)
            + principal_heap(principal);
        let weight = u32::try_from(bytes.max(self.floor)).unwrap_or(u32::MAX);
        self.entries.insert(
            key,
            Arc::new(Entry {
                principal: principal.clone(),
                checked,
                weight,
            }),
        );
    }

    /// Every [`SWEEP_EVERY`] of the monotonic clock, on an insert, drops the entries whose
    /// token a verification would now refuse as expired (by `now_ms`, the wall clock): on a
    /// blocking thread of the runtime when there is one, in place otherwise. The sweep reads the
    /// table an entry at a time and removes each expired one on its own, so no lookup waits for
    /// it and an insert waits at most for one removal. At most one sweep starts per period; a
    /// wall clock stepped back or forth moves which entries are expired, never how often.
    fn sweep_if_due(&self, now_ms: f64, now: Instant) {
        let Ok(mut due) = self.next_sweep.try_lock() else {
            return;
        };
        if due.is_some_and(|d| now < d) {
            return;
        }
        *due = Some(now + SWEEP_EVERY);
        drop(due);
        let entries = self.entries.clone();
        let sweep = move || {
            let gone: Vec<Key> = entries
                .iter()
                .filter(|(_, e)| expired(e.checked.exp, now_ms))
                .map(|(k, _)| k)
                .collect();
            for key in gone {
                entries.remove_if(&key, |e| expired(e.checked.exp, now_ms));
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(sweep)),
            Err(_) => sweep(),
        }
    }

    pub(crate) fn hit(&self) {
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn miss(&self) {
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
    }
}

/// How often expired entries are swept away (on an insert, in the background). Until then an
/// expired entry takes its share of the bounds but is never used: a hit checks `exp` again.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The table's own bookkeeping per entry (key, slot, queue links, the `Arc`'s counts), roughly.
const ENTRY_OVERHEAD: u64 = 160;

/// Heap bytes a principal holds, estimated (allocator rounding and map nodes approximated).
fn principal_heap(p: &Principal) -> u64 {
    let s = |v: &String| v.capacity() as u64;
    match p {
        Principal::User(u) => {
            s(&u.user_id)
                + s(&u.session_id)
                + u.org_id.as_ref().map_or(0, s)
                + u.authorized_party.as_ref().map_or(0, s)
                + u.actor.as_ref().map_or(0, value_heap)
                // The payload's text (an `Arc<str>`); a parsed `Value` is never kept here.
                + 16
                + u.claims.json_len() as u64
        }
        Principal::Machine(m) => {
            s(&m.machine_id)
                + s(&m.token_id)
                + m.scopes.iter().map(|x| 24 + s(x)).sum::<u64>()
                + m.claims.as_ref().map_or(0, |c| value_heap(c))
        }
    }
}

fn value_heap(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.capacity() as u64,
        Value::Array(a) => a.capacity() as u64 * 32 + a.iter().map(value_heap).sum::<u64>(),
        // A B-tree entry: the key's `String`, the `Value`, and the node's share and slack.
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| 96 + k.capacity() as u64 + value_heap(v))
            .sum(),
        _ => 0,
    }
}
