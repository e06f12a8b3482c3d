//! Configuration: every setting is a flag and an environment variable (`--help` lists them).

use std::net::SocketAddr;

use m2m_core::VerifierConfig;
use m2m_core::config::{ClerkArgs, ConfigError, VerifierArgs, parse};
use secrecy::SecretString;

/// The API's settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "jobtracker-api",
    version,
    about = "JobTracker API: accepts Clerk user session JWTs and Clerk M2M tokens"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "JOBTRACKER_BIND", default_value = "0.0.0.0:5000")]
    pub bind: SocketAddr,
    /// Address of `/metrics`, a listener of its own: loopback unless a scraper elsewhere needs
    /// it (compose: `0.0.0.0:9464` inside the container network, not published).
    #[arg(long, env = "METRICS_BIND", default_value = Config::METRICS_BIND)]
    pub metrics_bind: SocketAddr,
    /// `sqlite://path?mode=rwc` (created on first run) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://jobtracker.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: SecretString,
    /// Clerk, and this API as a machine.
    #[command(flatten)]
    pub clerk: ClerkArgs,
    /// How tokens are verified.
    #[command(flatten)]
    pub verifier: VerifierArgs,
    /// Machine id (`mch_…`) that gets the candidate-representer role.
    #[arg(
        long,
        env = "CANDIDATE_REPRESENTER_MACHINE_ID",
        value_parser = parse::machine_id
    )]
    pub candidate_representer_machine_id: Option<String>,
    /// Machine id (`mch_…`) that gets the job-applier role.
    #[arg(long, env = "JOB_APPLIER_MACHINE_ID", value_parser = parse::machine_id)]
    pub job_applier_machine_id: Option<String>,
    /// Most resumes one user may keep (at least 1); past it an upload gets 409.
    #[arg(long, env = "RESUME_MAX_FILES", default_value_t = Config::RESUME_MAX_FILES)]
    pub resume_max_files: u32,
    /// Bytes all of one user's resumes may take together (at least 1; default 100 MiB); an
    /// upload that does not fit gets 413.
    #[arg(long, env = "RESUME_QUOTA_BYTES", default_value_t = Config::RESUME_QUOTA_BYTES)]
    pub resume_quota_bytes: u64,
    /// Resume uploads one user may have in progress at once (1-8, of the 8 read at once); one
    /// more gets 503 at once.
    #[arg(
        long,
        env = "RESUME_UPLOADS_PER_USER",
        default_value_t = Config::RESUME_UPLOADS_PER_USER,
        value_parser = clap::value_parser!(u8).range(1..=8)
    )]
    pub resume_uploads_per_user: u8,
    /// Largest resume upload, bytes.
    #[arg(long, env = "RESUME_MAX_BYTES", default_value_t = Config::RESUME_MAX_BYTES)]
    pub resume_max_bytes: usize,
    /// Logging.
    #[command(flatten)]
    pub log: service_kit::LogArgs,
    /// Timeouts and limits of the HTTP server.
    #[command(flatten)]
    pub server: service_kit::ServerArgs,
}

impl Config {
    /// `METRICS_BIND` by default.
    pub const METRICS_BIND: &str = "127.0.0.1:9464";
    /// `RESUME_MAX_BYTES` by default: 10 MiB.
    pub const RESUME_MAX_BYTES: usize = 10 * 1024 * 1024;
    /// `RESUME_UPLOADS_PER_USER` by default.
    pub const RESUME_UPLOADS_PER_USER: u8 = 2;
    /// `RESUME_MAX_FILES` by default.
    pub const RESUME_MAX_FILES: u32 = 20;
    /// `RESUME_QUOTA_BYTES` by default: 100 MiB.
    pub const RESUME_QUOTA_BYTES: u64 = 100 * 1024 * 1024;

    /// The verification settings, checked as a whole (errors name the variable).
    pub fn verifier(&self) -> Result<VerifierConfig, ConfigError> {
        self.verifier.verifier_config(&self.clerk)
    }

    /// The role of each machine that has one; one machine cannot have both.
    pub fn roles(&self) -> Result<Vec<(String, crate::policy::Role)>, ConfigError> {
        use crate::policy::Role;
        let out: Vec<_> = [
            (&self.candidate_representer_machine_id, Role::Representer),
            (&self.job_applier_machine_id, Role::Applier),
        ]
        .into_iter()
        .filter_map(|(id, role)| Some((id.clone()?, role)))
        .collect();
        if out.len() == 2 && out[0].0 == out[1].0 {
            return Err(ConfigError::new(
                "JOB_APPLIER_MACHINE_ID",
                "must differ from CANDIDATE_REPRESENTER_MACHINE_ID",
            ));
        }
        Ok(out)
    }
}
