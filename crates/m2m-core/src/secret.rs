//! Secret-bearing types. Their `Debug` never shows the value, and they are not `Display`.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A bearer token (an opaque `mt_…` M2M token, an M2M JWT or a session JWT).
///
/// Cheap to clone; compared by value in constant time-ish (length, then all bytes), used by
/// [`crate::TokenSource::invalidate`] to clear exactly the token a server rejected.
#[derive(Clone)]
pub struct BearerToken(Arc<SecretString>);

impl BearerToken {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(SecretString::from(value.into())))
    }

    /// The raw token. Only for putting it in an `Authorization` header or a request body.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// A short, non-reversible fingerprint (first 8 bytes of SHA-256, hex) for correlating log
    /// lines without revealing the token.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.expose())
    }
}

impl PartialEq for BearerToken {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for BearerToken {}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BearerToken([REDACTED {}])", self.fingerprint())
    }
}

impl<'de> serde::Deserialize<'de> for BearerToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

/// Hex SHA-256 prefix of a secret, safe to log.
pub(crate) fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}
