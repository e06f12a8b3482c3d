//! `m2m plan`, `m2m apply` and `m2m rotate`: the service graph of a declaration file made true at
//! Clerk, and each service's env file and machine key written for it. Output names machines by
//! name and id, never a key (unless `--show-secrets`).

mod declaration;
mod plan;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use m2m_core::clerk::{
    ClerkClient, CreateMachineRequest, ListM2mTokensQuery, MachineAdmin, UpdateMachineRequest,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

pub use declaration::{Declaration, DeclaredMachine, Edge, InstanceKeySource};
pub use plan::{MachineRef, Plan, Step};

use crate::setup::{check_target, prepare_secrets_dir, write_env_file, write_private_file};
use crate::{CliError, read_secret_file};

/// Key files: read-only for everyone, in the secrets folder only its owner can enter (0700), as
/// `m2m setup --secrets-dir` writes token files. The containers run as uid 10001 and compose
/// bind-mounts a file secret with its host owner and mode: a 0600 file of the operator's would
/// be unreadable there and every service would stop at start. Who can read the key on the host
/// is decided by the folder (docs/operations.md, *Files*).
const KEY_FILE_MODE: u32 = 0o444;

/// What a graph command printed, and whether changes are pending (`plan`'s exit code 2).
#[derive(Debug)]
pub struct Report {
    /// The text (or JSON) for stdout.
    pub text: String,
    /// `m2m plan` found changes.
    pub pending: bool,
}

/// Settings shared by the graph commands.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Common<'a> {
    pub api_url: &'a str,
    pub insecure: bool,
    pub as_json: bool,
}

/// `https`, or `http` to a loopback address (a local mock). Anything else would carry the
/// instance key in clear, so it needs `--insecure`.
fn check_url(url: &str, insecure: bool) -> Result<(), CliError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| CliError(format!("Clerk API URL {url:?}: {e}")))?;
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if parsed.scheme() == "https" || loopback || insecure {
        Ok(())
    } else {
        Err(CliError(format!(
            "refusing to send the instance secret key to {url}: not https and not loopback (pass --insecure to allow)"
        )))
    }
}

fn instance_key(
    d: &Declaration,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<SecretString, CliError> {
    let key = match &d.instance_key {
        InstanceKeySource::File(path) => read_secret_file(path, "the instance secret key")?,
        InstanceKeySource::Env(var) => lookup(var)
            .filter(|v| !v.trim().is_empty())
            .map(|v| SecretString::from(v.trim().to_owned()))
            .ok_or_else(|| {
                CliError(format!(
                    "no instance secret key: set {var} (or instance_secret_key_file in [clerk])"
                ))
            })?,
    };
    if !key.expose_secret().starts_with("sk_") {
        return Err(CliError(
            "the instance secret key must start with sk_ (a machine key ak_… cannot manage machines)".into(),
        ));
    }
    Ok(key)
}

struct Session {
    declaration: Declaration,
    admin: MachineAdmin,
    /// The instance key again, for the token calls `MachineAdmin` does not make (revocation).
    instance_key: SecretString,
    api_url: String,
}

fn open(
    file: &Path,
    c: Common<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Session, CliError> {
    let declaration = Declaration::load(file)?;
    let api_url = declaration
        .api_url
        .clone()
        .unwrap_or_else(|| c.api_url.to_owned());
    check_url(&api_url, c.insecure)?;
    let key = instance_key(&declaration, lookup)?;
    let clerk = ClerkClient::new(&api_url).map_err(|e| CliError(format!("Clerk API URL: {e}")))?;
    Ok(Session {
        declaration,
        admin: MachineAdmin::new(clerk, key.clone()),
        instance_key: key,
        api_url,
    })
}

/// `m2m plan -f FILE`.
pub(crate) async fn plan(
    file: &Path,
    prune: bool,
    c: Common<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Report, CliError> {
    let s = open(file, c, lookup)?;
    let machines = s.admin.list_all().await?;
    let plan = Plan::new(&s.declaration, &machines, prune)?;
    Ok(Report {
        text: if c.as_json {
            plan.json().to_string()
        } else {
            plan.text(prune)
        },
        pending: !plan.steps.is_empty(),
    })
}

/// Options of `m2m apply`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApplyOptions {
    pub prune: bool,
    pub yes: bool,
    pub show_secrets: bool,
}

/// `m2m apply -f FILE`.
pub(crate) async fn apply(
    file: &Path,
    o: ApplyOptions,
    c: Common<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
) -> Result<Report, CliError> {
    let s = open(file, c, lookup)?;
    let d = &s.declaration;
    // Every target is checked before Clerk is changed.
    prepare_secrets_dir(&d.secrets_dir)?;
    prepare_env_dir(&d.env_dir)?;
    for m in &d.machines {
        check_target(&d.key_file(&m.service))?;
        check_target(&d.env_file(&m.service))?;
    }
    let machines = s.admin.list_all().await?;
    let plan = Plan::new(d, &machines, o.prune)?;
    let destructive: Vec<&Step> = plan.steps.iter().filter(|s| s.is_destructive()).collect();
    if !destructive.is_empty() && !o.yes {
        confirm(&destructive, stdin)?;
    }

    let mut ids: BTreeMap<String, String> = plan
        .existing
        .iter()
        .map(|(service, m)| (service.clone(), m.id.clone()))
        .collect();
    let mut log = Vec::new();
    let mut shown = Vec::new();
    for step in &plan.steps {
        match step {
            Step::CreateMachine {
                service,
                name,
                token_ttl,
            } => {
                let created = s
                    .admin
                    .create(&CreateMachineRequest {
                        name: name.clone(),
                        scoped_machines: Vec::new(),
                        default_token_ttl: Some(*token_ttl),
                    })
                    .await
                    .map_err(|e| CliError(format!("creating {name}: {}", CliError::from(e))))?;
                // The key is shown once: to its file before anything else can fail.
                let path = d.key_file(service);
                write_key(&path, &created.secret_key).map_err(|e| {
                    CliError(format!(
                        "created {name} ({}) but cannot write its key to {}: {e}; get it with `GET /machines/{}/secret_key` or `m2m rotate`",
                        created.machine.id,
                        path.display(),
                        created.machine.id
                    ))
                })?;
                if o.show_secrets {
                    shown.push(format!(
                        "{name} secret key: {}",
                        created.secret_key.expose_secret()
                    ));
                }
                ids.insert(service.clone(), created.machine.id.clone());
                log.push(format!("created {name} ({})", created.machine.id));
            }
            Step::UpdateMachine {
                machine,
                to_token_ttl,
                ..
            } => {
                let id = machine.id.as_deref().unwrap_or_default();
                s.admin
                    .update(
                        id,
                        &UpdateMachineRequest {
                            name: None,
                            default_token_ttl: Some(*to_token_ttl),
                        },
                    )
                    .await?;
                log.push(format!(
                    "updated {machine}: token lifetime {to_token_ttl} s"
                ));
            }
            Step::AddScope { caller, receiver } => {
                let id_of = |r: &MachineRef| {
                    r.id.clone()
                        .or_else(|| {
                            d.machines
                                .iter()
                                .find(|m| m.name == r.name)
                                .and_then(|m| ids.get(&m.service).cloned())
                        })
                        .unwrap_or_default()
                };
                let (from, to) = (id_of(caller), id_of(receiver));
                s.admin.add_scope(&from, &to).await?;
                log.push(format!(
                    "added scope {} ({from}) → {} ({to})",
                    caller.name, receiver.name
                ));
            }
            Step::RemoveScope { caller, receiver } => {
                s.admin
                    .remove_scope(
                        caller.id.as_deref().unwrap_or_default(),
                        receiver.id.as_deref().unwrap_or_default(),
                    )
                    .await?;
                log.push(format!("removed scope {caller} → {receiver}"));
                // Clerk snapshots a token's scopes at minting: without this, the caller's live
                // tokens would stay valid at the receiver until they expire.
                let revoked = revoke_tokens_for(
                    &s,
                    caller.id.as_deref().unwrap_or_default(),
                    receiver.id.as_deref().unwrap_or_default(),
                )
                .await?;
                if revoked > 0 {
                    log.push(format!(
                        "revoked {revoked} live token(s) of {caller} scoped to {receiver}"
                    ));
                }
            }
            Step::DeleteMachine { machine } => {
                s.admin
                    .delete(machine.id.as_deref().unwrap_or_default())
                    .await?;
                log.push(format!("deleted {machine}"));
            }
        }
    }

    // Keys of machines that existed before: fetched (a read) only when their file is missing.
    for m in &d.machines {
        let path = d.key_file(&m.service);
        if !path.exists() {
            let id = &ids[&m.service];
            let key = s.admin.secret_key(id).await?;
            write_key(&path, &key)
                .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
            log.push(format!("wrote {}'s key to {}", m.name, path.display()));
        }
    }
    let written = write_env_files(d, &ids, &s.api_url)?;
    log.extend(written.iter().map(|p| format!("wrote {p}")));
    let text = if c.as_json {
        json!({
            "changes": plan.steps,
            "machines": ids,
            "env_files": written,
            "secret_keys": if o.show_secrets { Some(&shown) } else { None },
        })
        .to_string()
    } else {
        let mut out = log;
        if plan.steps.is_empty() {
            out.insert(0, "No changes: Clerk matches the declaration.".into());
        }
        out.extend(shown);
        out.join("\n")
    };
    Ok(Report {
        text,
        pending: false,
    })
}

/// Most tokens one apply revokes per removed edge (ten pages of Clerk's maximum): a machine
/// with more live tokens than this is told to revoke the rest itself.
const MAX_REVOKED_PER_EDGE: usize = 1000;

/// Revokes `caller`'s live opaque tokens whose scopes include `receiver`, so an edge taken away
/// stops working at the receiver once its verification cache lapses, not when the tokens
/// expire. A token scoped to other receivers too is revoked as well (Clerk cannot take one
/// scope off a token): the caller's next request there is refused once, and it mints a new
/// token with the scopes it still has. JWT-format tokens are not listed by Clerk and cannot be
/// revoked; they end at their (short) expiry. Returns how many were revoked.
async fn revoke_tokens_for(s: &Session, caller: &str, receiver: &str) -> Result<usize, CliError> {
    let clerk = s.admin.clerk();
    let mut doomed = Vec::new();
    let mut offset = 0u32;
    loop {
        let page = clerk
            .list_m2m_tokens(
                &s.instance_key,
                &ListM2mTokensQuery {
                    subject: caller.to_owned(),
                    revoked: false,
                    expired: false,
                    limit: Some(100),
                    offset: Some(offset),
                },
            )
            .await?;
        let n = page.m2m_tokens.len();
        doomed.extend(
            page.m2m_tokens
                .into_iter()
                .filter(|t| !t.revoked && !t.expired && t.scopes.iter().any(|x| x == receiver))
                .map(|t| t.id),
        );
        offset = offset.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        if n < 100 || u64::from(offset) >= page.total_count || doomed.len() >= MAX_REVOKED_PER_EDGE
        {
            break;
        }
    }
    if doomed.len() >= MAX_REVOKED_PER_EDGE {
        return Err(CliError(format!(
            "machine {caller} has more than {MAX_REVOKED_PER_EDGE} live tokens scoped to {receiver}; the scope is removed, revoke the rest with `m2m token list --subject {caller}` and `m2m token revoke`"
        )));
    }
    for id in &doomed {
        clerk
            .revoke_m2m_token(&s.instance_key, id, Some("m2m apply: edge removed"))
            .await
            .map_err(|e| CliError(format!("revoking {id}: {}", CliError::from(e))))?;
    }
    Ok(doomed.len())
}

fn confirm(destructive: &[&Step], stdin: &mut dyn Read) -> Result<(), CliError> {
    eprintln!("m2m apply will take away access or machines:");
    for s in destructive {
        eprintln!("  {}", s.line());
    }
    eprintln!("Type yes to go on (or pass --yes):");
    let mut line = String::new();
    // One short line at most: the answer, not whatever a pipe holds.
    BufReader::new(stdin.take(64))
        .read_line(&mut line)
        .map_err(|e| CliError(format!("cannot read the answer: {e}")))?;
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError(
            "not confirmed; nothing was changed (pass --yes to apply destructive steps)".into(),
        ))
    }
}

fn prepare_env_dir(dir: &Path) -> Result<(), CliError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(CliError(format!(
            "refusing to write to {}: it is a symbolic link",
            dir.display()
        ))),
        Ok(m) if !m.is_dir() => Err(CliError(format!("{} is not a folder", dir.display()))),
        Ok(_) => Ok(()),
        Err(_) => std::fs::create_dir_all(dir)
            .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display()))),
    }
}

fn write_key(path: &Path, key: &SecretString) -> std::io::Result<()> {
    write_private_file(
        path,
        format!("{}\n", key.expose_secret()).as_bytes(),
        KEY_FILE_MODE,
    )
}

/// Each service's env file: its machine id, its key file, the API URL, and as a receiver the
/// callers' ids under its role variables and its allow-list variable. Lines it does not own
/// are kept; a role variable whose caller is gone is dropped.
fn write_env_files(
    d: &Declaration,
    ids: &BTreeMap<String, String>,
    api_url: &str,
) -> Result<Vec<String>, CliError> {
    let secrets = match &d.secrets_path_in_env {
        Some(p) => p.trim_end_matches('/').to_owned(),
        None => std::fs::canonicalize(&d.secrets_dir)
            .map_err(|e| CliError(format!("{}: {e}", d.secrets_dir.display())))?
            .display()
            .to_string(),
    };
    let mut written = Vec::new();
    for m in &d.machines {
        let mut lines = BTreeMap::new();
        let mut replaced = vec!["CLERK_MACHINE_SECRET_KEY".to_owned()];
        lines.insert("CLERK_MACHINE_ID".to_owned(), ids[&m.service].clone());
        lines.insert(
            "CLERK_MACHINE_SECRET_KEY_FILE".to_owned(),
            format!("{secrets}/{}.key", m.service),
        );
        lines.insert("CLERK_API_BASE_URL".to_owned(), api_url.to_owned());
        let incoming: Vec<&Edge> = d.edges.iter().filter(|e| e.receiver == m.service).collect();
        for (role, var) in &m.roles {
            match incoming.iter().find(|e| e.role.as_deref() == Some(role)) {
                Some(e) => {
                    lines.insert(var.clone(), ids[&e.caller].clone());
                }
                None => replaced.push(var.clone()),
            }
        }
        if let Some(var) = &m.allowed_callers_env {
            let callers: Vec<&str> = incoming.iter().map(|e| ids[&e.caller].as_str()).collect();
            if callers.is_empty() {
                replaced.push(var.clone());
            } else {
                lines.insert(var.clone(), callers.join(","));
            }
        }
        let path = d.env_file(&m.service);
        write_env_file(&path, &lines, &replaced)
            .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// `m2m rotate -f FILE MACHINE --grace 1h`.
pub(crate) async fn rotate(
    file: &Path,
    machine: &str,
    grace: Duration,
    c: Common<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Report, CliError> {
    let s = open(file, c, lookup)?;
    let d = &s.declaration;
    let m = d.machine_by_service_or_name(machine).ok_or_else(|| {
        CliError(format!(
            "{machine:?} is not a service or machine name of {}",
            file.display()
        ))
    })?;
    prepare_secrets_dir(&d.secrets_dir)?;
    let path = d.key_file(&m.service);
    check_target(&path)?;
    let machines = s.admin.list_all().await?;
    let found: Vec<_> = machines.iter().filter(|x| x.name == m.name).collect();
    let id = match found.as_slice() {
        [one] => one.id.clone(),
        [] => {
            return Err(CliError(format!(
                "no machine named {:?} at Clerk; run m2m apply",
                m.name
            )));
        }
        many => {
            return Err(CliError(format!(
                "{} machines at Clerk are named {:?} ({})",
                many.len(),
                m.name,
                many.iter()
                    .map(|x| x.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let key = s.admin.rotate_secret_key(&id, grace).await?;
    write_key(&path, &key).map_err(|e| {
        CliError(format!(
            "rotated {} ({id}) but cannot write the new key to {}: {e}; the old key works for {} s more: fix the folder and run m2m rotate again",
            m.name,
            path.display(),
            grace.as_secs()
        ))
    })?;
    Ok(Report {
        text: if c.as_json {
            json!({"machine_id": id, "name": m.name, "key_file": path.display().to_string(), "grace_seconds": grace.as_secs()}).to_string()
        } else {
            format!(
                "rotated {} ({id}): new key in {}; the old key works for {} s more",
                m.name,
                path.display(),
                grace.as_secs()
            )
        },
        pending: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_unless_insecure() {
        for ok in [
            "https://api.clerk.com/v1",
            "http://127.0.0.1:8080/v1",
            "http://localhost:1/v1",
            "http://[::1]:1/v1",
        ] {
            check_url(ok, false).expect(ok);
        }
        let err = check_url("http://clerk.example.com/v1", false).expect_err("clear text");
        assert!(err.0.contains("--insecure"), "{}", err.0);
        check_url("http://clerk.example.com/v1", true).expect("--insecure");
    }
}
