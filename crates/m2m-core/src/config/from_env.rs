//! `from_env`: a verifier's or a sender's settings from the environment alone, through the same
//! clap groups a service's `--help` lists. Here, not beside the types they build, so that settings
//! parsing depends on the verification and client types and never the other way round.

#[cfg(feature = "client")]
use super::TokenArgs;
#[cfg(feature = "verify")]
use super::VerifierArgs;
use super::{ClerkArgs, ConfigError, Env};
#[cfg(feature = "client")]
use crate::{BearerToken, M2mClientConfig};

#[cfg(feature = "verify")]
impl crate::VerifierConfig {
    /// Reads the environment through the same settings as a service's `--help` lists
    /// ([`ClerkArgs`] and [`VerifierArgs`]). At least one way to verify something must be
    /// configured. To put the settings together in code instead, see
    /// [`VerifierConfig::builder`](crate::VerifierConfig::builder).
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        #[derive(clap::Parser)]
        struct Settings {
            #[command(flatten)]
            clerk: ClerkArgs,
            #[command(flatten)]
            verifier: VerifierArgs,
        }
        let Settings { clerk, verifier } = env.parse()?;
        verifier.verifier_config(&clerk)
    }
}

#[cfg(feature = "client")]
impl M2mClientConfig {
    /// Reads the settings of a service named `service` (e.g. `job-applier`) from `env`, so that
    /// `CLERK_M2M_TOKEN_JOB_APPLIER` takes precedence over `CLERK_M2M_TOKEN`.
    pub fn from_env(env: &Env<'_>, service: Option<&str>) -> Result<Self, ConfigError> {
        #[derive(clap::Parser)]
        struct Settings {
            #[command(flatten)]
            clerk: ClerkArgs,
            #[command(flatten)]
            token: TokenArgs,
        }
        let Settings { clerk, mut token } = env.parse()?;
        let own = service.map(|s| {
            format!(
                "CLERK_M2M_TOKEN_{}",
                super::service_tokens::normalise_service_name(s)
            )
        });
        if let Some(t) = own.map(|var| env.secret(&var)).transpose()?.flatten() {
            token.clerk_m2m_token = Some(BearerToken::new(t));
        }
        token.client_config(&clerk)
    }
}
