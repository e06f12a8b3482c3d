//! `m2m setup`: long-lived tokens for the sender machines of a config file, written as `.env`
//! lines, or as one file per token (Docker secrets) named by `_FILE` lines. All or nothing: every
//! key is read and every target checked before the first token is created, and a run that fails
//! after creating some revokes them. Files are replaced atomically, owner-only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use m2m_core::clerk::{ClerkClient, CreateM2mTokenRequest};
use m2m_core::config::ServiceTokens;
use m2m_core::settings::TokenFormat;
use secrecy::{ExposeSecret, SecretString};
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
    #[serde(default)]
    pub services: Vec<SetupService>,
    /// The graph's sections (`m2m plan`/`apply`), which share the file.
    #[serde(default, rename = "clerk")]
    _clerk: Option<toml::Value>,
    #[serde(default, rename = "output")]
    _output: Option<toml::Value>,
    #[serde(default, rename = "machines")]
    _machines: Option<toml::Value>,
    #[serde(default, rename = "edges")]
    _edges: Option<toml::Value>,
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

/// Where `m2m setup` puts what it creates.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Target<'a> {
    /// `--write`: the `.env` file whose lines it sets (printed when `None`).
    pub env_file: Option<&'a Path>,
    /// `--secrets-dir`: one file per token there; the lines then name the files.
    pub secrets_dir: Option<&'a Path>,
}

/// The file `--secrets-dir` writes a token variable's value to: the variable in lower case.
fn secret_file(dir: &Path, token_var: &str) -> PathBuf {
    dir.join(token_var.to_ascii_lowercase())
}

/// Runs `m2m setup`.
pub(crate) async fn run(
    default_api: &str,
    as_json: bool,
    config: &Path,
    target: Target<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, CliError> {
    let write = target.env_file;
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
    // Two names for one variable (`job-applier`, `job_applier`) would create two tokens and
    // keep one: refused before any exists.
    let mut seen = BTreeMap::new();
    for p in &plan {
        let (token_var, _) = ServiceTokens::env_names(p.name);
        if let Some(other) = seen.insert(token_var.clone(), p.name) {
            return Err(CliError(format!(
                "{}: services {other:?} and {:?} both map to {token_var}",
                config.display(),
                p.name
            )));
        }
    }
    // Absolute, so the `_FILE` lines hold wherever they are read from.
    let secrets_dir = match target.secrets_dir {
        Some(dir) => {
            prepare_secrets_dir(dir)?;
            let dir = std::fs::canonicalize(dir)
                .map_err(|e| CliError(format!("cannot use {}: {e}", dir.display())))?;
            for p in &plan {
                check_target(&secret_file(&dir, &ServiceTokens::env_names(p.name).0))?;
            }
            Some(dir)
        }
        None => None,
    };

    let mut lines = BTreeMap::new();
    // Token files to write (path, token), and the variables the new lines replace.
    let mut files: Vec<(PathBuf, SecretString)> = Vec::new();
    let mut replaced = Vec::new();
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
        let file_var = format!("{token_var}{}", m2m_core::config::FILE_SUFFIX);
        match &secrets_dir {
            Some(dir) => {
                // The token goes to its file; the line names the file, and a line that set the
                // token itself goes (both set is an error at start).
                let path = secret_file(dir, &token_var);
                lines.insert(file_var, path.display().to_string());
                replaced.push(token_var);
                files.push((path, SecretString::from(token.token.expose().to_owned())));
            }
            None => {
                lines.insert(token_var, token.token.expose().to_owned());
                replaced.push(file_var);
            }
        }
        lines.insert(id_var, token.info.subject.clone());
        report.push(json!({"service": p.name, "token_id": token.info.id, "machine_id": token.info.subject, "expiration": token.info.expiration}));
        created.push(Created {
            name: p.name,
            key: &p.key,
            id: token.info.id.clone(),
            format: p.request.token_format,
        });
    }
    for (path, token) in &files {
        let text = format!("{}\n", token.expose_secret());
        if let Err(e) = write_private_file(path, text.as_bytes(), TOKEN_FILE_MODE) {
            let failure = CliError(format!("cannot write {}: {e}", path.display()));
            return Err(undo(&clerk, &created, failure).await);
        }
    }
    match write {
        Some(path) => {
            if let Err(e) = write_env_file(path, &lines, &replaced) {
                let failure = CliError(format!("cannot write {}: {e}", path.display()));
                return Err(undo(&clerk, &created, failure).await);
            }
            Ok(if as_json {
                json!({"written": path.display().to_string(), "tokens": report}).to_string()
            } else {
                format!(
                    "wrote {} lines for {} services to {} (mode 0600){}",
                    lines.len(),
                    report.len(),
                    path.display(),
                    secrets_note(secrets_dir.as_deref(), files.len())
                )
            })
        }
        None if as_json => Ok(json!({"env": lines, "tokens": report}).to_string()),
        None => Ok(lines
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(
                Some(secrets_note(secrets_dir.as_deref(), files.len()))
                    .filter(|n| !n.is_empty())
                    .map(|n| format!("#{n}")),
            )
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

fn secrets_note(dir: Option<&Path>, files: usize) -> String {
    dir.map(|d| {
        format!(
            " and {files} token file(s) to {} (folder 0700, files 0444)",
            d.display()
        )
    })
    .unwrap_or_default()
}

/// Token files are read-only for everyone, in a folder only its owner can enter (as
/// docs/setup-real-clerk.md has the keys): compose bind-mounts a file secret with its host
/// owner and mode, and the containers run as uid 10001, which must read it; on the host the
/// folder keeps everyone else out.
const TOKEN_FILE_MODE: u32 = 0o444;

/// `.env` files: owner-only.
const ENV_FILE_MODE: u32 = 0o600;

/// The folder for token files: created owner-only if missing; an existing one must be a real
/// folder (not a symbolic link), and is tightened to 0700.
pub(crate) fn prepare_secrets_dir(dir: &Path) -> Result<(), CliError> {
    let refuse = |why: &str| CliError(format!("refusing to write to {}: {why}", dir.display()));
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => return Err(refuse("it is a symbolic link")),
        Ok(m) if !m.is_dir() => return Err(refuse("not a folder")),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
        }
        Err(e) => return Err(CliError(format!("cannot use {}: {e}", dir.display()))),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| CliError(format!("cannot make {} owner-only: {e}", dir.display())))?;
    }
    Ok(())
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
    let format: TokenFormat = s.format.as_deref().unwrap_or("opaque").parse().map_err(
        |e: m2m_core::settings::InvalidValue| CliError(format!("{}: format: {e}", s.name)),
    )?;
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
pub(crate) fn check_target(path: &Path) -> Result<(), CliError> {
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
/// dropped), drops those that set a `replaced` one, keeps every other line, appends the new
/// variables, and swaps the result in atomically (see [`write_private_file`]).
pub(crate) fn write_env_file(
    path: &Path,
    lines: &BTreeMap<String, String>,
    replaced: &[String],
) -> std::io::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    write_private_file(
        path,
        merge_env(&old, lines, replaced).as_bytes(),
        ENV_FILE_MODE,
    )
}

/// Writes `bytes` to `path` atomically: a 0600 temporary file in the same folder, written,
/// given `mode`, synced, renamed over the target (never through a symbolic link), folder synced.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    check_target(path).map_err(|e| std::io::Error::other(e.0))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile creates it 0600 with a random name, and removes it if anything below fails.
    let mut tmp = tempfile::Builder::new()
        .prefix(".m2m-setup-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable once the folder is synced.
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// `old` with the variables of `lines` set to their new values and those of `replaced` gone
/// (see [`write_env_file`]).
fn merge_env(old: &str, lines: &BTreeMap<String, String>, replaced: &[String]) -> String {
    let var_of = |line: &str| -> Option<String> {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line);
        line.split_once('=').map(|(k, _)| k.trim().to_owned())
    };
    let mut written = std::collections::BTreeSet::new();
    let mut out = String::new();
    for line in old.lines() {
        let var = var_of(line);
        if var.as_ref().is_some_and(|k| replaced.contains(k)) {
            continue;
        }
        match var.filter(|k| lines.contains_key(k)) {
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
        let replaced = ["CLERK_M2M_TOKEN_A_FILE".to_owned()];
        assert_eq!(
            merge_env(
                &format!("{old}\nCLERK_M2M_TOKEN_A_FILE=/x"),
                &lines,
                &replaced
            ),
            "# my settings\nDATABASE_URL=postgres://x\nCLERK_M2M_TOKEN_A=mt_new\n\nOTHER=1\nCLERK_M2M_MACHINE_ID_A=mch_1\n"
        );
        assert_eq!(
            merge_env("", &lines, &[]),
            "CLERK_M2M_MACHINE_ID_A=mch_1\nCLERK_M2M_TOKEN_A=mt_new\n"
        );
    }
}
