//! job-applier: claims a ready application with a lease (renewed while working), fetches the
//! candidate and the resume, submits once through a [`submit::Submitter`], then records
//! `submitted` with the reference — or `failed` with a reason after a bounded number of attempts.

pub mod submit;

use service_kit::StartupError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bot_runtime::{Bot, BotArgs, BotMetrics};
use jobtracker_client::{ClientError, JobTrackerClient};
use jobtracker_types::{
    Application, ApplicationId, ApplicationStatus, ClaimedApplication, LeaseId, StatusUpdate,
};
use m2m_core::config::parse;
use secrecy::SecretString;
use serde_json::json;
use submit::{ResumeFile, SubmitError, Submitter};
use tracing::Instrument as _;

/// Settings (`--help` lists the environment variables).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "job-applier",
    version,
    about = "Submits ready job applications exactly once"
)]
pub struct Config {
    #[command(flatten)]
    pub common: BotArgs,
    /// Address of `/healthz`.
    #[arg(long, env = "APPLIER_BIND", default_value = "0.0.0.0:5200")]
    pub bind: SocketAddr,
    /// Address of `/metrics`, a listener of its own: loopback unless a scraper elsewhere needs
    /// it (compose: `0.0.0.0:9466` inside the container network, not published).
    #[arg(long, env = "METRICS_BIND", default_value = "127.0.0.1:9466")]
    pub metrics_bind: SocketAddr,
    /// Folder for submissions (one subfolder per application).
    #[arg(long, env = "APPLIER_OUTBOX_DIR", default_value = "./outbox")]
    pub outbox_dir: PathBuf,
    /// Submit to this webhook instead of the outbox. Secret: it may carry credentials
    /// (`https://user:password@…`, a token in the query).
    #[arg(long, env = "APPLIER_SUBMIT_URL", hide_env_values = true, value_parser = submit_url)]
    pub submit_url: Option<SecretString>,
    /// Lease length, seconds (10-3600); renewed at a third of it while working.
    #[arg(long, env = "APPLIER_LEASE_SECONDS", default_value_t = 120, value_parser = lease_seconds)]
    pub lease_seconds: u64,
    /// Claims of one application before it is marked failed.
    #[arg(long, env = "APPLIER_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: i64,
}

/// `APPLIER_SUBMIT_URL`: an http(s) URL, refused without echoing it.
fn submit_url(v: &str) -> Result<SecretString, String> {
    parse::http_url(v)
        .map(SecretString::from)
        .map_err(|_| "expected an http(s) URL".to_owned())
}

/// `APPLIER_LEASE_SECONDS`: long enough to renew, short enough that a crash frees the claim soon.
fn lease_seconds(v: &str) -> Result<u64, String> {
    match parse::seconds(v)? {
        s @ 10..=3600 => Ok(s),
        _ => Err("must be between 10 and 3600".to_owned()),
    }
}

const COUNTERS: &[(&str, &str)] = &[
    ("claimed", "Applications claimed."),
    ("submitted", "Applications submitted and recorded."),
    (
        "resubmissions_avoided",
        "Claims of an application that was already submitted earlier.",
    ),
    ("failed", "Applications marked failed."),
    ("released", "Claims given back after a transient failure."),
    ("lost_claims", "Claims lost to lease expiry while working."),
];

/// The bot.
#[derive(Debug)]
pub struct Applier {
    client: JobTrackerClient,
    submitter: Submitter,
    lease: Duration,
    max_attempts: i64,
    counters: BotMetrics,
}

/// Why one application could not be submitted.
enum Failure {
    Transient(String),
    Permanent(String),
    LostClaim,
}

impl Applier {
    /// An applier.
    pub fn new(
        client: JobTrackerClient,
        submitter: Submitter,
        lease: Duration,
        max_attempts: i64,
    ) -> Self {
        Self::with_metrics(client, submitter, lease, max_attempts, Self::metrics())
    }

    /// Its metrics, before it exists (its client's Clerk calls are counted in them).
    fn metrics() -> BotMetrics {
        BotMetrics::new(<Self as Bot>::NAME, "applier", COUNTERS)
    }

    fn with_metrics(
        client: JobTrackerClient,
        submitter: Submitter,
        lease: Duration,
        max_attempts: i64,
        counters: BotMetrics,
    ) -> Self {
        Self {
            client,
            submitter,
            lease: lease.max(Duration::from_secs(10)),
            max_attempts: max_attempts.max(1),
            counters,
        }
    }

    /// Builds it from the settings: errors name the variable.
    pub fn from_config(config: &Config) -> Result<Self, StartupError> {
        let metrics = Self::metrics();
        let client = config
            .common
            .client_observed(m2m_core::clock::system(), Some(metrics.clerk_observer()))
            .map_err(|e| e.to_string())?;
        let submitter = match &config.submit_url {
            Some(url) => Submitter::webhook(url.clone()),
            None => Submitter::Outbox(config.outbox_dir.clone()),
        };
        Ok(Self::with_metrics(
            client,
            submitter,
            Duration::from_secs(config.lease_seconds),
            config.max_attempts,
            metrics,
        ))
    }

    /// Claims and processes one application. Returns whether there was one.
    pub async fn run_once(&self) -> Result<bool, ClientError> {
        let Some(claimed) = self.client.claim(self.lease).await? else {
            return Ok(false);
        };
        // With traces on, everything done for this application is under one span naming it.
        let span = tracing::info_span!("application", application_id = %claimed.application.id);
        self.handle(claimed).instrument(span).await?;
        Ok(true)
    }

    /// Works on one claimed application until it is submitted, failed or released.
    async fn handle(&self, claimed: ClaimedApplication) -> Result<(), ClientError> {
        // The claim's fencing token: every later write presents it, so once another claim
        // supersedes this one (our lease lapsed), nothing of ours lands.
        let lease_id = claimed.lease_id;
        let app = claimed.application;
        self.counters.inc("claimed");
        tracing::info!(application_id = %app.id, attempt = app.attempts, "claimed");
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = self.spawn_renewer(&app.id, &lease_id, lost.clone());
        let outcome = self.process(&app, &lost).await;
        renewer.abort();
        match outcome {
            Ok(reference) => {
                let update = StatusUpdate {
                    status: ApplicationStatus::Submitted,
                    reason: None,
                    submission_ref: Some(reference.clone()),
                    expected_version: None,
                    lease_id: Some(lease_id.to_string()),
                };
                match self.client.update_status(&app.id, &update).await {
                    Ok(_) => {
                        self.counters.inc("submitted");
                        tracing::info!(application_id = %app.id, %reference, "submitted");
                    }
                    Err(ClientError::Conflict(p)) => {
                        // The lease lapsed and another applier took over (it will find the
                        // submission in the outbox, or the webhook deduplicates it), or the
                        // application stopped being ready (a question was flagged for review).
                        self.counters.inc("lost_claims");
                        tracing::warn!(application_id = %app.id, detail = %p.detail, "submitted, but the API refused to record it");
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(Failure::LostClaim) => {
                self.counters.inc("lost_claims");
                tracing::warn!(application_id = %app.id, "claim lost while working; leaving it to whoever holds it now");
            }
            Err(Failure::Permanent(reason)) => self.fail(&app, &lease_id, &reason).await?,
            Err(Failure::Transient(reason)) if app.attempts >= self.max_attempts => {
                self.fail(
                    &app,
                    &lease_id,
                    &format!("gave up after {} attempts: {reason}", app.attempts),
                )
                .await?
            }
            Err(Failure::Transient(reason)) => {
                tracing::warn!(application_id = %app.id, %reason, "transient failure; releasing the claim for a later attempt");
                match self.client.release_lease(&app.id, &lease_id).await {
                    Ok(()) | Err(ClientError::Conflict(_)) => self.counters.inc("released"),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn fail(
        &self,
        app: &Application,
        lease_id: &LeaseId,
        reason: &str,
    ) -> Result<(), ClientError> {
        let update = StatusUpdate {
            status: ApplicationStatus::Failed,
            reason: Some(reason.to_owned()),
            submission_ref: None,
            expected_version: None,
            lease_id: Some(lease_id.to_string()),
        };
        match self.client.update_status(&app.id, &update).await {
            Ok(_) => {
                self.counters.inc("failed");
                tracing::warn!(application_id = %app.id, %reason, "marked failed");
                Ok(())
            }
            Err(ClientError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn spawn_renewer(
        &self,
        id: &ApplicationId,
        lease_id: &LeaseId,
        lost: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let (client, id, lease_id, lease) = (
            self.client.clone(),
            id.clone(),
            lease_id.clone(),
            self.lease,
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match client.renew_lease(&id, &lease_id, lease).await {
                    Ok(_) => tracing::debug!(application_id = %id, "lease renewed"),
                    Err(ClientError::Conflict(_)) => {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(application_id = %id, error = %e, "lease renewal failed; will retry")
                    }
                }
            }
        })
    }

    async fn process(&self, app: &Application, lost: &AtomicBool) -> Result<String, Failure> {
        let transient = |e: ClientError| {
            if e.is_transient() {
                Failure::Transient(e.to_string())
            } else {
                Failure::Permanent(e.to_string())
            }
        };
        if let Some(reference) = self.submitter.existing(app.id.as_str()).await {
            // Submitted by an earlier attempt that crashed before recording it.
            self.counters.inc("resubmissions_avoided");
            tracing::info!(application_id = %app.id, %reference, "already submitted earlier; recording it");
            return Ok(reference);
        }
        let user = match self.client.get_user(&app.user_id).await {
            Ok(u) => u,
            Err(ClientError::NotFound(_)) => {
                return Err(Failure::Permanent("the candidate has no profile".into()));
            }
            Err(e) => return Err(transient(e)),
        };
        let resume = match &app.resume_id {
            None => None,
            Some(resume_id) => match self.client.download_resume(resume_id).await {
                Ok(downloaded) => {
                    let meta = self
                        .client
                        .list_resumes(&app.user_id, None)
                        .await
                        .map_err(transient)?;
                    let content_type = meta
                        .items
                        .iter()
                        .find(|r| &r.id == resume_id)
                        .map(|r| r.content_type.clone())
                        .unwrap_or_else(|| "application/pdf".into());
                    Some(ResumeFile {
                        content_type,
                        sha256: downloaded.sha256,
                        bytes: downloaded.bytes,
                    })
                }
                Err(ClientError::NotFound(_)) => {
                    return Err(Failure::Permanent("the resume no longer exists".into()));
                }
                Err(e) => return Err(transient(e)),
            },
        };
        let packet = json!({
            "application_id": app.id,
            "idempotency_key": app.id,
            "company": app.company,
            "position": app.position,
            "job_url": app.job_url,
            "candidate": user,
            "answers": app.questions.iter().map(|q| json!({"question": q.text, "answer": q.answer})).collect::<Vec<_>>(),
            "resume": resume.as_ref().map(|r| json!({"content_type": r.content_type, "sha256": r.sha256, "size": r.bytes.len()})),
        });
        if lost.load(Ordering::SeqCst) {
            return Err(Failure::LostClaim);
        }
        self.submitter
            .submit(app.id.as_str(), packet, resume.as_ref())
            .await
            .map_err(|e| match e {
                SubmitError::Transient(m) => Failure::Transient(m),
                SubmitError::Permanent(m) => Failure::Permanent(m),
            })
    }
}

impl Bot for Applier {
    const NAME: &'static str = "job-applier";

    fn counters(&self) -> &BotMetrics {
        &self.counters
    }

    /// One application; the next at once if there was one.
    async fn step(&self) -> Result<bool, ClientError> {
        self.run_once().await
    }
}

/// Runs the service until Ctrl-C or SIGTERM; the application in hand is finished first, within
/// the shutdown grace period.
pub async fn serve(config: Config) -> Result<(), StartupError> {
    let me = Arc::new(Applier::from_config(&config)?);
    let listener = service_kit::bind("APPLIER_BIND", config.bind).await?;
    let metrics = service_kit::bind("METRICS_BIND", config.metrics_bind).await?;
    let interval = config.common.poll_interval();
    bot_runtime::serve(
        me,
        listener,
        metrics,
        config.common.server.clone(),
        interval,
        service_kit::shutdown_signal(),
    )
    .await;
    Ok(())
}
