//! [`VerifierConfigBuilder`]: a verifier's settings put together in code, typed, checked as the
//! environment's are.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use super::{
    JwksSettings, JwtCacheSettings, JwtPolicy, KeySource, OpaqueCacheSettings, VerifierConfig,
};
use crate::clerk::DEFAULT_API_BASE_URL;
use crate::error::{ConfigError, InvalidValue};
use crate::values;

/// Builds a [`VerifierConfig`] in code, with no environment: each method sets what one setting
/// of docs/verification.md, *Configuration*, sets (named in its doc), and
/// [`build`](Self::build) checks the values as the environment's are checked, naming that
/// variable in its error. What is not set keeps the library's default.
///
/// ```
/// use m2m_core::VerifierConfig;
/// use m2m_core::settings::OpaqueCacheSettings;
/// use secrecy::SecretString;
/// use std::time::Duration;
///
/// let config = VerifierConfig::builder()
///     .machine_secret_key(SecretString::from("ak_0123456789abcdef"))
///     .machine_id("mch_2JobTrackerApi00000000000")
///     .opaque_cache(OpaqueCacheSettings {
///         ttl: Duration::from_secs(30),
///         ..OpaqueCacheSettings::default()
///     })
///     .build()?;
/// assert_eq!(config.api_base_url, "https://api.clerk.com/v1");
/// assert_eq!(config.machine_id.as_deref(), Some("mch_2JobTrackerApi00000000000"));
/// # Ok::<(), m2m_core::config::ConfigError>(())
/// ```
///
/// A verifier of session JWTs with the instance's PEM public key, for one browser origin:
///
/// ```
/// # use m2m_core::VerifierConfig;
/// # fn pem() -> String { String::new() }
/// use m2m_core::settings::KeySource;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = VerifierConfig::builder()
///     .key_source(KeySource::from_pem(&pem())?)
///     .authorized_parties(["https://app.example.com"])
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifierConfigBuilder {
    api_base_url: String,
    machine_secret_key: Option<SecretString>,
    machine_key_file: Option<PathBuf>,
    instance_secret_key: Option<SecretString>,
    key_source: Option<KeySource>,
    authorized_parties: Vec<String>,
    issuer: Option<String>,
    machine_id: Option<String>,
    cache: OpaqueCacheSettings,
    jwks: JwksSettings,
    jwt_cache: JwtCacheSettings,
}

impl Default for VerifierConfigBuilder {
    fn default() -> Self {
        Self {
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            machine_secret_key: None,
            machine_key_file: None,
            instance_secret_key: None,
            key_source: None,
            authorized_parties: Vec::new(),
            issuer: None,
            machine_id: None,
            cache: OpaqueCacheSettings::default(),
            jwks: JwksSettings::default(),
            jwt_cache: JwtCacheSettings::default(),
        }
    }
}

impl VerifierConfig {
    /// A [`VerifierConfigBuilder`] with the library's defaults: the typed way to configure a
    /// verifier in code (the environment's is `VerifierConfig::from_env`, feature `cli`).
    pub fn builder() -> VerifierConfigBuilder {
        VerifierConfigBuilder::default()
    }
}

impl VerifierConfigBuilder {
    /// Clerk's Backend API (`CLERK_API_BASE_URL`; default `https://api.clerk.com/v1`); a
    /// clerk-mock's URL in tests.
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = url.into();
        self
    }

    /// This service's machine secret key (`ak_…`, `CLERK_MACHINE_SECRET_KEY`): opaque M2M tokens
    /// are verified with it, so Clerk accepts only tokens scoped to this machine.
    pub fn machine_secret_key(mut self, key: SecretString) -> Self {
        self.machine_secret_key = Some(key);
        self
    }

    /// The file that holds this service's machine secret key (`CLERK_MACHINE_SECRET_KEY_FILE`,
    /// its first line): [`build`](Self::build) reads the key from it unless
    /// [`machine_secret_key`](Self::machine_secret_key) gave one, and the verifier follows the
    /// file ([`MachineKey::watched`](crate::MachineKey::watched)), so a key `m2m rotate` writes
    /// there verifies without a restart.
    pub fn machine_secret_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.machine_key_file = Some(path.into());
        self
    }

    /// The instance secret key (`sk_…`, `CLERK_SECRET_KEY`): session JWT keys come from Clerk's
    /// `GET /jwks` unless [`key_source`](Self::key_source) says otherwise, and opaque M2M tokens
    /// are verified with it when no machine key is set.
    pub fn instance_secret_key(mut self, key: SecretString) -> Self {
        self.instance_secret_key = Some(key);
        self
    }

    /// Where JWT signing keys come from, ahead of the instance key: a PEM public key
    /// ([`KeySource::from_pem`], `CLERK_JWT_KEY`) or a public JWKS URL ([`KeySource::Url`],
    /// `CLERK_JWKS_URL`).
    pub fn key_source(mut self, source: KeySource) -> Self {
        self.key_source = Some(source);
        self
    }

    /// Browser origins a session token's `azp` must be one of (`CLERK_AUTHORIZED_PARTIES`,
    /// `scheme://host[:port]`); none (the default) accepts any origin of the instance.
    pub fn authorized_parties(
        mut self,
        origins: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.authorized_parties = origins.into_iter().map(Into::into).collect();
        self
    }

    /// The `iss` every JWT must carry (`CLERK_ISSUER`); unset, not checked.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// This service's own machine id (`mch_…`, `CLERK_MACHINE_ID`): an M2M token is accepted
    /// only if its scopes list it.
    pub fn machine_id(mut self, id: impl Into<String>) -> Self {
        self.machine_id = Some(id.into());
        self
    }

    /// The opaque-token cache, the Clerk miss budget and each client's share of it
    /// (`M2M_VERIFY_*`).
    pub fn opaque_cache(mut self, cache: OpaqueCacheSettings) -> Self {
        self.cache = cache;
        self
    }

    /// The JWKS cache (`CLERK_JWKS_CACHE_TTL_SECONDS`).
    pub fn jwks(mut self, jwks: JwksSettings) -> Self {
        self.jwks = jwks;
        self
    }

    /// The cache of verified JWTs (`CLERK_JWT_CACHE_MAX_ENTRIES`, `CLERK_JWT_CACHE_MAX_MIB`).
    pub fn jwt_cache(mut self, jwt_cache: JwtCacheSettings) -> Self {
        self.jwt_cache = jwt_cache;
        self
    }

    /// The settings, checked: URLs, keys, machine id and origins as their variables are
    /// checked, and at least one way to verify something (a machine key, the instance key, or a
    /// JWT key source). Opaque tokens are verified with the machine key, else the instance key;
    /// JWT keys come from [`key_source`](Self::key_source), else the instance key's
    /// `GET /jwks`. The error names the variable the faulty setting stands for.
    pub fn build(self) -> Result<VerifierConfig, ConfigError> {
        let at = |var: &'static str| move |e: InvalidValue| ConfigError::new(var, e);
        let machine_secret_key = match (self.machine_secret_key, &self.machine_key_file) {
            (Some(key), _) => Some(key),
            (None, Some(path)) => Some(crate::machine_key::read_key(path).map_err(|reason| {
                ConfigError::new(
                    "CLERK_MACHINE_SECRET_KEY_FILE",
                    format!("{}: {reason}", path.display()),
                )
            })?),
            (None, None) => None,
        };
        let api_base_url =
            values::http_url(&self.api_base_url).map_err(at("CLERK_API_BASE_URL"))?;
        if let Some(key) = &machine_secret_key {
            values::check_machine_key(key).map_err(at("CLERK_MACHINE_SECRET_KEY"))?;
        }
        if let Some(key) = &self.instance_secret_key {
            values::instance_secret_key(key.expose_secret()).map_err(at("CLERK_SECRET_KEY"))?;
        }
        let key_source = match self.key_source {
            Some(KeySource::Url(url)) => Some(KeySource::Url(
                values::http_url(&url).map_err(at("CLERK_JWKS_URL"))?,
            )),
            Some(source) => Some(source),
            None => self.instance_secret_key.clone().map(KeySource::Bapi),
        };
        let machine_id = self
            .machine_id
            .map(|id| values::machine_id(&id))
            .transpose()
            .map_err(at("CLERK_MACHINE_ID"))?;
        let authorized_parties = self
            .authorized_parties
            .iter()
            .map(|p| values::origin(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(at("CLERK_AUTHORIZED_PARTIES"))?;
        // Followed only when the machine key verifies (the instance key is not).
        let machine_key_file = machine_secret_key.as_ref().and(self.machine_key_file);
        let verify_key = machine_secret_key.or(self.instance_secret_key);
        if verify_key.is_none() && key_source.is_none() {
            return Err(ConfigError::new(
                "CLERK_MACHINE_SECRET_KEY",
                "nothing to verify tokens with: set one of CLERK_MACHINE_SECRET_KEY (this service's machine key, enough alone to accept M2M tokens), CLERK_SECRET_KEY (the instance key: M2M and session tokens), CLERK_JWT_KEY or CLERK_JWKS_URL (session tokens and JWT-format M2M tokens)",
            ));
        }
        Ok(VerifierConfig {
            api_base_url,
            verify_key,
            machine_key_file,
            key_source,
            policy: JwtPolicy {
                authorized_parties,
                issuer: self.issuer,
                receiver: machine_id.clone(),
            },
            cache: self.cache,
            machine_id,
            jwks: self.jwks,
            jwt_cache: self.jwt_cache,
        })
    }
}
