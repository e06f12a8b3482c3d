//! Where applications go: an outbox folder (default) or a webhook. Both are idempotent per
//! application, so a retry after a crash never submits twice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
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
    Webhook {
        /// Secret: it may carry credentials.
        url: SecretString,
        http: reqwest::Client,
    },
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
    pub fn webhook(url: SecretString) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self::Webhook { url, http }
    }

    /// The reference of an earlier submission of `application_id`, if one exists (outbox only;
    /// a webhook deduplicates by its idempotency key).
    pub async fn existing(&self, application_id: &str) -> Option<String> {
        match self {
            Self::Outbox(dir) => {
                let packet = outbox_folder(dir, application_id).ok()?.join("packet.json");
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
                // Checked before any path is built from it.
                outbox_folder(dir, application_id)?;
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
                    .post(url.expose_secret())
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

/// `dir/<application_id>`, for an id of the API's shape only (`app_` and up to 64 letters or
/// digits): nothing the API sends can name a path outside the outbox.
fn outbox_folder(dir: &Path, application_id: &str) -> Result<PathBuf, SubmitError> {
    let rest = application_id.strip_prefix("app_").unwrap_or("");
    if rest.is_empty() || rest.len() > 64 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SubmitError::Permanent(format!(
            "not an application id: {:?}",
            application_id.chars().take(80).collect::<String>()
        )));
    }
    Ok(dir.join(application_id))
}

/// Creates `path` and missing parents owner-only (0700): the outbox holds personal data.
async fn create_private_dir(path: &Path, recursive: bool) -> std::io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(recursive);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path).await
}

/// Writes the packet into a hidden staging folder, syncs it, and renames it to
/// `dir/<application_id>`: the packet appears whole or not at all, and only once.
async fn publish(
    dir: &Path,
    application_id: &str,
    packet: &Value,
    resume: Option<&ResumeFile>,
) -> std::io::Result<()> {
    create_private_dir(dir, true).await?;
    let staging = dir.join(format!(
        ".staging-{application_id}-{:08x}",
        rand::rng().random::<u32>()
    ));
    create_private_dir(&staging, false).await?;
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
        let target = outbox_folder(dir, application_id).map_err(std::io::Error::other)?;
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

/// Writes a new owner-only (0600) file and syncs it.
async fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(path).await?;
    tokio::io::AsyncWriteExt::write_all(&mut f, bytes).await?;
    f.sync_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet() -> Value {
        json!({"candidate": {"full_name": "Ada", "email": "ada@example.com"}, "resume": {}})
    }

    #[tokio::test]
    async fn ids_that_are_not_the_apis_never_become_paths() {
        let root = tempfile::tempdir().expect("tempdir");
        let outbox = Submitter::Outbox(root.path().join("outbox"));
        for bad in [
            "../../etc",
            "app_../x",
            "app_",
            "app_a/b",
            "app_a\\b",
            "app_..",
            "usr_0123",
            "",
            &format!("app_{}", "a".repeat(65)),
        ] {
            assert!(outbox.existing(bad).await.is_none(), "{bad:?}");
            match outbox.submit(bad, packet(), None).await {
                Err(SubmitError::Permanent(_)) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(
            !root.path().join("outbox").exists(),
            "nothing was created for a bad id"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_outbox_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("outbox").join("nested");
        let outbox = Submitter::Outbox(dir.clone());
        let resume = ResumeFile {
            content_type: "application/pdf".into(),
            sha256: "00".into(),
            bytes: b"%PDF".to_vec(),
        };
        let reference = outbox
            .submit("app_0123abcd", packet(), Some(&resume))
            .await
            .expect("published");
        assert_eq!(reference, "outbox:app_0123abcd");
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&root.path().join("outbox")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let folder = dir.join("app_0123abcd");
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&folder.join("packet.json")), 0o600);
        assert_eq!(mode(&folder.join("resume.pdf")), 0o600);
        assert_eq!(
            outbox.existing("app_0123abcd").await.as_deref(),
            Some("outbox:app_0123abcd")
        );
    }
}
