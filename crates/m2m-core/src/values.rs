//! The checks of setting values that need nothing but the value: URLs, keys, machine ids,
//! origins. [`config::parse`](crate::config::parse) hands them to clap, and
//! [`VerifierConfigBuilder`](crate::settings::VerifierConfigBuilder) applies the same ones to
//! values given in code. A leaf module, so both can use it.

use secrecy::{ExposeSecret, SecretString};

use crate::error::InvalidValue;
use crate::secret::BearerToken;
use crate::token_format::TokenFormat;

/// An `http(s)://` URL with a host, without a trailing slash.
pub fn http_url(v: &str) -> Result<String, InvalidValue> {
    let v = v.trim();
    match reqwest::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(v.trim_end_matches('/').to_owned())
        }
        _ => Err(InvalidValue::new(format!(
            "expected an http(s) URL, got {v:?}"
        ))),
    }
}

/// A whole number of seconds.
pub fn seconds(v: &str) -> Result<u64, InvalidValue> {
    v.trim().parse().map_err(|_| {
        InvalidValue::new(format!(
            "expected a whole number of seconds, got {:?}",
            v.trim()
        ))
    })
}

/// A whole number, 0 allowed.
pub fn whole(v: &str) -> Result<u64, InvalidValue> {
    v.trim().parse().map_err(|_| {
        InvalidValue::new(format!(
            "expected a whole number (0 or more), got {:?}",
            v.trim()
        ))
    })
}

/// A whole number, at least 1.
pub fn positive(v: &str) -> Result<u32, InvalidValue> {
    match v.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(InvalidValue::new(format!(
            "expected a whole number of at least 1, got {:?}",
            v.trim()
        ))),
    }
}

/// `true/false/1/0/yes/no/on/off`, any case.
pub fn flag(v: &str) -> Result<bool, InvalidValue> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(InvalidValue::new(format!(
            "expected true or false, got {:?}",
            v.trim()
        ))),
    }
}

/// A machine secret key: `ak_…`. An instance key (`sk_…`) here is a common mix-up, named as such.
pub fn machine_secret_key(v: &str) -> Result<SecretString, InvalidValue> {
    let k = v.trim();
    if k.starts_with("ak_") && k.len() > 3 && k.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(SecretString::from(k))
    } else if k.starts_with("sk_") {
        Err(InvalidValue::new(
            "holds an instance secret key (sk_…); it must be a machine secret key (ak_…)",
        ))
    } else {
        Err(InvalidValue::new(
            "must be a machine secret key starting with ak_",
        ))
    }
}

/// An instance secret key: `sk_…`.
pub fn instance_secret_key(v: &str) -> Result<SecretString, InvalidValue> {
    let k = v.trim();
    if k.starts_with("sk_") {
        Ok(SecretString::from(k))
    } else {
        Err(InvalidValue::new(
            "must be an instance secret key starting with sk_",
        ))
    }
}

/// A pre-created M2M token, used as is.
pub fn bearer_token(v: &str) -> Result<BearerToken, InvalidValue> {
    Ok(BearerToken::new(v.trim()))
}

/// `opaque` or `jwt`.
pub fn token_format(v: &str) -> Result<TokenFormat, InvalidValue> {
    v.parse()
}

/// A machine id: `mch_` and letters or digits, 64 characters at most.
pub fn machine_id(v: &str) -> Result<String, InvalidValue> {
    let id = v.trim();
    let ok = id.len() <= 64
        && id.strip_prefix("mch_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if ok {
        Ok(id.to_owned())
    } else {
        Err(InvalidValue::new(format!(
            "expected a machine id (mch_ followed by letters and digits), got {id:?}"
        )))
    }
}

/// Machine ids separated by commas; blank items are skipped.
pub fn machine_ids(v: &str) -> Result<Vec<String>, InvalidValue> {
    list(v).map(machine_id).collect()
}

/// Browser origins (`scheme://host[:port]`, nothing after) separated by commas, as a session
/// token's `azp` carries them; blank items are skipped. A value with a path or a trailing slash
/// would never match an `azp`, so it is refused.
pub fn origins(v: &str) -> Result<Vec<String>, InvalidValue> {
    list(v).map(origin).collect()
}

/// One browser origin, as [`origins`] checks each.
pub(crate) fn origin(p: &str) -> Result<String, InvalidValue> {
    let ok = reqwest::Url::parse(p).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host().is_some()
            && u.origin().ascii_serialization() == p
    });
    if ok {
        Ok(p.to_owned())
    } else {
        Err(InvalidValue::new(format!(
            "{p:?} is not an origin (scheme://host[:port], no path or trailing slash); session tokens' azp would never match it"
        )))
    }
}

/// The items of a comma-separated list, trimmed, blank ones skipped.
fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// Checks a key the caller holds already (e.g. read from a file) as [`machine_secret_key`] would.
pub(crate) fn check_machine_key(key: &SecretString) -> Result<(), InvalidValue> {
    machine_secret_key(key.expose_secret()).map(|_| ())
}
