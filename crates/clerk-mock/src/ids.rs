//! Clerk-shaped identifiers and secrets.

use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

const WORD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn word_chars(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| WORD[rng.random_range(0..WORD.len())] as char)
        .collect()
}

/// `ins_` + 27 word characters.
pub fn instance_id() -> String {
    format!("ins_{}", word_chars(27))
}

/// `mch_` + 27 word characters.
pub fn machine_id() -> String {
    format!("mch_{}", word_chars(27))
}

/// `user_` + 27 word characters.
pub fn user_id() -> String {
    format!("user_{}", word_chars(27))
}

/// `sess_` + 27 word characters.
pub fn session_id() -> String {
    format!("sess_{}", word_chars(27))
}

/// `mt_` + 32 lowercase hex: the token *id*.
pub fn token_id() -> String {
    let mut rng = rand::rng();
    format!(
        "mt_{}",
        (0..32)
            .map(|_| format!("{:x}", rng.random_range(0..16u8)))
            .collect::<String>()
    )
}

/// `mt_` + 32 uppercase alphanumerics: the opaque bearer *secret*, distinct from the id.
pub fn opaque_secret() -> String {
    format!(
        "mt_{}",
        Alphanumeric
            .sample_string(&mut rand::rng(), 32)
            .to_ascii_uppercase()
    )
}

/// `ak_` + 40 alphanumerics: a machine secret key.
pub fn machine_secret_key() -> String {
    format!("ak_{}", Alphanumeric.sample_string(&mut rand::rng(), 40))
}

/// A JWT `jti` for session tokens.
pub fn jti() -> String {
    Alphanumeric
        .sample_string(&mut rand::rng(), 20)
        .to_ascii_lowercase()
}

/// Whether `id` matches `^mch_\w{27}$`.
pub fn is_machine_id(id: &str) -> bool {
    id.strip_prefix("mch_").is_some_and(|rest| {
        rest.len() == 27 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// Whether `id` matches `^mt_[0-9A-Fa-f]{32}$`.
pub fn is_token_id(id: &str) -> bool {
    id.strip_prefix("mt_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
