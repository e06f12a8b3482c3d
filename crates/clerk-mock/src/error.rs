//! Why a mock could not be set up.

/// A seed or a signing key the mock cannot start with. The message says what is wrong (it names
/// the offending machine or field, never a key's bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The signing key is not a PKCS#8 RSA private key (DER, or PEM of it).
    #[error("{0}")]
    SigningKey(String),
    /// The seed is not JSON of a [`Seed`](crate::Seed)'s shape, or breaks one of Clerk's rules
    /// (an id's or a key's prefix, a name's length).
    #[error("{0}")]
    Seed(String),
}
