//! Reading settings: from the environment, a command line, or any lookup ([`Env::from_fn`])
//! (names and defaults: docs/m2m-core.md, *Settings*, and docs/verification.md,
//! *Configuration*).
//!
//! With the `cli` feature (on by default) each setting is declared once, in the clap groups
//! [`ClerkArgs`], [`TokenArgs`], [`JwtArgs`] and [`VerifierArgs`]: a service flattens the ones it
//! needs into its own `clap::Parser` and reads it with [`parse_args`]; a library user reads the
//! environment alone with [`M2mClientConfig::from_env`](crate::M2mClientConfig::from_env) or
//! [`VerifierConfig::from_env`](crate::VerifierConfig::from_env), which parse through the same
//! groups. Values are parsed once, by [`parse`]'s functions.
//!
//! This module depends on the types it builds, never the reverse: the settings themselves are
//! plain structs in [`settings`](crate::settings), and
//! [`VerifierConfig::builder`](crate::VerifierConfig::builder) puts a verifier's together in
//! code, with the same checks and no environment.

#[cfg(feature = "cli")]
mod args;
#[cfg(feature = "cli")]
mod cli;
#[cfg(all(feature = "cli", any(feature = "client", feature = "verify")))]
mod from_env;
pub mod parse;
#[cfg(feature = "client")]
mod service_tokens;

use secrecy::SecretString;

#[cfg(feature = "cli")]
pub use args::ClerkArgs;
#[cfg(all(feature = "cli", feature = "client"))]
pub use args::TokenArgs;
#[cfg(all(feature = "cli", feature = "verify"))]
pub use args::{JwtArgs, VerifierArgs};
#[cfg(feature = "cli")]
pub use cli::parse_args;
#[cfg(feature = "client")]
pub use service_tokens::ServiceTokens;

pub use crate::error::ConfigError;

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads settings through a lookup function, so tests need not touch the process environment.
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl<'a> Env<'a> {
    /// The process environment.
    pub fn process() -> Env<'static> {
        Env {
            lookup: Box::new(|k| std::env::var(k).ok()),
        }
    }

    /// Any lookup, e.g. a map in tests.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// The trimmed value of `var`, `None` if unset or blank.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A secret setting: the value of `var`, or the contents of the file `<var>_FILE` names (a
    /// Docker secret, say): its first line, trimmed — or, for a PEM block, the whole block. Both
    /// set, or a file that cannot be read or is empty, is an error naming the variables and the
    /// path, never what the file holds.
    pub fn secret(&self, var: &str) -> Result<Option<String>, ConfigError> {
        let file_var = format!("{var}{FILE_SUFFIX}");
        match (self.get(var), self.get(&file_var)) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                format!("{var} and {file_var}"),
                "both are set; set one of them",
            )),
            (value, None) => Ok(value),
            (None, Some(path)) => read_secret_file(&path)
                .map(Some)
                .map_err(|reason| ConfigError::new(file_var, format!("{path}: {reason}"))),
        }
    }
}

/// What names a secret setting's file: `CLERK_SECRET_KEY_FILE` for `CLERK_SECRET_KEY`.
pub const FILE_SUFFIX: &str = "_FILE";

/// The secret a file holds: its first line, trimmed (a PEM block whole). Reads at most 64 KiB,
/// so a wrong path (a device, a log) cannot exhaust memory.
fn read_secret_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    const LIMIT: u64 = 64 * 1024;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(LIMIT).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read it: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let text = text.trim_start();
    let value = if text.starts_with("-----BEGIN ") {
        text.trim_end()
    } else {
        text.lines().next().unwrap_or_default().trim()
    };
    if value.is_empty() {
        return Err("the file is empty".to_owned());
    }
    Ok(value.to_owned())
}

/// Checks that `key` is a machine secret key (`ak_…`), not an instance key (`sk_…`).
pub fn check_machine_key(key: &SecretString) -> Result<(), ConfigError> {
    parse::check_machine_key(key).map_err(|e| ConfigError::new("CLERK_MACHINE_SECRET_KEY", e))
}
