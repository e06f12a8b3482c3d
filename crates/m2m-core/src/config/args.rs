//! The settings as clap groups, each declared once: a service `#[command(flatten)]`s the groups it
//! needs, and they build m2m-core's types directly. Their defaults are the library's own (the
//! `Default` impls of the settings structs), and blank values count as unset
//! (see [`Env::parse`](super::Env::parse)).

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, parse};
#[cfg(feature = "verify")]
use crate::VerifierConfig;
use crate::clerk::DEFAULT_API_BASE_URL;
#[cfg(feature = "verify")]
use crate::verify::{
    JWKS_TTL, JwksSettings, JwtCacheSettings, KeySource, MissBudget, OpaqueCacheSettings,
    TrustedProxies,
};
#[cfg(feature = "client")]
use crate::{BearerToken, M2mClientConfig, settings::MintSettings, settings::TokenFormat};

/// Who this service is at Clerk: both sides need it.
#[derive(Debug, Clone, clap::Args)]
pub struct ClerkArgs {
    /// Clerk Backend API base URL (point it at clerk-mock locally).
    #[arg(long, env = "CLERK_API_BASE_URL", default_value = DEFAULT_API_BASE_URL, value_parser = parse::http_url)]
    pub clerk_api_base_url: String,
    /// This service's machine secret key (`ak_…`). A bot mints its M2M tokens with it; a service
    /// that verifies M2M tokens verifies opaque ones with it, so Clerk accepts only tokens scoped
    /// to this machine.
    #[arg(long, env = "CLERK_MACHINE_SECRET_KEY", hide_env_values = true, value_parser = parse::machine_secret_key)]
    pub clerk_machine_secret_key: Option<SecretString>,
    /// The file the machine key was read from (`CLERK_MACHINE_SECRET_KEY_FILE`, which help lists
    /// with the key): the key is read from it again when it changes, so a rotated key is used
    /// without a restart (docs/m2m-core.md, *Key rotation without restart*).
    #[arg(long, env = "CLERK_MACHINE_SECRET_KEY_FILE", hide = true)]
    pub clerk_machine_secret_key_file: Option<PathBuf>,
}

impl Default for ClerkArgs {
    fn default() -> Self {
        Self {
            clerk_api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            clerk_machine_secret_key: None,
            clerk_machine_secret_key_file: None,
        }
    }
}

#[cfg(feature = "client")]
/// Where a caller's M2M token comes from (docs/m2m-core.md, *Settings*).
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// A pre-created M2M token, used as is (no minting when set).
    #[arg(long, env = "CLERK_M2M_TOKEN", hide_env_values = true, value_parser = parse::bearer_token)]
    pub clerk_m2m_token: Option<BearerToken>,
    /// `false` sends no token (testing only).
    #[arg(long, env = "ENABLE_M2M_AUTH", default_value_t = true, action = clap::ArgAction::Set, value_parser = parse::flag)]
    pub enable_m2m_auth: bool,
    /// Requested token lifetime, seconds [default: 3600 for opaque tokens, 300 for JWTs, which
    /// cannot be revoked and so are kept short].
    #[arg(long, env = "M2M_TOKEN_LIFETIME_SECONDS", value_parser = parse::seconds)]
    pub m2m_token_lifetime_seconds: Option<u64>,
    /// Refresh this long before expiry, seconds [default: 300 for opaque tokens, 60 for JWTs].
    #[arg(long, env = "M2M_TOKEN_REFRESH_BUFFER_SECONDS", value_parser = parse::seconds)]
    pub m2m_token_refresh_buffer_seconds: Option<u64>,
    /// `opaque` or `jwt`.
    #[arg(long, env = "M2M_TOKEN_FORMAT", default_value = "opaque", value_parser = parse::token_format)]
    pub m2m_token_format: TokenFormat,
    /// Up to this many extra seconds of buffer, random per token, so a fleet does not refresh in
    /// lockstep.
    #[arg(long, env = "M2M_TOKEN_REFRESH_JITTER_SECONDS", default_value_t = MintSettings::default().refresh_jitter.as_secs(), value_parser = parse::seconds)]
    pub m2m_token_refresh_jitter_seconds: u64,
    /// Ask Clerk to reuse a live token with at least this many seconds left (must exceed the
    /// buffer plus jitter); unset: never.
    #[arg(long, env = "M2M_TOKEN_MIN_REMAINING_TTL_SECONDS", value_parser = parse::seconds)]
    pub m2m_token_min_remaining_ttl_seconds: Option<u64>,
}

#[cfg(feature = "client")]
impl Default for TokenArgs {
    fn default() -> Self {
        Self {
            clerk_m2m_token: None,
            enable_m2m_auth: true,
            m2m_token_lifetime_seconds: None,
            m2m_token_refresh_buffer_seconds: None,
            m2m_token_format: TokenFormat::default(),
            m2m_token_refresh_jitter_seconds: MintSettings::default().refresh_jitter.as_secs(),
            m2m_token_min_remaining_ttl_seconds: None,
        }
    }
}

#[cfg(feature = "client")]
impl TokenArgs {
    /// The caller's settings, checked as a whole: errors name the variable.
    pub fn client_config(&self, clerk: &ClerkArgs) -> Result<M2mClientConfig, ConfigError> {
        // JWTs cannot be revoked: their defaults are short (MintSettings::jwt).
        let defaults = match self.m2m_token_format {
            TokenFormat::Jwt => MintSettings::jwt(),
            TokenFormat::Opaque => MintSettings::default(),
        };
        let mint = MintSettings {
            lifetime: self
                .m2m_token_lifetime_seconds
                .map_or(defaults.lifetime, Duration::from_secs),
            refresh_buffer: self
                .m2m_token_refresh_buffer_seconds
                .map_or(defaults.refresh_buffer, Duration::from_secs),
            refresh_jitter: Duration::from_secs(self.m2m_token_refresh_jitter_seconds),
            format: self.m2m_token_format,
            min_remaining_ttl: self
                .m2m_token_min_remaining_ttl_seconds
                .map(Duration::from_secs),
            ..defaults
        };
        mint.validate()?;
        if self.enable_m2m_auth
            && self.clerk_m2m_token.is_none()
            && clerk.clerk_machine_secret_key.is_none()
        {
            return Err(ConfigError::new(
                "CLERK_MACHINE_SECRET_KEY",
                "required to mint M2M tokens (or set CLERK_M2M_TOKEN to a pre-created token, or ENABLE_M2M_AUTH=false)",
            ));
        }
        Ok(M2mClientConfig {
            api_base_url: clerk.clerk_api_base_url.clone(),
            machine_secret_key: clerk.clerk_machine_secret_key.clone(),
            machine_secret_key_file: clerk
                .clerk_machine_secret_key
                .as_ref()
                .and(clerk.clerk_machine_secret_key_file.clone()),
            static_token: self.clerk_m2m_token.clone(),
            enabled: self.enable_m2m_auth,
            mint,
        })
    }
}

#[cfg(feature = "verify")]
/// How JWTs (users' session tokens, M2M JWTs) are verified, and which machine this service is as
/// a receiver (docs/verification.md, *Configuration*).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JwtArgs {
    /// PEM public key of the Clerk instance (Clerk dashboard → API keys → JWKS Public Key):
    /// verifies JWTs without a network call. Takes precedence over `CLERK_JWKS_URL`.
    #[arg(long, env = "CLERK_JWT_KEY", hide_env_values = true, value_parser = parse::jwt_key)]
    pub clerk_jwt_key: Option<KeySource>,
    /// A public JWKS URL, alternative to `CLERK_JWT_KEY` (e.g. the Frontend API's
    /// `/.well-known/jwks.json`).
    #[arg(long, env = "CLERK_JWKS_URL", value_parser = parse::http_url)]
    pub clerk_jwks_url: Option<String>,
    /// Comma-separated origins allowed in a session token's `azp` (exact match). Empty: any
    /// origin of the Clerk instance (a WARN at start says so).
    #[arg(long, env = "CLERK_AUTHORIZED_PARTIES", default_value = "", hide_default_value = true, value_parser = parse::origins)]
    pub clerk_authorized_parties: ::std::vec::Vec<String>,
    /// If set, a JWT's `iss` must equal it.
    #[arg(long, env = "CLERK_ISSUER")]
    pub clerk_issuer: Option<String>,
    /// This service's own machine id (`mch_…`). An M2M token is accepted only if its scopes list
    /// it; without it, JWT-format M2M tokens are refused.
    #[arg(long, env = "CLERK_MACHINE_ID", value_parser = parse::machine_id)]
    pub clerk_machine_id: Option<String>,
}

#[cfg(feature = "verify")]
impl JwtArgs {
    /// A verifier of these JWTs and of the opaque M2M tokens `clerk`'s machine key can verify,
    /// with the default cache and limits.
    pub fn verifier_config(&self, clerk: &ClerkArgs) -> Result<VerifierConfig, ConfigError> {
        VerifierArgs {
            jwt: self.clone(),
            ..VerifierArgs::default()
        }
        .verifier_config(clerk)
    }
}

#[cfg(feature = "verify")]
/// Everything a service that verifies tokens can set: [`JwtArgs`], the instance key, and the
/// caches and limits that keep verification standing under attack (docs/verification.md,
/// "Under attack").
#[derive(Debug, Clone, clap::Args)]
pub struct VerifierArgs {
    /// How JWTs are verified.
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Instance secret key (`sk_…`): session JWT keys come from `GET /jwks`; it also verifies
    /// opaque M2M tokens when no machine key is set.
    #[arg(long, env = "CLERK_SECRET_KEY", hide_env_values = true, value_parser = parse::instance_secret_key)]
    pub clerk_secret_key: Option<SecretString>,
    /// Seconds a Clerk verification of an opaque token is reused; 0 verifies every request.
    /// This is the revocation latency: the longest a revoked opaque token keeps working here
    /// (a trade-off: a longer TTL means fewer Clerk calls, a shorter one faster revocation).
    #[arg(long, env = "M2M_VERIFY_CACHE_TTL_SECONDS", default_value_t = OpaqueCacheSettings::default().ttl.as_secs(), value_parser = parse::seconds)]
    pub m2m_verify_cache_ttl_seconds: u64,
    /// A cached opaque token used within this many seconds of its cache entry's end is
    /// re-verified at Clerk in the background, once: a hot token never waits for Clerk, and a
    /// revocation is seen before the entry lapses. At most half the TTL; 0 turns it off.
    #[arg(long, env = "M2M_VERIFY_CACHE_REFRESH_AHEAD_SECONDS", default_value_t = OpaqueCacheSettings::default().refresh_ahead.as_secs(), value_parser = parse::seconds)]
    pub m2m_verify_cache_refresh_ahead_seconds: u64,
    /// Clerk verify calls (opaque-token cache misses) this process may make back to back. Past
    /// the budget a request gets 503 + Retry-After and Clerk is not called: random tokens cannot
    /// spend the Clerk instance's Backend API rate limit (per instance: 100 requests / 10 s in
    /// development, 1000 / 10 s in production), which every service shares.
    #[arg(long, env = "M2M_VERIFY_MISS_BURST", default_value_t = MissBudget::default().burst, value_parser = parse::positive)]
    pub m2m_verify_miss_burst: u32,
    /// Sustained Clerk verify calls per second that refill that budget. Bots mint about one
    /// token an hour and each is verified about once a minute per instance, so 10/s leaves
    /// ample room; keep burst + rate × instances under the Clerk limit.
    #[arg(long, env = "M2M_VERIFY_MISS_PER_SECOND", default_value_t = MissBudget::default().per_second, value_parser = parse::positive)]
    pub m2m_verify_miss_per_second: u32,
    /// One client address's share of that budget (an IPv6 client counts by its /64): how many
    /// Clerk verify calls its unknown tokens may start back to back. Past it, that client gets
    /// 503 and the budget is untouched, so a spray from one address cannot starve another's
    /// freshly minted token. Behind a load balancer every request has the balancer's address:
    /// set M2M_VERIFY_TRUSTED_PROXIES.
    #[arg(long, env = "M2M_VERIFY_MISS_PER_CLIENT_BURST", default_value_t = MissBudget::PER_CLIENT.burst, value_parser = parse::positive)]
    pub m2m_verify_miss_per_client_burst: u32,
    /// Sustained Clerk verify calls per second that refill one client address's share.
    #[arg(long, env = "M2M_VERIFY_MISS_PER_CLIENT_PER_SECOND", default_value_t = MissBudget::PER_CLIENT.per_second, value_parser = parse::positive)]
    pub m2m_verify_miss_per_client_per_second: u32,
    /// Load balancers or reverse proxies (addresses or CIDR ranges, comma-separated) whose
    /// X-Forwarded-For names the client for the per-client share: for a request from one of
    /// them, the client is the rightmost X-Forwarded-For hop that is not one of them. Empty
    /// (the default): the header is ignored, since any client can write it.
    #[arg(long, env = "M2M_VERIFY_TRUSTED_PROXIES", default_value = "", value_parser = parse::trusted_proxies)]
    pub m2m_verify_trusted_proxies: TrustedProxies,
    /// Seconds Clerk's JWT signing keys (JWKS) are fresh; refreshed in the background at 80 %
    /// of it, so a key removed from the JWKS stops verifying within about this long.
    #[arg(long, env = "CLERK_JWKS_CACHE_TTL_SECONDS", default_value_t = JWKS_TTL.as_secs() as u32, value_parser = parse::positive)]
    pub clerk_jwks_cache_ttl_seconds: u32,
    /// Verified JWTs (session and M2M) kept so a repeat costs a hash lookup instead of an RSA
    /// check; each entry still has `exp`/`nbf` and its signing key re-checked on every use.
    /// 0 turns the cache off.
    #[arg(long, env = "CLERK_JWT_CACHE_MAX_ENTRIES", default_value_t = JwtCacheSettings::default().max_entries, value_parser = parse::whole)]
    pub clerk_jwt_cache_max_entries: u64,
    /// Memory the JWT cache may take, MiB (whichever of this and the entry cap is hit first).
    #[arg(long, env = "CLERK_JWT_CACHE_MAX_MIB", default_value_t = (JwtCacheSettings::default().max_bytes >> 20) as u32, value_parser = parse::positive)]
    pub clerk_jwt_cache_max_mib: u32,
}

#[cfg(feature = "verify")]
impl Default for VerifierArgs {
    fn default() -> Self {
        let cache = OpaqueCacheSettings::default();
        Self {
            jwt: JwtArgs::default(),
            clerk_secret_key: None,
            m2m_verify_cache_ttl_seconds: cache.ttl.as_secs(),
            m2m_verify_cache_refresh_ahead_seconds: cache.refresh_ahead.as_secs(),
            m2m_verify_miss_burst: cache.budget.burst,
            m2m_verify_miss_per_second: cache.budget.per_second,
            m2m_verify_miss_per_client_burst: cache.per_client.burst,
            m2m_verify_miss_per_client_per_second: cache.per_client.per_second,
            m2m_verify_trusted_proxies: cache.trusted_proxies,
            clerk_jwks_cache_ttl_seconds: JWKS_TTL.as_secs() as u32,
            clerk_jwt_cache_max_entries: JwtCacheSettings::default().max_entries,
            clerk_jwt_cache_max_mib: (JwtCacheSettings::default().max_bytes >> 20) as u32,
        }
    }
}

#[cfg(feature = "verify")]
impl VerifierArgs {
    /// The verifier's settings. Key source precedence for JWTs: `CLERK_JWT_KEY`, then
    /// `CLERK_JWKS_URL`, then `CLERK_SECRET_KEY`; opaque tokens are verified with the machine
    /// key, else the instance key. At least one way to verify something must be configured.
    pub fn verifier_config(&self, clerk: &ClerkArgs) -> Result<VerifierConfig, ConfigError> {
        let jwt = &self.jwt;
        let mut config = VerifierConfig::builder()
            .api_base_url(&clerk.clerk_api_base_url)
            .authorized_parties(&jwt.clerk_authorized_parties)
            .opaque_cache(OpaqueCacheSettings {
                ttl: Duration::from_secs(self.m2m_verify_cache_ttl_seconds),
                refresh_ahead: Duration::from_secs(self.m2m_verify_cache_refresh_ahead_seconds),
                budget: MissBudget {
                    burst: self.m2m_verify_miss_burst,
                    per_second: self.m2m_verify_miss_per_second,
                },
                per_client: MissBudget {
                    burst: self.m2m_verify_miss_per_client_burst,
                    per_second: self.m2m_verify_miss_per_client_per_second,
                },
                trusted_proxies: self.m2m_verify_trusted_proxies.clone(),
                ..OpaqueCacheSettings::default()
            })
            .jwks(JwksSettings {
                ttl: Duration::from_secs(u64::from(self.clerk_jwks_cache_ttl_seconds)),
                ..JwksSettings::default()
            })
            .jwt_cache(JwtCacheSettings {
                max_entries: self.clerk_jwt_cache_max_entries,
                max_bytes: u64::from(self.clerk_jwt_cache_max_mib) << 20,
            });
        if let Some(key) = &clerk.clerk_machine_secret_key {
            config = config.machine_secret_key(key.clone());
            // Read from CLERK_MACHINE_SECRET_KEY_FILE: the verifier follows that file.
            if let Some(path) = &clerk.clerk_machine_secret_key_file {
                config = config.machine_secret_key_file(path.clone());
            }
        }
        if let Some(key) = &self.clerk_secret_key {
            config = config.instance_secret_key(key.clone());
        }
        // A PEM key wins over a JWKS URL, and either over the instance key's `GET /jwks`.
        match (&jwt.clerk_jwt_key, &jwt.clerk_jwks_url) {
            (Some(pem), _) => config = config.key_source(pem.clone()),
            (None, Some(url)) => config = config.key_source(KeySource::Url(url.clone())),
            (None, None) => {}
        }
        if let Some(issuer) = &jwt.clerk_issuer {
            config = config.issuer(issuer);
        }
        if let Some(id) = &jwt.clerk_machine_id {
            config = config.machine_id(id);
        }
        config.build()
    }
}
