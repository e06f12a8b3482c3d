//! `m2m`: manage Clerk M2M tokens from a terminal or a setup script. Keys come from environment
//! variables or files, never from arguments, so they stay out of shell history.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use m2m_core::clerk::{
    ClerkClient, ClerkError, CreateM2mTokenRequest, ListM2mTokensQuery, M2mToken,
};
use m2m_core::settings::TokenFormat;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

pub mod graph;
mod setup;
pub use graph::Report;
pub use setup::{SetupConfig, SetupService};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "m2m",
    version,
    about = "Create, verify, revoke and list Clerk M2M tokens; write .env lines for long-lived tokens",
    after_help = "Keys are read from CLERK_MACHINE_SECRET_KEY / CLERK_SECRET_KEY or from --key-file, never from arguments.\nThe Clerk API is CLERK_API_BASE_URL (default https://api.clerk.com/v1)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Clerk Backend API base URL.
    #[arg(
        long,
        global = true,
        env = "CLERK_API_BASE_URL",
        default_value = m2m_core::clerk::DEFAULT_API_BASE_URL
    )]
    pub api_url: String,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with single tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Create long-lived tokens for the sender machines listed in a config file and print or
    /// write their `.env` lines.
    Setup {
        /// The config (TOML), e.g. m2m.toml.
        #[arg(long)]
        config: PathBuf,
        /// Write the lines to this file (mode 0600) instead of printing them.
        #[arg(long)]
        write: Option<PathBuf>,
        /// Write each token to its own file in this folder (created 0700; files 0600, named
        /// like the variable in lower case, e.g. `clerk_m2m_token_job_applier`) — what Docker
        /// secrets take — and set `CLERK_M2M_TOKEN_<SERVICE>_FILE` to it instead of the token.
        #[arg(long, value_name = "DIR")]
        secrets_dir: Option<PathBuf>,
    },
    /// Show what `apply` would change at Clerk (machines, scopes); changes nothing. Exit code
    /// 0: nothing to do, 2: changes pending, 1: error. Needs the instance secret key.
    Plan {
        #[command(flatten)]
        graph: GraphArgs,
        /// Also list the deletion of machines the file does not name.
        #[arg(long)]
        prune: bool,
    },
    /// Make Clerk match the declaration, write new machine keys to the secrets folder and each
    /// service's env file. A second run changes nothing.
    Apply {
        #[command(flatten)]
        graph: GraphArgs,
        /// Delete machines the file does not name.
        #[arg(long)]
        prune: bool,
        /// Do not ask before removing scopes or deleting machines.
        #[arg(long)]
        yes: bool,
        /// Also print new machines' secret keys (they are always written to their files).
        #[arg(long)]
        show_secrets: bool,
    },
    /// Rotate a machine's secret key and write the new one to its key file (atomically); the
    /// old key keeps working for the grace period.
    Rotate {
        #[command(flatten)]
        graph: GraphArgs,
        /// The service (the file's `[machines.<service>]`) or the machine's name.
        machine: String,
        /// How long the old key keeps working: 0s to 8h.
        #[arg(long, default_value = "1h")]
        grace: String,
    },
}

/// What `plan`, `apply` and `rotate` share.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The declaration (TOML), e.g. deploy/m2m.toml.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Allow a Clerk API URL that is neither https nor loopback (the instance key in clear).
    #[arg(long)]
    pub insecure: bool,
}

/// Where the key comes from.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Read the key from this file instead of the environment.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

/// `m2m token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a token as the machine whose key is CLERK_MACHINE_SECRET_KEY.
    Create {
        /// Lifetime: 365d, 12h, 30m, 45s or seconds.
        #[arg(long, default_value = "1h")]
        lifetime: String,
        /// `opaque` or `jwt`.
        #[arg(long, default_value = "opaque")]
        format: String,
        /// Custom claims, a JSON object.
        #[arg(long)]
        claims: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Verify a token read from standard input (or --token-file), with CLERK_MACHINE_SECRET_KEY
    /// (the receiver) or CLERK_SECRET_KEY.
    Verify {
        /// Read the token from this file instead of standard input.
        #[arg(long)]
        token_file: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Revoke a token by its id (mt_ + 32 hex; not the token itself).
    Revoke {
        /// The token id.
        token_id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// List a machine's opaque tokens, newest first.
    List {
        /// The machine (mch_…).
        #[arg(long)]
        subject: String,
        /// Include revoked tokens.
        #[arg(long)]
        revoked: bool,
        /// Include expired tokens.
        #[arg(long)]
        expired: bool,
        /// Page size (1-100).
        #[arg(long, default_value_t = 10)]
        limit: u32,
        #[command(flatten)]
        key: KeyArgs,
    },
}

/// A failure, already phrased for the person at the terminal.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ClerkError> for CliError {
    fn from(e: ClerkError) -> Self {
        let hint = match &e {
            ClerkError::Unauthorized { .. } => {
                " (check the key: a machine secret key ak_… for create, ak_… or sk_… otherwise)"
            }
            ClerkError::NotFound { .. } => {
                " (unknown, revoked or expired token, or not scoped to this machine)"
            }
            _ => "",
        };
        Self(format!("{e}{hint}"))
    }
}

/// `365d` → 365 days; also `h`, `m`, `s`, or plain seconds.
pub fn parse_lifetime(s: &str) -> Result<Duration, CliError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| {
        CliError(format!(
            "invalid lifetime {s:?}: use e.g. 365d, 12h, 30m or 3600"
        ))
    })?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(CliError(format!(
                "invalid lifetime unit in {s:?}: use d, h, m or s"
            )));
        }
    };
    if secs == 0 || secs > 315_360_000 {
        return Err(CliError(format!(
            "lifetime {s:?} must be between 1 second and 10 years"
        )));
    }
    Ok(Duration::from_secs(secs))
}

/// Reads a key from a file (first line, trimmed). Warns on stderr when others may read it.
fn read_secret_file(path: &Path, what: &str) -> Result<SecretString, CliError> {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "m2m: warning: {} holds a secret key but is readable by {} (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                if mode & 0o007 != 0 {
                    "everyone"
                } else {
                    "its group"
                },
                path.display()
            );
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("cannot read {what} from {}: {e}", path.display())))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(CliError(format!("{} is empty", path.display())));
    }
    Ok(SecretString::from(value.to_owned()))
}

fn key(
    args: &KeyArgs,
    vars: &[&str],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<SecretString, CliError> {
    if let Some(path) = &args.key_file {
        return read_secret_file(path, "the key");
    }
    vars.iter()
        .find_map(|v| lookup(v).filter(|k| !k.trim().is_empty()))
        .map(|k| SecretString::from(k.trim().to_owned()))
        .ok_or_else(|| {
            CliError(format!(
                "no key: set {} or pass --key-file",
                vars.join(" or ")
            ))
        })
}

fn token_json(t: &M2mToken) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

fn describe(t: &M2mToken) -> String {
    let expiry = t
        .expiration
        .map_or("never".to_owned(), |e| format!("{e} (Unix ms)"));
    format!(
        "id {}  subject {}  scopes [{}]  revoked {}  expired {}  expires {expiry}",
        t.id,
        t.subject,
        t.scopes.join(", "),
        t.revoked,
        t.expired
    )
}

/// Runs the CLI; `lookup` reads environment variables, `stdin` the token for verify or the
/// answer to apply's question.
pub async fn run(
    cli: Cli,
    lookup: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
) -> Result<Report, CliError> {
    let common = |g: &GraphArgs| graph::Common {
        api_url: &cli.api_url,
        insecure: g.insecure,
        as_json: cli.json,
    };
    match &cli.command {
        Command::Plan { graph: g, prune } => {
            return graph::plan(&g.file, *prune, common(g), lookup).await;
        }
        Command::Apply {
            graph: g,
            prune,
            yes,
            show_secrets,
        } => {
            let o = graph::ApplyOptions {
                prune: *prune,
                yes: *yes,
                show_secrets: *show_secrets,
            };
            return graph::apply(&g.file, o, common(g), lookup, stdin).await;
        }
        Command::Rotate {
            graph: g,
            machine,
            grace,
        } => {
            let grace = match grace.trim() {
                "0" | "0s" => Duration::ZERO,
                other => parse_lifetime(other).map_err(|e| CliError(format!("--grace: {e}")))?,
            };
            return graph::rotate(&g.file, machine, grace, common(g), lookup).await;
        }
        _ => {}
    }
    run_tokens(cli, lookup, stdin).await.map(|text| Report {
        text,
        pending: false,
    })
}

async fn run_tokens(
    cli: Cli,
    lookup: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
) -> Result<String, CliError> {
    let client =
        |url: &str| ClerkClient::new(url).map_err(|e| CliError(format!("CLERK_API_BASE_URL: {e}")));
    match cli.command {
        Command::Token(TokenCommand::Create {
            lifetime,
            format,
            claims,
            key: k,
        }) => {
            let key = key(&k, &["CLERK_MACHINE_SECRET_KEY"], lookup)?;
            m2m_core::config::check_machine_key(&key).map_err(|e| CliError(e.to_string()))?;
            let format: TokenFormat =
                format
                    .parse()
                    .map_err(|e: m2m_core::settings::InvalidValue| {
                        CliError(format!("--format: {e}"))
                    })?;
            let claims = claims
                .map(|c| {
                    serde_json::from_str::<Value>(&c)
                        .map_err(|e| CliError(format!("--claims is not JSON: {e}")))
                })
                .transpose()?;
            if claims.as_ref().is_some_and(|c| !c.is_object()) {
                return Err(CliError("--claims must be a JSON object".into()));
            }
            let request = CreateM2mTokenRequest {
                token_format: format,
                seconds_until_expiration: Some(parse_lifetime(&lifetime)?.as_secs()),
                claims,
                min_remaining_ttl_seconds: None,
            };
            let created = client(&cli.api_url)?
                .create_m2m_token(&key, &request)
                .await?;
            Ok(if cli.json {
                let mut v = token_json(&created.info);
                v["token"] = json!(created.token.expose());
                v.to_string()
            } else {
                format!("{}\n# {}", created.token.expose(), describe(&created.info))
            })
        }
        Command::Token(TokenCommand::Verify { token_file, key: k }) => {
            let key = key(
                &k,
                &["CLERK_MACHINE_SECRET_KEY", "CLERK_SECRET_KEY"],
                lookup,
            )?;
            let token = match token_file {
                Some(p) => read_secret_file(&p, "the token")?,
                None => {
                    let mut s = String::new();
                    stdin.read_to_string(&mut s).map_err(|e| {
                        CliError(format!("cannot read the token from standard input: {e}"))
                    })?;
                    if s.trim().is_empty() {
                        return Err(CliError(
                            "no token: pipe it on standard input or pass --token-file".into(),
                        ));
                    }
                    SecretString::from(s.trim().to_owned())
                }
            };
            let t = client(&cli.api_url)?
                .verify_m2m_token(&key, token.expose_secret())
                .await?;
            if t.revoked || t.expired {
                return Err(CliError(format!(
                    "token is {}: {}",
                    if t.revoked { "revoked" } else { "expired" },
                    describe(&t)
                )));
            }
            Ok(if cli.json {
                token_json(&t).to_string()
            } else {
                format!("valid: {}", describe(&t))
            })
        }
        Command::Token(TokenCommand::Revoke {
            token_id,
            reason,
            key: k,
        }) => {
            let key = key(
                &k,
                &["CLERK_MACHINE_SECRET_KEY", "CLERK_SECRET_KEY"],
                lookup,
            )?;
            let t = client(&cli.api_url)?
                .revoke_m2m_token(&key, &token_id, reason.as_deref())
                .await?;
            Ok(if cli.json {
                token_json(&t).to_string()
            } else {
                format!("revoked: {}", describe(&t))
            })
        }
        Command::Token(TokenCommand::List {
            subject,
            revoked,
            expired,
            limit,
            key: k,
        }) => {
            let key = key(
                &k,
                &["CLERK_MACHINE_SECRET_KEY", "CLERK_SECRET_KEY"],
                lookup,
            )?;
            let query = ListM2mTokensQuery {
                subject,
                revoked,
                expired,
                limit: Some(limit),
                offset: None,
            };
            let list = client(&cli.api_url)?.list_m2m_tokens(&key, &query).await?;
            Ok(if cli.json {
                json!({"m2m_tokens": list.m2m_tokens.iter().map(token_json).collect::<Vec<_>>(), "total_count": list.total_count}).to_string()
            } else {
                let mut out: Vec<String> = list.m2m_tokens.iter().map(describe).collect();
                out.push(format!(
                    "{} of {} shown",
                    list.m2m_tokens.len(),
                    list.total_count
                ));
                out.join("\n")
            })
        }
        Command::Setup {
            config,
            write,
            secrets_dir,
        } => {
            let target = setup::Target {
                env_file: write.as_deref(),
                secrets_dir: secrets_dir.as_deref(),
            };
            setup::run(&cli.api_url, cli.json, &config, target, lookup).await
        }
        Command::Plan { .. } | Command::Apply { .. } | Command::Rotate { .. } => {
            unreachable!("handled by run")
        }
    }
}
