//! A token minted with the machine secret key, cached, and refreshed before it expires.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use rand::Rng;
use secrecy::SecretString;
use serde_json::Value;

use super::TokenError;
use crate::clerk::{ClerkClient, ClerkError, CreateM2mTokenRequest};
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::machine_key::MachineKey;
use crate::secret::BearerToken;
use crate::token_format::TokenFormat;

/// How minted tokens are requested and when they are refreshed.
#[derive(Debug, Clone, PartialEq)]
pub struct MintSettings {
    /// Requested lifetime (`seconds_until_expiration`); default 3600 s.
    pub lifetime: Duration,
    /// Refresh this long before expiry; default 300 s. Must be shorter than `lifetime`.
    pub refresh_buffer: Duration,
    /// Up to this much is added at random to the buffer of each token, so a fleet started
    /// together does not refresh in lockstep; default 0.
    pub refresh_jitter: Duration,
    /// `opaque` (default) or `jwt`.
    pub format: TokenFormat,
    /// Custom claims for minted tokens.
    pub claims: Option<Value>,
    /// Sent as `min_remaining_ttl_seconds` when set. Must exceed `refresh_buffer`: otherwise Clerk
    /// may hand back a live token that this cache already considers due for refresh, and every
    /// call would "refresh" into the same token.
    pub min_remaining_ttl: Option<Duration>,
    /// After a failed refresh while a valid token remains, wait at least this long before trying
    /// again (doubling per consecutive failure, up to `max_failure_backoff`); default 1 s.
    pub failure_backoff: Duration,
    /// Cap for the failure backoff; default 30 s.
    pub max_failure_backoff: Duration,
}

impl Default for MintSettings {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(3600),
            refresh_buffer: Duration::from_secs(300),
            refresh_jitter: Duration::ZERO,
            format: TokenFormat::Opaque,
            claims: None,
            min_remaining_ttl: None,
            failure_backoff: Duration::from_secs(1),
            max_failure_backoff: Duration::from_secs(30),
        }
    }
}

impl MintSettings {
    /// The defaults for JWT-format tokens: 300 s lifetime, refreshed 60 s before expiry. A JWT
    /// is verified offline and cannot be revoked, so its lifetime is the longest a leaked or
    /// revoked one keeps working; keeping it short costs one mint every ~4 minutes.
    pub fn jwt() -> Self {
        Self {
            lifetime: Duration::from_secs(300),
            refresh_buffer: Duration::from_secs(60),
            format: TokenFormat::Jwt,
            ..Self::default()
        }
    }

    /// Checks the relations between the settings; the error names the offending setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lifetime.is_zero() {
            return Err(ConfigError::new(
                "M2M_TOKEN_LIFETIME_SECONDS",
                "must be greater than 0",
            ));
        }
        if self.refresh_buffer + self.refresh_jitter >= self.lifetime {
            return Err(ConfigError::new(
                "M2M_TOKEN_REFRESH_BUFFER_SECONDS",
                format!(
                    "the refresh buffer ({}s, plus jitter {}s) must be shorter than the token lifetime ({}s)",
                    self.refresh_buffer.as_secs(),
                    self.refresh_jitter.as_secs(),
                    self.lifetime.as_secs()
                ),
            ));
        }
        if let Some(min) = self.min_remaining_ttl
            && (min <= self.refresh_buffer + self.refresh_jitter || min >= self.lifetime)
        {
            return Err(ConfigError::new(
                "M2M_TOKEN_MIN_REMAINING_TTL_SECONDS",
                format!(
                    "must be greater than the refresh buffer ({}s) and less than the lifetime ({}s)",
                    (self.refresh_buffer + self.refresh_jitter).as_secs(),
                    self.lifetime.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

/// Mints M2M tokens with a machine secret key and caches them.
///
/// - Reads are lock-free; only a refresh takes a lock, and callers that waited for it reuse its
///   result (one create call however many callers arrive at once).
/// - A failed refresh keeps serving the current token while it is valid, and is not retried more
///   often than the failure backoff.
/// - [`invalidate`](Self::invalidate) clears only the exact token that was rejected.
#[derive(Clone)]
pub struct MintedTokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    client: ClerkClient,
    key: MachineKey,
    settings: MintSettings,
    clock: Arc<dyn Clock>,
    current: ArcSwapOption<Cached>,
    refresh: tokio::sync::Mutex<RefreshState>,
    /// Bumped on every finished fetch, so callers that queued behind a failing fetch share its
    /// error instead of each calling Clerk again.
    generation: AtomicU64,
    creates: AtomicU64,
}

struct Cached {
    token: BearerToken,
    token_id: String,
    expires_at: Instant,
    refresh_at: Instant,
}

#[derive(Default)]
struct RefreshState {
    consecutive_failures: u32,
    last_failure: Option<(Instant, Arc<ClerkError>)>,
}

impl fmt::Debug for MintedTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedTokenSource")
            .field("settings", &self.inner.settings)
            .field(
                "cached_token_id",
                &self
                    .inner
                    .current
                    .load()
                    .as_ref()
                    .map(|c| c.token_id.clone()),
            )
            .finish_non_exhaustive()
    }
}

impl MintedTokenSource {
    /// A source that mints with `machine_secret_key` (`ak_…`) through `client`.
    pub fn new(
        client: ClerkClient,
        machine_secret_key: SecretString,
        settings: MintSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_machine_key(
            client,
            MachineKey::fixed(machine_secret_key),
            settings,
            clock,
        )
    }

    /// A source that mints with `key`, which may follow its file
    /// ([`MachineKey::watched`]): a rotated key is used from the next mint on, and a mint Clerk
    /// refuses (401/403) is retried once when the file holds a new key.
    pub fn with_machine_key(
        client: ClerkClient,
        key: MachineKey,
        settings: MintSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                key,
                settings,
                clock,
                current: ArcSwapOption::empty(),
                refresh: tokio::sync::Mutex::new(RefreshState::default()),
                generation: AtomicU64::new(0),
                creates: AtomicU64::new(0),
            }),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &MintSettings {
        &self.inner.settings
    }

    /// How many create calls this source has made (successful or not).
    pub fn create_calls(&self) -> u64 {
        self.inner.creates.load(Ordering::Relaxed)
    }

    /// The id (`mt_…`, not secret) of the cached token, if any.
    pub fn cached_token_id(&self) -> Option<String> {
        self.inner
            .current
            .load()
            .as_ref()
            .map(|c| c.token_id.clone())
    }

    /// A token that is valid now: the cached one, or a freshly minted one when the cached one is
    /// within its refresh window.
    pub async fn token(&self) -> Result<BearerToken, TokenError> {
        let inner = &self.inner;
        if let Some(cached) = inner.current.load().as_ref()
            && inner.clock.now() < cached.refresh_at
        {
            tracing::debug!(token_id = %cached.token_id, "using cached M2M token");
            return Ok(cached.token.clone());
        }
        let seen_generation = inner.generation.load(Ordering::Acquire);
        let mut state = inner.refresh.lock().await;

        let now = inner.clock.now();
        let current = inner.current.load_full();
        if let Some(cached) = &current
            && now < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let still_valid = current.as_ref().filter(|c| now < c.expires_at);
        if let Some((failed_at, err)) = &state.last_failure {
            if inner.generation.load(Ordering::Acquire) != seen_generation {
                // A fetch failed while this caller waited: share its outcome.
                return match still_valid {
                    Some(c) => Ok(c.token.clone()),
                    None => Err(TokenError::Mint(err.clone())),
                };
            }
            if let Some(c) = still_valid
                && now < *failed_at + self.failure_backoff(state.consecutive_failures)
            {
                return Ok(c.token.clone());
            }
        }

        let result = {
            use tracing::Instrument as _;
            // With OpenTelemetry on: the bot's mint, its Clerk call a child span.
            self.mint(now)
                .instrument(tracing::info_span!("m2m.mint"))
                .await
        };
        inner.generation.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(cached) => {
                let token = cached.token.clone();
                state.consecutive_failures = 0;
                state.last_failure = None;
                inner.current.store(Some(Arc::new(cached)));
                Ok(token)
            }
            Err(err) => {
                let err = Arc::new(err);
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                state.last_failure = Some((inner.clock.now(), err.clone()));
                match still_valid {
                    Some(c) => {
                        let left = c.expires_at.saturating_duration_since(inner.clock.now());
                        tracing::warn!(
                            error = %err,
                            token_id = %c.token_id,
                            expires_in_secs = left.as_secs(),
                            "M2M token refresh failed; still serving the current token until it expires"
                        );
                        Ok(c.token.clone())
                    }
                    None => {
                        tracing::error!(error = %err, "could not obtain an M2M token");
                        Err(TokenError::Mint(err))
                    }
                }
            }
        }
    }

    /// Forgets `token` if it is the cached one (e.g. the server answered 401 to it). Returns
    /// whether it was. A rejected token that is no longer cached changes nothing, so a late 401
    /// for an old token cannot throw away a newer one.
    pub fn invalidate(&self, token: &BearerToken) -> bool {
        let current = self.inner.current.load_full();
        match current {
            Some(c) if c.token == *token => {
                let previous = self.inner.current.compare_and_swap(&Some(c.clone()), None);
                let cleared = previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, &c));
                if cleared {
                    tracing::info!(token_id = %c.token_id, "M2M token rejected by the server; it will be replaced");
                }
                cleared
            }
            _ => false,
        }
    }

    fn failure_backoff(&self, failures: u32) -> Duration {
        let s = &self.inner.settings;
        s.failure_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(s.max_failure_backoff)
    }

    async fn mint(&self, started: Instant) -> Result<Cached, ClerkError> {
        let inner = &self.inner;
        let s = &inner.settings;
        let request = CreateM2mTokenRequest {
            token_format: s.format,
            seconds_until_expiration: Some(s.lifetime.as_secs().max(1)),
            claims: s.claims.clone(),
            min_remaining_ttl_seconds: s.min_remaining_ttl.map(|d| d.as_secs()),
        };
        let key = inner.key.current();
        inner.creates.fetch_add(1, Ordering::Relaxed);
        let created = match inner.client.create_m2m_token(&key, &request).await {
            Err(ClerkError::Unauthorized { .. } | ClerkError::Forbidden { .. })
                if inner.key.refused(&key) =>
            {
                // The key was rotated and its file holds the new one: one more try, no loop.
                tracing::info!(
                    "Clerk refused the machine key; minting again with the key now in its file"
                );
                inner.creates.fetch_add(1, Ordering::Relaxed);
                inner
                    .client
                    .create_m2m_token(&inner.key.current(), &request)
                    .await?
            }
            other => other?,
        };
        let info = &created.info;

        // Lifetime on Clerk's own clock, so local clock skew does not matter. A reused token
        // (min_remaining_ttl_seconds) has less left than expiration - created_at: the HTTP Date
        // tells how much.
        let clerk_now = info
            .created_at
            .max(created.server_time_ms.unwrap_or(i64::MIN));
        let remaining = match info.expiration {
            Some(exp) => Duration::from_millis(u64::try_from(exp - clerk_now).unwrap_or(0)),
            None => s.lifetime,
        };
        let jitter = if s.refresh_jitter.is_zero() {
            Duration::ZERO
        } else {
            s.refresh_jitter
                .mul_f64(rand::rng().random_range(0.0..=1.0))
        };
        let buffer = s.refresh_buffer + jitter;
        // A token shorter than the buffer would be "due" at once; use half its life instead.
        let refresh_in = if remaining > buffer {
            remaining - buffer
        } else {
            remaining / 2
        };
        tracing::info!(
            token_id = %info.id,
            format = ?s.format,
            expires_in_secs = remaining.as_secs(),
            refresh_in_secs = refresh_in.as_secs(),
            "M2M token created"
        );
        Ok(Cached {
            token: created.token,
            token_id: info.id.clone(),
            expires_at: started + remaining,
            refresh_at: started + refresh_in,
        })
    }
}
