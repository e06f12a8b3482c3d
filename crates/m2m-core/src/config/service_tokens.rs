//! Pre-created (static) tokens per service, the way the older package configured them:
//! `CLERK_M2M_TOKEN_<SERVICE>` with `CLERK_M2M_MACHINE_ID_<SERVICE>`, plus plain `CLERK_M2M_TOKEN`;
//! each token may instead come from the file its `_FILE` variable names (a Docker secret).

use std::collections::BTreeMap;
use std::fmt;

use super::{ConfigError, Env, FILE_SUFFIX};
use crate::secret::BearerToken;

const TOKEN_PREFIX: &str = "CLERK_M2M_TOKEN_";
const MACHINE_ID_PREFIX: &str = "CLERK_M2M_MACHINE_ID_";

/// Static tokens and expected machine ids, keyed by normalised service name
/// (`job-applier` → `JOB_APPLIER`).
#[derive(Clone, Default)]
pub struct ServiceTokens {
    default_token: Option<BearerToken>,
    tokens: BTreeMap<String, BearerToken>,
    machine_ids: BTreeMap<String, String>,
}

impl fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokens")
            .field("default_token", &self.default_token.is_some())
            .field("services", &self.tokens.keys().collect::<Vec<_>>())
            .field("machine_ids", &self.machine_ids)
            .finish()
    }
}

/// `job-applier` / `Job Applier` / `JOB_APPLIER` → `JOB_APPLIER`.
pub(crate) fn normalise_service_name(service: &str) -> String {
    service
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl ServiceTokens {
    /// The variables the older package used for `service`:
    /// (`CLERK_M2M_TOKEN_<SERVICE>`, `CLERK_M2M_MACHINE_ID_<SERVICE>`).
    pub fn env_names(service: &str) -> (String, String) {
        let name = normalise_service_name(service);
        (
            format!("{TOKEN_PREFIX}{name}"),
            format!("{MACHINE_ID_PREFIX}{name}"),
        )
    }

    /// Reads every `CLERK_M2M_TOKEN`, `CLERK_M2M_TOKEN_*` and `CLERK_M2M_MACHINE_ID_*` variable
    /// (blank ones count as unset). A token variable ending in `_FILE`
    /// (`CLERK_M2M_TOKEN_JOB_APPLIER_FILE`, `CLERK_M2M_TOKEN_FILE`) names a file holding that
    /// token instead, read like every secret setting ([`Env::secret`]): so no service name may
    /// end in `_FILE`. A file that cannot be read or is empty, or a token set both ways, is an
    /// error naming the variables, never the token.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().trim().to_owned()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let env = Env::from_fn(|k| vars.get(k).cloned());
        let mut out = Self::default();
        // Each token variable once, whether it came as itself, as its `_FILE`, or both.
        let mut token_vars = std::collections::BTreeSet::new();
        for (key, value) in &vars {
            if let Some(service) = key.strip_prefix(MACHINE_ID_PREFIX) {
                out.machine_ids
                    .insert(normalise_service_name(service), value.clone());
            } else if key.starts_with("CLERK_M2M_TOKEN") {
                token_vars.insert(key.strip_suffix(FILE_SUFFIX).unwrap_or(key));
            }
        }
        for var in token_vars {
            let service = if var == "CLERK_M2M_TOKEN" {
                None
            } else if let Some(service) = var.strip_prefix(TOKEN_PREFIX) {
                Some(normalise_service_name(service))
            } else {
                continue;
            };
            let Some(token) = env.secret(var)?.map(BearerToken::new) else {
                continue;
            };
            match service {
                None => out.default_token = Some(token),
                Some(service) => {
                    out.tokens.insert(service, token);
                }
            }
        }
        Ok(out)
    }

    /// Reads the process environment (see [`ServiceTokens::from_vars`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// The token for `service`: its own `CLERK_M2M_TOKEN_<SERVICE>`, else `CLERK_M2M_TOKEN`.
    pub fn token_for(&self, service: &str) -> Option<BearerToken> {
        self.tokens
            .get(&normalise_service_name(service))
            .or(self.default_token.as_ref())
            .cloned()
    }

    /// Whether a token is configured for `service` (its own or the default).
    pub fn is_configured(&self, service: &str) -> bool {
        self.token_for(service).is_some()
    }

    /// The machine id `service`'s token is expected to belong to (`CLERK_M2M_MACHINE_ID_<SERVICE>`).
    pub fn expected_machine_id(&self, service: &str) -> Option<&str> {
        self.machine_ids
            .get(&normalise_service_name(service))
            .map(String::as_str)
    }

    /// Services with their own token, normalised.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.tokens.keys().map(String::as_str)
    }
}
