//! Configuration from environment variables (names and defaults: docs/m2m-core.md, *Settings*,
//! and docs/verification.md, *Configuration*).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::clerk::{ClerkClient, DEFAULT_API_BASE_URL, TokenFormat};
use crate::clock::Clock;
use crate::secret::BearerToken;
use crate::token_source::{MintSettings, MintedTokenSource, TokenSource, normalise_service_name};

/// A missing or malformed setting. The message names the variable and never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// A new error for `var`.
    pub fn new(var: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            reason: reason.into(),
        }
    }
}

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads settings through a lookup function, so tests need not touch the process environment.
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl<'a> Env<'a> {
    /// The process environment.
    pub fn process() -> Env<'static> {
        Env {
            lookup: Box::new(|k| std::env::var(k).ok()),
        }
    }

    /// Any lookup, e.g. a map in tests.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// The trimmed value of `var`, `None` if unset or blank.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A boolean (`true/false/1/0/yes/no/on/off`), or `default` when unset.
    pub fn bool(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    var,
                    format!("expected true or false, got {v:?}"),
                )),
            },
        }
    }

    /// A whole number of seconds, or `default` when unset.
    pub fn seconds(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().map(Duration::from_secs).map_err(|_| {
                ConfigError::new(
                    var,
                    format!("expected a whole number of seconds, got {v:?}"),
                )
            }),
        }
    }

    /// A secret; its value is never echoed in errors.
    pub fn secret(&self, var: &str) -> Option<SecretString> {
        self.get(var).map(SecretString::from)
    }

    /// An `http(s)://` URL, or `default` when unset.
    pub fn url(&self, var: &str, default: &str) -> Result<String, ConfigError> {
        let v = self.get(var).unwrap_or_else(|| default.to_owned());
        match reqwest::Url::parse(&v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(v.trim_end_matches('/').to_owned())
            }
            _ => Err(ConfigError::new(
                var,
                format!("expected an http(s) URL, got {v:?}"),
            )),
        }
    }
}

/// Everything a caller (a bot) needs to authenticate outgoing requests.
#[derive(Debug, Clone)]
pub struct M2mClientConfig {
    /// `CLERK_API_BASE_URL` (default `https://api.clerk.com/v1`).
    pub api_base_url: String,
    /// `CLERK_MACHINE_SECRET_KEY`: this machine's `ak_…` key, used to mint.
    pub machine_secret_key: Option<SecretString>,
    /// `CLERK_M2M_TOKEN` (or `CLERK_M2M_TOKEN_<SERVICE>`): a pre-created token, used as is.
    pub static_token: Option<BearerToken>,
    /// `ENABLE_M2M_AUTH` (default true).
    pub enabled: bool,
    /// Lifetime, buffer, format (`M2M_TOKEN_LIFETIME_SECONDS`, `M2M_TOKEN_REFRESH_BUFFER_SECONDS`,
    /// `M2M_TOKEN_REFRESH_JITTER_SECONDS`, `M2M_TOKEN_FORMAT`, `M2M_TOKEN_MIN_REMAINING_TTL_SECONDS`).
    pub mint: MintSettings,
}

impl M2mClientConfig {
    /// Reads the settings of a service named `service` (e.g. `job-applier`), so that
    /// `CLERK_M2M_TOKEN_JOB_APPLIER` takes precedence over `CLERK_M2M_TOKEN`.
    pub fn from_env(env: &Env<'_>, service: Option<&str>) -> Result<Self, ConfigError> {
        let api_base_url = env.url("CLERK_API_BASE_URL", DEFAULT_API_BASE_URL)?;
        let enabled = env.bool("ENABLE_M2M_AUTH", true)?;
        let static_token = service
            .and_then(|s| env.get(&format!("CLERK_M2M_TOKEN_{}", normalise_service_name(s))))
            .or_else(|| env.get("CLERK_M2M_TOKEN"))
            .map(BearerToken::new);
        let machine_secret_key = env.secret("CLERK_MACHINE_SECRET_KEY");
        if let Some(key) = &machine_secret_key {
            check_machine_key(key)?;
        }
        let format = match env.get("M2M_TOKEN_FORMAT") {
            None => TokenFormat::Opaque,
            Some(v) => v
                .parse()
                .map_err(|e: String| ConfigError::new("M2M_TOKEN_FORMAT", e))?,
        };
        // JWTs cannot be revoked: their defaults are short (MintSettings::jwt).
        let defaults = match format {
            TokenFormat::Jwt => MintSettings::jwt(),
            TokenFormat::Opaque => MintSettings::default(),
        };
        let min_remaining_ttl = match env.get("M2M_TOKEN_MIN_REMAINING_TTL_SECONDS") {
            None => None,
            Some(_) => Some(env.seconds("M2M_TOKEN_MIN_REMAINING_TTL_SECONDS", Duration::ZERO)?),
        };
        let mint = MintSettings {
            lifetime: env.seconds("M2M_TOKEN_LIFETIME_SECONDS", defaults.lifetime)?,
            refresh_buffer: env
                .seconds("M2M_TOKEN_REFRESH_BUFFER_SECONDS", defaults.refresh_buffer)?,
            refresh_jitter: env
                .seconds("M2M_TOKEN_REFRESH_JITTER_SECONDS", defaults.refresh_jitter)?,
            format,
            min_remaining_ttl,
            ..defaults
        };
        mint.validate()
            .map_err(|(var, reason)| ConfigError::new(var, reason))?;
        if enabled && static_token.is_none() && machine_secret_key.is_none() {
            return Err(ConfigError::new(
                "CLERK_MACHINE_SECRET_KEY",
                "required to mint M2M tokens (or set CLERK_M2M_TOKEN to a pre-created token, or ENABLE_M2M_AUTH=false)",
            ));
        }
        Ok(Self {
            api_base_url,
            machine_secret_key,
            static_token,
            enabled,
            mint,
        })
    }

    /// The token source these settings describe: disabled, else static, else minted.
    pub fn token_source(
        &self,
        client: &ClerkClient,
        clock: Arc<dyn Clock>,
    ) -> Result<TokenSource, ConfigError> {
        if !self.enabled {
            tracing::warn!(
                "M2M authentication disabled (ENABLE_M2M_AUTH=false): requests carry no token"
            );
            return Ok(TokenSource::Disabled);
        }
        if let Some(token) = &self.static_token {
            tracing::info!("M2M authentication enabled with a pre-created token");
            return Ok(TokenSource::Static(token.clone()));
        }
        let key = self.machine_secret_key.clone().ok_or_else(|| {
            ConfigError::new("CLERK_MACHINE_SECRET_KEY", "required to mint M2M tokens")
        })?;
        tracing::info!(
            lifetime_secs = self.mint.lifetime.as_secs(),
            refresh_buffer_secs = self.mint.refresh_buffer.as_secs(),
            format = ?self.mint.format,
            "M2M authentication enabled: tokens are minted with the machine secret key"
        );
        Ok(TokenSource::Minted(MintedTokenSource::new(
            client.clone(),
            key,
            self.mint.clone(),
            clock,
        )))
    }
}

/// A machine secret key starts with `ak_`; an instance key (`sk_`) here is a common mix-up.
pub fn check_machine_key(key: &SecretString) -> Result<(), ConfigError> {
    use secrecy::ExposeSecret;
    let k = key.expose_secret();
    if k.starts_with("ak_") && k.len() > 3 && k.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else if k.starts_with("sk_") {
        Err(ConfigError::new(
            "CLERK_MACHINE_SECRET_KEY",
            "holds an instance secret key (sk_…); it must be a machine secret key (ak_…)",
        ))
    } else {
        Err(ConfigError::new(
            "CLERK_MACHINE_SECRET_KEY",
            "must be a machine secret key starting with ak_",
        ))
    }
}
