//! A sender's settings and the token source they describe.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;

use crate::clerk::ClerkClient;
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::machine_key::MachineKey;
use crate::secret::BearerToken;
use crate::token_source::{MintSettings, MintedTokenSource, TokenSource};

/// Everything a caller (a bot) needs to authenticate outgoing requests.
#[derive(Debug, Clone)]
pub struct M2mClientConfig {
    /// `CLERK_API_BASE_URL` (default `https://api.clerk.com/v1`).
    pub api_base_url: String,
    /// `CLERK_MACHINE_SECRET_KEY`: this machine's `ak_…` key, used to mint.
    pub machine_secret_key: Option<SecretString>,
    /// `CLERK_MACHINE_SECRET_KEY_FILE`: the file the key was read from. The token source follows
    /// it ([`MachineKey::watched`]), so a rotated key is used without a restart.
    pub machine_secret_key_file: Option<PathBuf>,
    /// `CLERK_M2M_TOKEN` (or `CLERK_M2M_TOKEN_<SERVICE>`): a pre-created token, used as is.
    pub static_token: Option<BearerToken>,
    /// `ENABLE_M2M_AUTH` (default true).
    pub enabled: bool,
    /// Lifetime, buffer, format (`M2M_TOKEN_LIFETIME_SECONDS`, `M2M_TOKEN_REFRESH_BUFFER_SECONDS`,
    /// `M2M_TOKEN_REFRESH_JITTER_SECONDS`, `M2M_TOKEN_FORMAT`, `M2M_TOKEN_MIN_REMAINING_TTL_SECONDS`).
    pub mint: MintSettings,
}

impl M2mClientConfig {
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
        let key = match &self.machine_secret_key_file {
            Some(path) => MachineKey::watched(key, path, clock.clone()),
            None => MachineKey::fixed(key),
        };
        tracing::info!(
            lifetime_secs = self.mint.lifetime.as_secs(),
            key_file = ?key.file(),
            refresh_buffer_secs = self.mint.refresh_buffer.as_secs(),
            format = ?self.mint.format,
            "M2M authentication enabled: tokens are minted with the machine secret key"
        );
        Ok(TokenSource::Minted(MintedTokenSource::with_machine_key(
            client.clone(),
            key,
            self.mint.clone(),
            clock,
        )))
    }
}
