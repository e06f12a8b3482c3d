//! `m2m setup`: long-lived tokens for the sender machines of a config file, written as `.env`
//! lines. All or nothing: every key is read and checked before the first token is created, and
//! a run that fails after creating some revokes them. The file is replaced atomically, owner-only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use m2m_core::ServiceTokens;
use m2m_core::TokenFormat;
use m2m_core::clerk::{ClerkClient, CreateM2mTokenRequest};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::{CliError, parse_lifetime, read_secret_file};

/// `m2m.toml`: the sender machines to create long-lived tokens for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupConfig {
    /// Overrides CLERK_API_BASE_URL.
    pub clerk_api_base_url: Option<String>,
    /// One entry per sender machine.
    pub services: Vec<SetupService>,
}

/// One sender machine in the setup config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupService {
    /// The service name (`job-applier` → `CLERK_M2M_TOKEN_JOB_APPLIER`).
    pub name: String,
    /// Environment variable holding this machine's secret key.
    pub secret_key_env: Option<String>,
    /// File holding this machine's secret key.
    pub secret_key_file: Option<PathBuf>,
    /// Token lifetime (default 365d).
    pub lifetime: Option<String>,
    /// `opaque` (default) or `jwt`.
    pub format: Option<String>,
}

/// One service, checked: what to ask Clerk for, with which key.
struct Planned<'a> {
    name: &'a str,
    key: SecretString,
    request: CreateM2mTokenRequest,
}

/// A token this run created (kept to revoke it if a later step fails).
struct Created<'a> {
    name: &'a str,
    key: &'a SecretString,
    id: String,
    format: TokenFormat,
}

/// Runs `m2m setup`.
pub(crate) async fn run(
    default_api: &str,
    as_json: bool,
    config: &Path,
    write: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, CliError> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| CliError(format!("cannot read {}: {e}", config.display())))?;
    let setup: SetupConfig =
        toml::from_str(&text).map_err(|e| CliError(format!("{}: {e}", config.display())))?;
    if setup.services.is_empty() {
        return Err(CliError(format!(
            "{}: no [[services]] listed",
            config.display()
        )));
    }
    let api = setup.clerk_api_base_url.as_deref().unwrap_or(default_api);
    let clerk = ClerkClient::new(api).map_err(|e| CliError(format!("CLERK_API_BASE_URL: {e}")))?;
    if let Some(path) = write {
        // Refused before any token exists.
        check_target(path)?;
    }
    let plan = setup
        .services
        .iter()
        .map(|s| plan(s, lookup))
        .collect::<Result<Vec<_>, _>>()?;

    let mut lines = BTreeMap::new();
    let mut created: Vec<Created<'_>> = Vec::new();
    let mut report = Vec::new();
    for p in &plan {
        let token = match clerk.create_m2m_token(&p.key, &p.request).await {
            Ok(t) => t,
            Err(e) => {
                let failure = CliError(format!("{}: {}", p.name, CliError::from(e)));
                return Err(undo(&clerk, &created, failure).await);
            }
        };
        let (token_var, id_var) = ServiceTokens::env_names(p.name);
        lines.insert(token_var, token.token.expose().to_owned());
        lines.insert(id_var, token.info.subject.clone());
        report.push(json!({"service": p.name, "token_id": token.info.id, "machine_id": token.info.subject, "expiration": token.info.expiration}));
        created.push(Created {
            name: p.name,
            key: &p.key,
            id: token.info.id.clone(),
            format: p.request.token_format,
        });
    }
    match write {
        Some(path) => {
            if let Err(e) = write_env_file(path, &lines) {
                let failure = CliError(format!("cannot write {}: {e}", path.display()));
                return Err(undo(&clerk, &created, failure).await);
            }
            Ok(if as_json {
                json!({"written": path.display().to_string(), "tokens": report}).to_string()
            } else {
                format!(
                    "wrote {} lines for {} services to {} (mode 0600)",
                    lines.len(),
                    report.len(),
                    path.display()
                )
            })
        }
        None if as_json => Ok(json!({"env": lines, "tokens": report}).to_string()),
        None => Ok(lines
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// Reads and checks one service's key and settings, without calling Clerk.
fn plan<'a>(
    s: &'a SetupService,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Planned<'a>, CliError> {
    let key = match (&s.secret_key_file, &s.secret_key_env) {
        (Some(path), _) => read_secret_file(path, &format!("{}'s key", s.name))?,
        (None, Some(var)) => lookup(var)
            .filter(|v| !v.trim().is_empty())
            .map(|v| SecretString::from(v.trim().to_owned()))
            .ok_or_else(|| CliError(format!("{}: {var} is not set", s.name)))?,
        (None, None) => {
            return Err(CliError(format!(
                "{}: give secret_key_env or secret_key_file",
                s.name
            )));
        }
    };
    m2m_core::config::check_machine_key(&key)
        .map_err(|e| CliError(format!("{}: {}", s.name, e.reason)))?;
    let lifetime = parse_lifetime(s.lifetime.as_deref().unwrap_or("365d"))
        .map_err(|e| CliError(format!("{}: {e}", s.name)))?;
    let format: TokenFormat = s
        .format
        .as_deref()
        .unwrap_or("opaque")
        .parse()
        .map_err(|e: String| CliError(format!("{}: format: {e}", s.name)))?;
    Ok(Planned {
        name: &s.name,
        key,
        request: CreateM2mTokenRequest {
            token_format: format,
            seconds_until_expiration: Some(lifetime.as_secs()),
            claims: None,
            min_remaining_ttl_seconds: None,
        },
    })
}

/// A failed run: revokes what it created, says so, and names every token it could not revoke
/// (its id, never its value) so nothing live is left unaccounted for.
async fn undo(clerk: &ClerkClient, created: &[Created<'_>], failure: CliError) -> CliError {
    if created.is_empty() {
        return failure;
    }
    let mut revoked = 0;
    let mut left = Vec::new();
    for c in created {
        if c.format == TokenFormat::Jwt {
            // Stateless: Clerk cannot revoke it; it lives until its expiry.
            left.push(format!(
                "{} (JWT {}: cannot be revoked; it expires on its own)",
                c.name, c.id
            ));
            continue;
        }
        match clerk
            .revoke_m2m_token(c.key, &c.id, Some("m2m setup failed"))
            .await
        {
            Ok(_) => revoked += 1,
            Err(e) => left.push(format!(
                "{} ({}: revoking failed: {e}; run `m2m token revoke {}`)",
                c.name, c.id, c.id
            )),
        }
    }
    let mut msg = format!("{failure}; revoked the {revoked} token(s) this run had created");
    if !left.is_empty() {
        msg.push_str(&format!(
            "\nm2m: WARNING: {} token(s) created by this run are still live: {}",
            left.len(),
            left.join(", ")
        ));
    }
    CliError(msg)
}

/// The target must be a regular file or not exist yet: never a symlink, which would send the
/// tokens wherever it points.
fn check_target(path: &Path) -> Result<(), CliError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(CliError(format!(
            "refusing to write {}: it is a symbolic link",
            path.display()
        ))),
        Ok(m) if !m.is_file() => Err(CliError(format!(
            "refusing to write {}: not a regular file",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError(format!("cannot write {}: {e}", path.display()))),
    }
}

/// Replaces the lines of `path` that set one of `lines`' variables (in place; later duplicates
/// dropped), keeps every other line, appends the new variables, and swaps the result in
/// atomically: a 0600 temporary file in the same folder, synced, renamed over the target.
fn write_env_file(path: &Path, lines: &BTreeMap<String, String>) -> std::io::Result<()> {
    check_target(path).map_err(|e| std::io::Error::other(e.0))?;
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let text = merge_env(&old, lines);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile creates it 0600 with a random name, and removes it if anything below fails.
    let mut tmp = tempfile::Builder::new()
        .prefix(".m2m-setup-")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable once the folder is synced.
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// `old` with the variables of `lines` set to their new values (see [`write_env_file`]).
fn merge_env(old: &str, lines: &BTreeMap<String, String>) -> String {
    let var_of = |line: &str| -> Option<String> {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line);
        line.split_once('=').map(|(k, _)| k.trim().to_owned())
    };
    let mut written = std::collections::BTreeSet::new();
    let mut out = String::new();
    for line in old.lines() {
        match var_of(line).filter(|k| lines.contains_key(k)) {
            Some(k) => {
                if written.insert(k.clone()) {
                    out.push_str(&format!("{k}={}\n", lines[&k]));
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (k, v) in lines {
        if !written.contains(k) {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_other_lines_and_replaces_only_owned_ones() {
        let old = "# my settings\nDATABASE_URL=postgres://x\nCLERK_M2M_TOKEN_A=old\nexport CLERK_M2M_TOKEN_A=older\n\nOTHER=1";
        let mut lines = BTreeMap::new();
        lines.insert("CLERK_M2M_TOKEN_A".to_owned(), "mt_new".to_owned());
        lines.insert("CLERK_M2M_MACHINE_ID_A".to_owned(), "mch_1".to_owned());
        assert_eq!(
            merge_env(old, &lines),
            "# my settings\nDATABASE_URL=postgres://x\nCLERK_M2M_TOKEN_A=mt_new\n\nOTHER=1\nCLERK_M2M_MACHINE_ID_A=mch_1\n"
        );
        assert_eq!(
            merge_env("", &lines),
            "CLERK_M2M_MACHINE_ID_A=mch_1\nCLERK_M2M_TOKEN_A=mt_new\n"
        );
    }
}
