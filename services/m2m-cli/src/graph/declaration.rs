//! The service graph as `m2m.toml` declares it: machines, edges (caller → receiver) and the role
//! each caller has at each receiver. Parsed and checked whole before anything talks to Clerk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{CliError, parse_lifetime};

/// The file as written (docs/setup-real-clerk.md, *The declaration*).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    clerk: RawClerk,
    #[serde(default)]
    output: RawOutput,
    #[serde(default)]
    machines: BTreeMap<String, RawMachine>,
    #[serde(default)]
    edges: Vec<RawEdge>,
    /// `m2m setup`'s section (pre-created tokens); not part of the graph.
    #[serde(default, rename = "services")]
    _services: Option<toml::Value>,
    /// `m2m setup`'s override of the API URL; `[clerk] api_url` is the graph's.
    #[serde(default, rename = "clerk_api_base_url")]
    _setup_api_url: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClerk {
    api_url: Option<String>,
    instance_secret_key_env: Option<String>,
    instance_secret_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    secrets_dir: Option<PathBuf>,
    env_dir: Option<PathBuf>,
    secrets_path_in_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    name: String,
    token_lifetime: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, String>,
    allowed_callers_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    caller: String,
    receiver: String,
    role: Option<String>,
}

/// Where the instance secret key comes from: never the file itself, never an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceKeySource {
    /// An environment variable (default `CLERK_SECRET_KEY`).
    Env(String),
    /// A file (first line).
    File(PathBuf),
}

/// One declared machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredMachine {
    /// The table key: the service's name, used for its env and key file names.
    pub service: String,
    /// The machine's name at Clerk, how it is matched.
    pub name: String,
    /// `default_token_ttl`, seconds.
    pub token_ttl: u64,
    /// role → the variable this receiver reads the caller's id from.
    pub roles: BTreeMap<String, String>,
    /// The variable this receiver reads its allowed callers' ids from (comma-separated).
    pub allowed_callers_env: Option<String>,
}

/// One edge: `caller` may call `receiver`, with `role` there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The calling service.
    pub caller: String,
    /// The called service.
    pub receiver: String,
    /// The caller's role at the receiver.
    pub role: Option<String>,
}

/// A checked declaration.
#[derive(Debug, Clone)]
pub struct Declaration {
    /// Overrides CLERK_API_BASE_URL.
    pub api_url: Option<String>,
    /// The instance key's source.
    pub instance_key: InstanceKeySource,
    /// Machine keys: one file per service here.
    pub secrets_dir: PathBuf,
    /// Env files: `<service>.env` here.
    pub env_dir: PathBuf,
    /// What the env files call `secrets_dir` (a container's `/run/secrets`), if not itself.
    pub secrets_path_in_env: Option<String>,
    /// Machines by service, in file order of their keys.
    pub machines: Vec<DeclaredMachine>,
    /// Edges, sorted.
    pub edges: Vec<Edge>,
}

/// The lifetime Clerk gives a machine's tokens when none is declared.
pub const DEFAULT_TOKEN_TTL: u64 = 3600;

fn is_service_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_env_var(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

impl Declaration {
    /// Reads and checks `path`; relative output folders are relative to its folder.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| CliError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses and checks `text`; `base` anchors relative folders.
    pub fn parse(text: &str, base: &Path) -> Result<Self, CliError> {
        let raw: Raw = toml::from_str(text).map_err(|e| CliError(e.to_string()))?;
        if raw.machines.is_empty() {
            return Err(CliError("no [machines.<service>] declared".into()));
        }
        let instance_key = match (
            raw.clerk.instance_secret_key_env,
            raw.clerk.instance_secret_key_file,
        ) {
            (Some(_), Some(_)) => {
                return Err(CliError(
                    "[clerk]: set instance_secret_key_env or instance_secret_key_file, not both"
                        .into(),
                ));
            }
            (_, Some(file)) => InstanceKeySource::File(base.join(file)),
            (env, None) => {
                let var = env.unwrap_or_else(|| "CLERK_SECRET_KEY".into());
                if !is_env_var(&var) {
                    return Err(CliError(format!(
                        "[clerk] instance_secret_key_env {var:?} is not a variable name"
                    )));
                }
                InstanceKeySource::Env(var)
            }
        };
        let mut names = BTreeMap::new();
        let mut machines = Vec::new();
        for (service, m) in raw.machines {
            if !is_service_name(&service) {
                return Err(CliError(format!(
                    "[machines.{service}]: the key names files; use a-z, 0-9, - and _"
                )));
            }
            if m.name.is_empty() || m.name.len() > 255 {
                return Err(CliError(format!(
                    "[machines.{service}] name must be 1 to 255 characters"
                )));
            }
            if let Some(other) = names.insert(m.name.clone(), service.clone()) {
                return Err(CliError(format!(
                    "[machines.{other}] and [machines.{service}] both name {:?}; machines are matched by name",
                    m.name
                )));
            }
            let token_ttl = match &m.token_lifetime {
                Some(l) => parse_lifetime(l)
                    .map_err(|e| CliError(format!("[machines.{service}] token_lifetime: {e}")))?
                    .as_secs(),
                None => DEFAULT_TOKEN_TTL,
            };
            for var in m.roles.values().chain(&m.allowed_callers_env) {
                if !is_env_var(var) {
                    return Err(CliError(format!(
                        "[machines.{service}]: {var:?} is not a variable name"
                    )));
                }
            }
            machines.push(DeclaredMachine {
                service,
                name: m.name,
                token_ttl,
                roles: m.roles,
                allowed_callers_env: m.allowed_callers_env,
            });
        }
        let find = |s: &str| machines.iter().find(|m| m.service == s);
        let mut edges = BTreeSet::new();
        let mut role_holder: BTreeMap<(String, String), String> = BTreeMap::new();
        for e in raw.edges {
            let what = format!("edge {} → {}", e.caller, e.receiver);
            if find(&e.caller).is_none() {
                return Err(CliError(format!(
                    "{what}: no [machines.{}] declared",
                    e.caller
                )));
            }
            let Some(receiver) = find(&e.receiver) else {
                return Err(CliError(format!(
                    "{what}: no [machines.{}] declared",
                    e.receiver
                )));
            };
            if e.caller == e.receiver {
                return Err(CliError(format!("{what}: a machine does not call itself")));
            }
            if edges
                .iter()
                .any(|x: &Edge| x.caller == e.caller && x.receiver == e.receiver)
            {
                return Err(CliError(format!("{what} is declared twice")));
            }
            match &e.role {
                Some(role) if !receiver.roles.contains_key(role) => {
                    return Err(CliError(format!(
                        "{what}: {} has no role {role:?} (its roles: {})",
                        e.receiver,
                        receiver
                            .roles
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                Some(role) => {
                    // The receivers take one machine id per role variable.
                    if let Some(other) =
                        role_holder.insert((e.receiver.clone(), role.clone()), e.caller.clone())
                    {
                        return Err(CliError(format!(
                            "{what}: role {role:?} at {} is already {other}'s; a role has one caller",
                            e.receiver
                        )));
                    }
                }
                // Fail closed: a caller with no role at a receiver that grants by role only
                // would authenticate and then get 403 on everything.
                None if receiver.allowed_callers_env.is_none() => {
                    return Err(CliError(format!(
                        "{what}: give it a role ({}); {} lets machines in by role only",
                        receiver
                            .roles
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                        e.receiver
                    )));
                }
                None => {}
            }
            let edge = Edge {
                caller: e.caller,
                receiver: e.receiver,
                role: e.role,
            };
            edges.insert(edge);
        }
        Ok(Declaration {
            api_url: raw.clerk.api_url,
            instance_key,
            secrets_dir: base.join(raw.output.secrets_dir.unwrap_or_else(|| "secrets".into())),
            env_dir: base.join(raw.output.env_dir.unwrap_or_else(|| "env".into())),
            secrets_path_in_env: raw.output.secrets_path_in_env,
            machines,
            edges: edges.into_iter().collect(),
        })
    }

    /// The machine declared for `service`.
    pub fn machine(&self, service: &str) -> Option<&DeclaredMachine> {
        self.machines.iter().find(|m| m.service == service)
    }

    /// The machine declared for `service`, or named `name` at Clerk.
    pub fn machine_by_service_or_name(&self, which: &str) -> Option<&DeclaredMachine> {
        self.machine(which)
            .or_else(|| self.machines.iter().find(|m| m.name == which))
    }

    /// Key file of `service`'s machine.
    pub fn key_file(&self, service: &str) -> PathBuf {
        self.secrets_dir.join(format!("{service}.key"))
    }

    /// Env file of `service`.
    pub fn env_file(&self, service: &str) -> PathBuf {
        self.env_dir.join(format!("{service}.env"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../deploy/m2m.toml");

    fn parse(text: &str) -> Result<Declaration, String> {
        Declaration::parse(text, Path::new("/x")).map_err(|e| e.0)
    }

    #[test]
    fn the_repository_example_describes_the_seed() {
        let d = parse(EXAMPLE).expect("example parses");
        let names: Vec<_> = d.machines.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "CandidateRepresenter.Bot",
                "JobApplier.Bot",
                "JobTracker.API"
            ]
        );
        // Until devstack applies the declaration itself, this keeps the two in step: the same
        // machines, and each one's scopes are its declared edges.
        let seed: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../crates/clerk-mock/seed/default.json"
        ))
        .expect("seed");
        let mut from_seed: Vec<(String, Vec<String>)> = seed["machines"]
            .as_array()
            .expect("machines")
            .iter()
            .map(|m| {
                let scoped = m["scoped_machines"].as_array().expect("scoped");
                (
                    m["name"].as_str().expect("name").to_owned(),
                    scoped
                        .iter()
                        .map(|s| s.as_str().expect("name").to_owned())
                        .collect(),
                )
            })
            .collect();
        from_seed.sort();
        let name = |service: &str| d.machine(service).expect("declared").name.clone();
        let mut declared: Vec<(String, Vec<String>)> = d
            .machines
            .iter()
            .map(|m| {
                let to = d.edges.iter().filter(|e| e.caller == m.service);
                (m.name.clone(), to.map(|e| name(&e.receiver)).collect())
            })
            .collect();
        declared.sort();
        assert_eq!(
            declared, from_seed,
            "deploy/m2m.toml and the mock's seed differ"
        );
    }

    #[test]
    fn mistakes_are_refused_with_what_is_wrong() {
        let m =
            "[machines.a]\nname = \"A\"\nroles = { r = \"R_ID\" }\n[machines.b]\nname = \"B\"\n";
        for (text, needle) in [
            ("", "no [machines"),
            (
                "[machines.a]\nname = \"A\"\n[machines.b]\nname = \"A\"\n",
                "both name",
            ),
            ("[machines.A]\nname = \"A\"\n", "use a-z"),
            ("[machines.a]\nname = \"\"\n", "1 to 255"),
            (
                "[machines.a]\nname = \"A\"\ntoken_lifetime = \"0s\"\n",
                "token_lifetime",
            ),
            (
                "[machines.a]\nname = \"A\"\nsecret = \"x\"\n",
                "unknown field",
            ),
            (
                &format!("{m}[[edges]]\ncaller = \"b\"\nreceiver = \"c\"\n"),
                "no [machines.c]",
            ),
            (
                &format!("{m}[[edges]]\ncaller = \"b\"\nreceiver = \"a\"\n"),
                "give it a role",
            ),
            (
                &format!("{m}[[edges]]\ncaller = \"b\"\nreceiver = \"a\"\nrole = \"x\"\n"),
                "no role \"x\"",
            ),
            (
                &format!("{m}[[edges]]\ncaller = \"a\"\nreceiver = \"a\"\nrole = \"r\"\n"),
                "itself",
            ),
            (
                &format!(
                    "{m}[machines.c]\nname = \"C\"\n[[edges]]\ncaller = \"b\"\nreceiver = \"a\"\nrole = \"r\"\n[[edges]]\ncaller = \"c\"\nreceiver = \"a\"\nrole = \"r\"\n"
                ),
                "one caller",
            ),
            (
                &format!(
                    "{m}[[edges]]\ncaller = \"b\"\nreceiver = \"a\"\nrole = \"r\"\n[[edges]]\ncaller = \"b\"\nreceiver = \"a\"\nrole = \"r\"\n"
                ),
                "twice",
            ),
            (
                "[clerk]\ninstance_secret_key_env = \"X\"\ninstance_secret_key_file = \"k\"\n[machines.a]\nname = \"A\"\n",
                "not both",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
