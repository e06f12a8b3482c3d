//! The tuning knobs: what a [`VerifierConfig`](crate::VerifierConfig) and an
//! [`M2mClientConfig`](crate::M2mClientConfig) are made of, with the library's defaults
//! (`Default`), and [`VerifierConfigBuilder`], the typed way to put a verifier's settings
//! together in code. Reading them from the environment or a command line is
//! [`config`](crate::config)'s.

pub use crate::error::InvalidValue;
pub use crate::token_format::TokenFormat;
#[cfg(feature = "client")]
pub use crate::token_source::MintSettings;
#[cfg(feature = "verify")]
pub use crate::verify::{
    JWT_CACHE_SWEEP_EVERY, JwksSettings, JwtCacheSettings, JwtKey, JwtPolicy, KeySource,
    MAX_TRACKED_CLIENTS, MissBudget, OpaqueCacheSettings, TrustedProxies, VerifierConfigBuilder,
};
