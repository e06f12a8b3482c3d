//! Value parsers: each takes a setting's text and returns its typed value, or why not. The
//! settings groups give them to clap (`value_parser = …`); services use them for settings of
//! their own. A reason never echoes a secret.

use secrecy::{ExposeSecret, SecretString};

use crate::secret::BearerToken;
use crate::token_format::TokenFormat;
#[cfg(feature = "verify")]
use crate::verify::{KeySource, TrustedProxies};

/// An `http(s)://` URL with a host, without a trailing slash.
pub fn http_url(v: &str) -> Result<String, String> {
    let v = v.trim();
    match reqwest::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(v.trim_end_matches('/').to_owned())
        }
        _ => Err(format!("expected an http(s) URL, got {v:?}")),
    }
}

/// A whole number of seconds.
pub fn seconds(v: &str) -> Result<u64, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("expected a whole number of seconds, got {:?}", v.trim()))
}

/// A whole number, 0 allowed.
pub fn whole(v: &str) -> Result<u64, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("expected a whole number (0 or more), got {:?}", v.trim()))
}

/// A whole number, at least 1.
pub fn positive(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a whole number of at least 1, got {:?}",
            v.trim()
        )),
    }
}

/// `true/false/1/0/yes/no/on/off`, any case.
pub fn flag(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("expected true or false, got {:?}", v.trim())),
    }
}

/// A machine secret key: `ak_…`. An instance key (`sk_…`) here is a common mix-up, named as such.
pub fn machine_secret_key(v: &str) -> Result<SecretString, String> {
    let k = v.trim();
    if k.starts_with("ak_") && k.len() > 3 && k.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(SecretString::from(k))
    } else if k.starts_with("sk_") {
        Err(
            "holds an instance secret key (sk_…); it must be a machine secret key (ak_…)"
                .to_owned(),
        )
    } else {
        Err("must be a machine secret key starting with ak_".to_owned())
    }
}

/// An instance secret key: `sk_…`.
pub fn instance_secret_key(v: &str) -> Result<SecretString, String> {
    let k = v.trim();
    if k.starts_with("sk_") {
        Ok(SecretString::from(k))
    } else {
        Err("must be an instance secret key starting with sk_".to_owned())
    }
}

/// A pre-created M2M token, used as is.
pub fn bearer_token(v: &str) -> Result<BearerToken, String> {
    Ok(BearerToken::new(v.trim()))
}

/// `opaque` or `jwt`.
pub fn token_format(v: &str) -> Result<TokenFormat, String> {
    v.parse()
}

/// A machine id: `mch_` and letters or digits, 64 characters at most.
pub fn machine_id(v: &str) -> Result<String, String> {
    let id = v.trim();
    let ok = id.len() <= 64
        && id.strip_prefix("mch_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if ok {
        Ok(id.to_owned())
    } else {
        Err(format!(
            "expected a machine id (mch_ followed by letters and digits), got {id:?}"
        ))
    }
}

/// Machine ids separated by commas; blank items are skipped.
pub fn machine_ids(v: &str) -> Result<Vec<String>, String> {
    list(v).map(machine_id).collect()
}

/// Browser origins (`scheme://host[:port]`, nothing after) separated by commas, as a session
/// token's `azp` carries them; blank items are skipped. A value with a path or a trailing slash
/// would never match an `azp`, so it is refused.
pub fn origins(v: &str) -> Result<Vec<String>, String> {
    list(v)
        .map(|p| {
            let ok = reqwest::Url::parse(p).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.origin().ascii_serialization() == p
            });
            if ok {
                Ok(p.to_owned())
            } else {
                Err(format!(
                    "{p:?} is not an origin (scheme://host[:port], no path or trailing slash); session tokens' azp would never match it"
                ))
            }
        })
        .collect()
}

/// A PEM public key (literal `\n` sequences accepted): verifies JWTs without a network call.
#[cfg(feature = "verify")]
pub fn jwt_key(v: &str) -> Result<KeySource, String> {
    KeySource::from_pem(v)
}

/// Proxy addresses or CIDR ranges separated by commas (`10.0.0.0/8, 192.0.2.1`); blank items are
/// skipped, and an empty list trusts no proxy.
#[cfg(feature = "verify")]
pub fn trusted_proxies(v: &str) -> Result<TrustedProxies, String> {
    v.parse()
}

/// The items of a comma-separated list, trimmed, blank ones skipped.
fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// Checks a key the caller holds already (e.g. read from a file) as [`machine_secret_key`] would.
pub(crate) fn check_machine_key(key: &SecretString) -> Result<(), String> {
    machine_secret_key(key.expose_secret()).map(|_| ())
}
