//! The JobTracker API wired to a clerk-mock, outside the API's production crate (the way
//! crates.io keeps its test database crate apart from the server).
//!
//! - [`mock_config`]: the one function that gives the API the settings of a stack whose Clerk is
//!   a [`ClerkMock`]. devstack runs its API with it (then moves it to its ports and the mock's
//!   public front door); the API's integration tests, the end-to-end `Stack` and loadbench start
//!   from it and change what they measure.
//! - [`TestDatabase`], [`OffsetClock`]: what the tests alone need, a database of their own per
//!   test and a clock they can move.
//!
//! The API crate has no test feature and no dependency on clerk-mock; this crate depends on it,
//! so only integration tests (`tests/`) of the API can use it, never its unit tests in `src/`
//! (those would see a second copy of the API's types).

use clerk_mock::ClerkMock;
use jobtracker_api::Config;
use m2m_core::config::{ClerkArgs, JwtArgs, VerifierArgs};

mod testing;

pub use testing::{Backend, OffsetClock, TestDatabase};

/// The settings of an API whose Clerk is `mock` (demo seed): its own machine
/// (`JobTracker.API`) and the instance key verify tokens, session tokens must come from the
/// mock's authorized party and issuer, the seeded bots have their roles; both listeners on
/// `127.0.0.1:0`, the database at `database_url`, everything else as the binary's defaults.
/// Callers change what they need from here (`Config { resume_max_bytes: …, ..mock_config(…) }`).
pub fn mock_config(mock: &ClerkMock, database_url: &str) -> Config {
    let machine = |name: &str| mock.machine_by_name(name);
    let api = machine("JobTracker.API");
    Config {
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database_url.into(),
        clerk: ClerkArgs {
            clerk_api_base_url: mock.api_url(),
            clerk_machine_secret_key_file: None,
            clerk_machine_secret_key: api.as_ref().map(|m| m.secret_key.as_str().into()),
        },
        verifier: VerifierArgs {
            jwt: JwtArgs {
                clerk_authorized_parties: vec![mock.authorized_party()],
                clerk_issuer: Some(mock.issuer()),
                clerk_machine_id: api.map(|m| m.id),
                ..Default::default()
            },
            clerk_secret_key: Some(mock.instance_secret_key().into()),
            ..Default::default()
        },
        candidate_representer_machine_id: machine("CandidateRepresenter.Bot").map(|m| m.id),
        job_applier_machine_id: machine("JobApplier.Bot").map(|m| m.id),
        resume_max_files: Config::RESUME_MAX_FILES,
        resume_quota_bytes: Config::RESUME_QUOTA_BYTES,
        resume_uploads_per_user: Config::RESUME_UPLOADS_PER_USER,
        resume_max_bytes: Config::RESUME_MAX_BYTES,
        log: Default::default(),
        server: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobtracker_api::policy::Role;

    #[tokio::test]
    async fn the_mock_config_trusts_the_mock_and_gives_the_seeded_bots_their_roles() {
        let mock = ClerkMock::start_demo().await;
        let config = mock_config(&mock, "sqlite::memory:");
        assert!(config.bind.ip().is_loopback() && config.bind.port() == 0);
        assert!(config.metrics_bind.ip().is_loopback() && config.metrics_bind.port() == 0);
        assert_eq!(config.clerk.clerk_api_base_url, mock.api_url());
        assert_eq!(config.verifier.jwt.clerk_issuer, Some(mock.issuer()));
        let api = mock.machine_by_name("JobTracker.API").expect("seeded");
        assert_eq!(config.verifier.jwt.clerk_machine_id, Some(api.id));
        // The settings the binary would refuse are refused here too: these pass its checks.
        config.verifier().expect("a verifier");
        let roles = config.roles().expect("roles");
        let id = |name: &str| mock.machine_by_name(name).expect("seeded").id;
        assert_eq!(
            roles,
            vec![
                (id("CandidateRepresenter.Bot"), Role::Representer),
                (id("JobApplier.Bot"), Role::Applier),
            ]
        );
    }
}
