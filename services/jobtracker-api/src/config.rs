//! Configuration: every setting is a flag and an environment variable (`--help` lists them).

use std::net::SocketAddr;

use m2m_core::VerifierConfig;
use m2m_core::config::{ConfigError, Env};

/// The API's settings.
#[derive(Clone, clap::Parser)]
#[command(
    name = "jobtracker-api",
    version,
    about = "JobTracker API: accepts Clerk user session JWTs and Clerk M2M tokens"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "JOBTRACKER_BIND", default_value = "0.0.0.0:5000")]
    pub bind: SocketAddr,
    /// `sqlite://path?mode=rwc` (created on first run) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://jobtracker.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Clerk Backend API base URL (point it at clerk-mock locally).
    #[arg(
        long,
        env = "CLERK_API_BASE_URL",
        default_value = "https://api.clerk.com/v1"
    )]
    pub clerk_api_base_url: String,
    /// This service's machine secret key (`ak_…`): opaque M2M tokens are verified with it.
    #[arg(long, env = "CLERK_MACHINE_SECRET_KEY", hide_env_values = true)]
    pub clerk_machine_secret_key: Option<String>,
    /// This API's own machine id (`mch_…`). An M2M token is accepted only if its scopes list
    /// it; without it, JWT-format M2M tokens are refused.
    #[arg(long, env = "CLERK_MACHINE_ID")]
    pub clerk_machine_id: Option<String>,
    /// Instance secret key (`sk_…`): session JWT keys come from `GET /jwks`.
    #[arg(long, env = "CLERK_SECRET_KEY", hide_env_values = true)]
    pub clerk_secret_key: Option<String>,
    /// PEM public key for networkless JWT verification.
    #[arg(long, env = "CLERK_JWT_KEY", hide_env_values = true)]
    pub clerk_jwt_key: Option<String>,
    /// Alternative JWKS URL (e.g. the Frontend API's `/.well-known/jwks.json`).
    #[arg(long, env = "CLERK_JWKS_URL")]
    pub clerk_jwks_url: Option<String>,
    /// Comma-separated allowed `azp` origins of session tokens.
    #[arg(long, env = "CLERK_AUTHORIZED_PARTIES")]
    pub clerk_authorized_parties: Option<String>,
    /// If set, a JWT's `iss` must equal it.
    #[arg(long, env = "CLERK_ISSUER")]
    pub clerk_issuer: Option<String>,
    /// Seconds a Clerk verification of an opaque token is reused; 0 verifies every request.
    /// This is the revocation latency: the longest a revoked opaque token keeps working here
    /// (a trade-off: a longer TTL means fewer Clerk calls, a shorter one faster revocation).
    #[arg(long, env = "M2M_VERIFY_CACHE_TTL_SECONDS", default_value_t = 60)]
    pub m2m_verify_cache_ttl_seconds: u64,
    /// Limits that keep verification standing under attack.
    #[command(flatten)]
    pub verify_limits: VerifyLimits,
    /// Machine id (`mch_…`) that gets the candidate-representer role.
    #[arg(long, env = "CANDIDATE_REPRESENTER_MACHINE_ID")]
    pub candidate_representer_machine_id: Option<String>,
    /// Machine id (`mch_…`) that gets the job-applier role.
    #[arg(long, env = "JOB_APPLIER_MACHINE_ID")]
    pub job_applier_machine_id: Option<String>,
    /// Largest resume upload, bytes.
    #[arg(long, env = "RESUME_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub resume_max_bytes: usize,
    /// Log filter (also read by the logger directly).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub rust_log: String,
    /// `pretty` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty")]
    pub log_format: String,
}

/// Limits that keep token verification standing under a flood of tokens, a Clerk outage and a
/// key rotation (docs/verification.md, "Under attack").
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct VerifyLimits {
    /// Clerk verify calls (opaque-token cache misses) this process may make back to back. Past
    /// the budget a request gets 503 + Retry-After and Clerk is not called: random tokens cannot
    /// spend the Clerk instance's Backend API rate limit (per instance: 100 requests / 10 s in
    /// development, 1000 / 10 s in production), which every service shares.
    #[arg(long, env = "M2M_VERIFY_MISS_BURST", default_value_t = 50)]
    pub m2m_verify_miss_burst: u32,
    /// Sustained Clerk verify calls per second that refill that budget. Bots mint about one
    /// token an hour and each is verified about once a minute per instance, so 10/s leaves
    /// ample room; keep burst + rate × instances under the Clerk limit.
    #[arg(long, env = "M2M_VERIFY_MISS_PER_SECOND", default_value_t = 10)]
    pub m2m_verify_miss_per_second: u32,
    /// Seconds Clerk's JWT signing keys (JWKS) are fresh; refreshed in the background at 80 %
    /// of it, so a key removed from the JWKS stops verifying within about this long.
    #[arg(long, env = "CLERK_JWKS_CACHE_TTL_SECONDS", default_value_t = 300)]
    pub clerk_jwks_cache_ttl_seconds: u64,
    /// A cached opaque token used within this many seconds of its cache entry's end is
    /// re-verified at Clerk in the background, once: a hot token never waits for Clerk, and a
    /// revocation is seen before the entry lapses. At most half the TTL; 0 turns it off.
    #[arg(
        long,
        env = "M2M_VERIFY_CACHE_REFRESH_AHEAD_SECONDS",
        default_value_t = 10
    )]
    pub m2m_verify_cache_refresh_ahead_seconds: u64,
    /// Verified JWTs (session tokens, JWT-format M2M tokens) kept so a repeat costs a hash
    /// lookup instead of an RSA verification; each lives no longer than its token's `exp`, and
    /// `exp`, `nbf` and the signing key are checked again on every use. 0 turns the cache off.
    #[arg(long, env = "CLERK_JWT_CACHE_MAX_ENTRIES", default_value_t = 100_000)]
    pub clerk_jwt_cache_max_entries: u64,
    /// Estimated memory, in MiB, the cache of verified JWTs may use (whichever bound is reached
    /// first applies).
    #[arg(long, env = "CLERK_JWT_CACHE_MAX_MIB", default_value_t = 64)]
    pub clerk_jwt_cache_max_mib: u32,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        Self {
            m2m_verify_miss_burst: 50,
            m2m_verify_miss_per_second: 10,
            clerk_jwks_cache_ttl_seconds: 300,
            m2m_verify_cache_refresh_ahead_seconds: 10,
            clerk_jwt_cache_max_entries: 100_000,
            clerk_jwt_cache_max_mib: 64,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("clerk_api_base_url", &self.clerk_api_base_url)
            .field("clerk_machine_id", &self.clerk_machine_id)
            .field(
                "candidate_representer_machine_id",
                &self.candidate_representer_machine_id,
            )
            .field("job_applier_machine_id", &self.job_applier_machine_id)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The verification settings, validated by m2m-core (errors name the variable).
    pub fn verifier(&self) -> Result<VerifierConfig, ConfigError> {
        let ttl = self.m2m_verify_cache_ttl_seconds.to_string();
        let limits = &self.verify_limits;
        let burst = limits.m2m_verify_miss_burst.to_string();
        let per_second = limits.m2m_verify_miss_per_second.to_string();
        let jwks_ttl = limits.clerk_jwks_cache_ttl_seconds.to_string();
        let refresh_ahead = limits.m2m_verify_cache_refresh_ahead_seconds.to_string();
        let jwt_cache_entries = limits.clerk_jwt_cache_max_entries.to_string();
        let jwt_cache_mib = limits.clerk_jwt_cache_max_mib.to_string();
        let env = Env::from_fn(|k| match k {
            "CLERK_API_BASE_URL" => Some(self.clerk_api_base_url.clone()),
            "CLERK_MACHINE_SECRET_KEY" => self.clerk_machine_secret_key.clone(),
            "CLERK_MACHINE_ID" => self.clerk_machine_id.clone(),
            "CLERK_SECRET_KEY" => self.clerk_secret_key.clone(),
            "CLERK_JWT_KEY" => self.clerk_jwt_key.clone(),
            "CLERK_JWKS_URL" => self.clerk_jwks_url.clone(),
            "CLERK_AUTHORIZED_PARTIES" => self.clerk_authorized_parties.clone(),
            "CLERK_ISSUER" => self.clerk_issuer.clone(),
            "M2M_VERIFY_CACHE_TTL_SECONDS" => Some(ttl.clone()),
            "M2M_VERIFY_MISS_BURST" => Some(burst.clone()),
            "M2M_VERIFY_MISS_PER_SECOND" => Some(per_second.clone()),
            "CLERK_JWKS_CACHE_TTL_SECONDS" => Some(jwks_ttl.clone()),
            "M2M_VERIFY_CACHE_REFRESH_AHEAD_SECONDS" => Some(refresh_ahead.clone()),
            "CLERK_JWT_CACHE_MAX_ENTRIES" => Some(jwt_cache_entries.clone()),
            "CLERK_JWT_CACHE_MAX_MIB" => Some(jwt_cache_mib.clone()),
            _ => None,
        });
        VerifierConfig::from_env(&env)
    }

    /// Checks the role mapping.
    pub fn roles(&self) -> Result<Vec<(String, crate::policy::Role)>, ConfigError> {
        let mut out = Vec::new();
        for (var, value, role) in [
            (
                "CANDIDATE_REPRESENTER_MACHINE_ID",
                &self.candidate_representer_machine_id,
                crate::policy::Role::Representer,
            ),
            (
                "JOB_APPLIER_MACHINE_ID",
                &self.job_applier_machine_id,
                crate::policy::Role::Applier,
            ),
        ] {
            if let Some(id) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                if !id.starts_with("mch_") {
                    return Err(ConfigError::new(
                        var,
                        format!("expected a machine id starting with mch_, got {id:?}"),
                    ));
                }
                out.push((id.to_owned(), role));
            }
        }
        if out.len() == 2 && out[0].0 == out[1].0 {
            return Err(ConfigError::new(
                "JOB_APPLIER_MACHINE_ID",
                "must differ from CANDIDATE_REPRESENTER_MACHINE_ID",
            ));
        }
        Ok(out)
    }
}
