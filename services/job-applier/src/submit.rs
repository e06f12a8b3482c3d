//! Where applications go: an outbox folder (default) or a webhook. Both are idempotent per
//! application, so a retry after a crash never submits twice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};

/// A submission failure.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// May succeed later (disk full, webhook 5xx or unreachable).
    #[error("{0}")]
    Transient(String),
    /// Will not succeed (webhook 4xx).
    #[error("{0}")]
    Permanent(String),
}

/// A resume to include.
#[derive(Debug, Clone)]
pub struct ResumeFile {
    /// Media type.
    pub content_type: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Where submissions go.
#[derive(Debug, Clone)]
pub enum Submitter {
    /// One folder per application: `packet.json` plus the resume, published by an atomic rename.
    Outbox(PathBuf),
    /// `POST` the packet with `Idempotency-Key: <application id>`.
    Webhook { url: String, http: reqwest::Client },
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "docx",
    }
}

impl Submitter {
    /// A webhook submitter with a 30 s timeout.
    pub fn webhook(url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self::Webhook {
            url: url.to_owned(),
            http,
        }
    }

    /// The reference of an earlier submission of `application_id`, if one exists (outbox only;
    /// a webhook deduplicates by its idempotency key).
    pub async fn existing(&self, application_id: &str) -> Option<String> {
        match self {
            Self::Outbox(dir) => {
                let packet = dir.join(application_id).join("packet.json");
                tokio::fs::try_exists(&packet)
                    .await
                    .ok()
                    .filter(|e| *e)
                    .map(|_| format!("outbox:{application_id}"))
            }
            Self::Webhook { .. } => None,
        }
    }

    /// Submits `packet` (and the resume) for `application_id`; returns the submission reference.
    pub async fn submit(
        &self,
        application_id: &str,
        mut packet: Value,
        resume: Option<&ResumeFile>,
    ) -> Result<String, SubmitError> {
        match self {
            Self::Outbox(dir) => {
                if let Some(r) = self.existing(application_id).await {
                    return Ok(r);
                }
                if let Some(r) = resume {
                    packet["resume"]["file"] =
                        json!(format!("resume.{}", extension(&r.content_type)));
                }
                publish(dir, application_id, &packet, resume)
                    .await
                    .map_err(|e| SubmitError::Transient(format!("outbox: {e}")))?;
                Ok(format!("outbox:{application_id}"))
            }
            Self::Webhook { url, http } => {
                if let Some(r) = resume {
                    packet["resume"]["content_base64"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(&r.bytes));
                }
                let response = http
                    .post(url)
                    .header("idempotency-key", application_id)
                    .json(&packet)
                    .send()
                    .await
                    .map_err(|e| {
                        SubmitError::Transient(format!(
                            "webhook unreachable: {}",
                            if e.is_timeout() {
                                "timed out"
                            } else {
                                "connection failed"
                            }
                        ))
                    })?;
                let status = response.status();
                if status.is_success() {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    Ok(body["reference"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("webhook:{application_id}")))
                } else if status.as_u16() == 429 || status.is_server_error() {
                    Err(SubmitError::Transient(format!("webhook answered {status}")))
                } else {
                    Err(SubmitError::Permanent(format!("webhook answered {status}")))
                }
            }
        }
    }
}

/// Writes the packet into a hidden staging folder, syncs it, and renames it to
/// `dir/<application_id>`: the packet appears whole or not at all, and only once.
async fn publish(
    dir: &Path,
    application_id: &str,
    packet: &Value,
    resume: Option<&ResumeFile>,
) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let staging = dir.join(format!(
        ".staging-{application_id}-{:08x}",
        rand::rng().random::<u32>()
    ));
    tokio::fs::create_dir(&staging).await?;
    let result = async {
        if let Some(r) = resume {
            write_synced(
                &staging.join(format!("resume.{}", extension(&r.content_type))),
                &r.bytes,
            )
            .await?;
        }
        let text = serde_json::to_vec_pretty(packet).map_err(std::io::Error::other)?;
        write_synced(&staging.join("packet.json"), &text).await?;
        let target = dir.join(application_id);
        match tokio::fs::rename(&staging, &target).await {
            Ok(()) => Ok(()),
            // Another applier published it first: that submission stands.
            Err(_)
                if tokio::fs::try_exists(target.join("packet.json"))
                    .await
                    .unwrap_or(false) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    result
}

async fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = tokio::fs::File::create(path).await?;
    tokio::io::AsyncWriteExt::write_all(&mut f, bytes).await?;
    f.sync_all().await
}
