//! Where JWT verification keys come from, and the JWKS cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use secrecy::SecretString;

use super::error::{VerifyError, reason};
use crate::clerk::{ClerkClient, ClerkError};
use crate::clock::Clock;

/// How long fetched keys are fresh (Clerk's SDK: 5 minutes).
pub const JWKS_TTL: Duration = Duration::from_secs(300);
/// At most one refetch per this interval when a token names an unknown `kid`, so a flood of
/// random `kid`s cannot flood Clerk.
pub const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Where the keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// `CLERK_JWT_KEY`: one PEM public key, no network. The token's `kid` is not checked against
    /// it (as in Clerk's SDK).
    Pem(Arc<DecodingKey>),
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
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let pem = pem.trim().replace("\\n", "\n");
        DecodingKey::from_rsa_pem(pem.as_bytes())
            .map(|k| Self::Pem(Arc::new(k)))
            .map_err(|_| "not a PEM-encoded RSA public key".to_owned())
    }
}

struct Snapshot {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
}

/// Keys by `kid`, refreshed every 5 minutes and on an unknown `kid` (rate-limited). A failed
/// refresh keeps the last good keys.
pub struct KeyStore {
    source: KeySource,
    client: ClerkClient,
    clock: Arc<dyn Clock>,
    snapshot: ArcSwap<Snapshot>,
    refresh: tokio::sync::Mutex<()>,
    /// (last fetch attempt of any kind, last refetch caused by an unknown kid)
    attempts: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("source", &self.source)
            .field(
                "kids",
                &self.snapshot.load().keys.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyStore {
    /// A store reading from `source`; `client` fetches remote keys.
    pub fn new(source: KeySource, client: ClerkClient, clock: Arc<dyn Clock>) -> Self {
        Self {
            source,
            client,
            clock,
            snapshot: ArcSwap::from_pointee(Snapshot {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            refresh: tokio::sync::Mutex::new(()),
            attempts: Mutex::new((None, None)),
        }
    }

    /// The key to verify a token whose header names `kid`.
    pub async fn key(&self, kid: Option<&str>) -> Result<Arc<DecodingKey>, VerifyError> {
        if let KeySource::Pem(key) = &self.source {
            return Ok(key.clone());
        }
        let Some(kid) = kid else {
            return Err(VerifyError::Invalid(reason::KID));
        };
        let now = self.clock.now();
        let snap = self.snapshot.load_full();
        let fresh = snap.fetched_at.is_some_and(|t| now < t + JWKS_TTL);
        if let Some(key) = snap.keys.get(kid) {
            if !fresh {
                // Stale but known: try to refresh, and keep using the key if that fails.
                let _ = self.refresh(Why::Stale).await;
                if let Some(k) = self.snapshot.load().keys.get(kid) {
                    return Ok(k.clone());
                }
            }
            return Ok(key.clone());
        }
        // Unknown kid: a rotated key, or junk. Refetch, at most once per interval.
        let why = if snap.fetched_at.is_none() {
            Why::Initial
        } else if fresh {
            Why::UnknownKid
        } else {
            Why::Stale
        };
        let _ = self.refresh(why).await;
        if let Some(k) = self.snapshot.load().keys.get(kid) {
            return Ok(k.clone());
        }
        if self.snapshot.load().fetched_at.is_none() {
            return Err(VerifyError::Unavailable {
                reason: "signing keys could not be loaded".into(),
                retry_after: Duration::from_secs(5),
            });
        }
        Err(VerifyError::Invalid(reason::KID))
    }

    /// Fetches keys now (e.g. at start); returns how many RSA keys were loaded.
    pub async fn prefetch(&self) -> Result<usize, VerifyError> {
        if matches!(self.source, KeySource::Pem(_)) {
            return Ok(1);
        }
        let _ = self.refresh(Why::Initial).await;
        match self.snapshot.load().fetched_at {
            Some(_) => Ok(self.snapshot.load().keys.len()),
            None => Err(VerifyError::Unavailable {
                reason: "signing keys could not be loaded".into(),
                retry_after: Duration::from_secs(5),
            }),
        }
    }

    async fn refresh(&self, why: Why) -> Result<(), RefreshSkipped> {
        let seen = self.snapshot.load().fetched_at;
        let _guard = self.refresh.lock().await;
        if self.snapshot.load().fetched_at != seen {
            return Ok(()); // someone refreshed while we waited
        }
        let now = self.clock.now();
        {
            let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
            let (any, kid) = &mut *attempts;
            // Never more than one fetch a second, whatever happens; unknown kids at most one
            // refetch per interval; stale keys at most one attempt per interval.
            let too_soon =
                |last: &Option<Instant>, gap: Duration| last.is_some_and(|t| now < t + gap);
            let limited = too_soon(any, Duration::from_secs(1))
                || (why == Why::UnknownKid && too_soon(kid, UNKNOWN_KID_REFETCH_INTERVAL))
                || (why == Why::Stale && too_soon(any, UNKNOWN_KID_REFETCH_INTERVAL));
            if limited {
                return Err(RefreshSkipped);
            }
            *any = Some(now);
            if why == Why::UnknownKid {
                *kid = Some(now);
            }
        }
        let fetched = match &self.source {
            KeySource::Pem(_) => return Ok(()),
            KeySource::Url(url) => self.client.jwks_from_url(url).await,
            KeySource::Bapi(sk) => self.client.jwks(sk).await,
        };
        match fetched {
            Ok(set) => {
                let keys = rsa_keys(&set);
                if keys.is_empty() {
                    tracing::error!(
                        "JWKS has no usable RSA signing key; keeping the previous keys"
                    );
                    return Ok(());
                }
                tracing::debug!(count = keys.len(), "JWKS loaded");
                self.snapshot.store(Arc::new(Snapshot {
                    keys,
                    fetched_at: Some(self.clock.now()),
                }));
            }
            Err(ClerkError::Unauthorized { .. }) => {
                tracing::error!(
                    "Clerk rejected CLERK_SECRET_KEY when fetching the JWKS; keeping the previous keys"
                );
            }
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys"),
        }
        Ok(())
    }
}

struct RefreshSkipped;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Initial,
    Stale,
    UnknownKid,
}

fn rsa_keys(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
    set.keys
        .iter()
        .filter(|k| matches!(k.algorithm, AlgorithmParameters::RSA(_)))
        .filter_map(|k| {
            let kid = k.common.key_id.clone()?;
            DecodingKey::from_jwk(k).ok().map(|d| (kid, Arc::new(d)))
        })
        .collect()
}
