//! Value parsers: each takes a setting's text and returns its typed value, or why not
//! ([`InvalidValue`]). The settings groups give them to clap (`value_parser = …`); services use
//! them for settings of their own. A reason never echoes a secret.

#[cfg(feature = "verify")]
use crate::verify::{KeySource, TrustedProxies};

pub use crate::error::InvalidValue;
pub(crate) use crate::values::check_machine_key;
pub use crate::values::{
    bearer_token, flag, http_url, instance_secret_key, machine_id, machine_ids, machine_secret_key,
    origins, positive, seconds, token_format, whole,
};

/// A PEM public key (literal `\n` sequences accepted): verifies JWTs without a network call.
#[cfg(feature = "verify")]
pub fn jwt_key(v: &str) -> Result<KeySource, InvalidValue> {
    KeySource::from_pem(v)
}

/// Proxy addresses or CIDR ranges separated by commas (`10.0.0.0/8, 192.0.2.1`); blank items are
/// skipped, and an empty list trusts no proxy.
#[cfg(feature = "verify")]
pub fn trusted_proxies(v: &str) -> Result<TrustedProxies, InvalidValue> {
    v.parse()
}
