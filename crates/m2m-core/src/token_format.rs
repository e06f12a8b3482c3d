//! The one token-format enum: what a sender asks Clerk to mint, and what a receiver verified.

use serde::{Deserialize, Serialize};

use crate::error::InvalidValue;

/// The format of an M2M token: what [`MintSettings::format`](crate::settings::MintSettings::format) asks
/// Clerk for, and what [`MachinePrincipal::format`](crate::verifier::MachinePrincipal::format) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// `mt_…`, verified by calling Clerk; revocable.
    #[default]
    Opaque,
    /// A signed JWT, verifiable locally with the instance JWKS; not revocable.
    Jwt,
}

impl std::str::FromStr for TokenFormat {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "opaque" => Ok(Self::Opaque),
            "jwt" => Ok(Self::Jwt),
            _ => Err(InvalidValue::new(format!(
                "expected `opaque` or `jwt`, got {s:?}"
            ))),
        }
    }
}
