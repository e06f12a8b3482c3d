//! The initial state of a mock: instance, machines and users. JSON, so a file can seed the
//! `clerk-mock` service and tests can build one in code.

use serde::{Deserialize, Serialize};

use crate::error::SetupError;

/// The seed the `clerk-mock` service uses unless `CLERK_MOCK_SEED` names another file.
pub const DEFAULT_SEED_JSON: &str = include_str!("../seed/default.json");

/// Everything a mock starts with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The Clerk instance.
    #[serde(default)]
    pub instance: InstanceSeed,
    /// Machines, created in order; `scoped_machines` may name machines by id or name.
    #[serde(default)]
    pub machines: Vec<MachineSeed>,
    /// Users that session tokens can be minted for.
    #[serde(default)]
    pub users: Vec<UserSeed>,
    /// Behaviour switches for choices the Clerk reference leaves unconfirmed.
    #[serde(default)]
    pub behaviour: Behaviour,
}

/// The instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSeed {
    /// `ins_…`; random when absent. Also the JWT `kid`.
    pub id: Option<String>,
    /// `sk_test_…`; random when absent.
    pub secret_key: Option<String>,
    /// The `iss` of every JWT; default `https://clerk.mock.localhost`.
    pub issuer: Option<String>,
    /// The `azp` of session tokens; default `http://localhost:3000`.
    pub authorized_party: Option<String>,
    /// RSA signing key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Random when absent. The
    /// default seed carries a fixed one so the JWKS and `CLERK_JWT_KEY` stay the same across
    /// restarts; it signs nothing but mock tokens.
    pub signing_key_pem: Option<String>,
}

/// A machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSeed {
    /// `mch_` + 27 word characters; random when absent.
    pub id: Option<String>,
    /// Display name, 1–255 characters.
    pub name: String,
    /// `ak_…`; random when absent.
    pub secret_key: Option<String>,
    /// Machines this one may call (ids or names).
    #[serde(default)]
    pub scoped_machines: Vec<String>,
    /// Lifetime of tokens created without `seconds_until_expiration`; default 3600.
    pub default_token_ttl: Option<u64>,
}

/// A user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    /// `user_…`; random when absent.
    pub id: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: String,
    /// Last name.
    #[serde(default)]
    pub last_name: String,
    /// Primary email.
    #[serde(default)]
    pub email: String,
}

/// Choices where Clerk's behaviour is not documented (see docs/clerk-mock.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behaviour {
    /// What `seconds_until_expiration: null` means: the machine's `default_token_ttl` (default,
    /// as the 2026 spec says) or a token that never expires (as older SDK docs say).
    pub null_lifetime: NullLifetime,
    /// Verifying a revoked or expired opaque token: 404 (default) or 200 with the flags set.
    pub revoked_verify: RevokedVerify,
    /// Default lifetime of session tokens, seconds (Clerk: 60).
    pub session_token_ttl_seconds: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            null_lifetime: NullLifetime::DefaultTtl,
            revoked_verify: RevokedVerify::NotFound,
            session_token_ttl_seconds: 60,
        }
    }
}

/// See [`Behaviour::null_lifetime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NullLifetime {
    /// Use the machine's `default_token_ttl`.
    DefaultTtl,
    /// The token never expires (`expiration: null`).
    Never,
}

/// See [`Behaviour::revoked_verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokedVerify {
    /// 404 `resource_not_found`, as for an unknown token.
    NotFound,
    /// 200 with `revoked`/`expired` set (what a verifier must still reject).
    FlagsOn200,
}

impl Seed {
    /// The repository's default seed: `JobTracker.API`, `CandidateRepresenter.Bot` and
    /// `JobApplier.Bot` (each bot scoped to the API) and two demo users, with fixed ids and keys.
    pub fn demo() -> Self {
        // The file is part of the crate and covered by a test; failing to parse it is a build bug.
        #[allow(clippy::expect_used)]
        serde_json::from_str(DEFAULT_SEED_JSON).expect("seed/default.json is valid")
    }

    /// Parses a seed from JSON.
    pub fn from_json(json: &str) -> Result<Self, SetupError> {
        serde_json::from_str(json).map_err(|e| SetupError::Seed(format!("invalid seed: {e}")))
    }
}
