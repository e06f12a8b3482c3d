//! Configuration and documentation cannot drift from the code: every variable a service reads is
//! in `.env.example` and `docker-compose.yml`, and every variable, binary and `m2m` command the
//! docs name exists.

use std::collections::{BTreeMap, BTreeSet};

use clap::CommandFactory;
use regex::Regex;
use secrecy::ExposeSecret;

fn repo(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn env_vars(cmd: clap::Command) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in cmd.get_arguments() {
        if let Some(e) = a.get_env() {
            out.insert(e.to_string_lossy().into_owned());
        }
    }
    for sub in cmd.get_subcommands() {
        out.extend(env_vars(sub.clone()));
    }
    out
}

/// The secret settings `cmd` reads (those whose values help hides): each may be given as
/// `<NAME>_FILE` instead, as compose gives them.
fn secret_vars(cmd: clap::Command) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in cmd.get_arguments() {
        if let (true, Some(e)) = (a.is_hide_env_values_set(), a.get_env()) {
            out.insert(e.to_string_lossy().into_owned());
        }
    }
    for sub in cmd.get_subcommands() {
        out.extend(secret_vars(sub.clone()));
    }
    out
}

/// The lines of the YAML block that starts with the line `header` (indentation included).
fn block(text: &str, header: &str) -> String {
    let indent = header.len() - header.trim_start().len();
    let mut lines = text.lines().skip_while(|l| *l != header);
    let Some(first) = lines.next() else {
        return String::new();
    };
    let mut out = vec![first];
    for l in lines {
        let depth = l.len() - l.trim_start().len();
        if !l.trim().is_empty() && depth <= indent {
            break;
        }
        out.push(l);
    }
    out.join("\n")
}

fn block_of(text: &str, header: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(header))
        .map(|h| block(text, h))
        .unwrap_or_default()
}

/// `KEY:` names in a block.
fn keys(block: &str) -> BTreeSet<String> {
    block
        .lines()
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.to_owned()))
        .filter(|k| {
            k.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

/// (service name in compose, variables it reads)
fn services() -> Vec<(&'static str, BTreeSet<String>)> {
    commands()
        .into_iter()
        .map(|(name, cmd)| (name, env_vars(cmd)))
        .collect()
}

/// (service name in compose, its command line)
fn commands() -> Vec<(&'static str, clap::Command)> {
    vec![
        ("jobtracker-api", jobtracker_api::Config::command()),
        (
            "candidate-representer",
            candidate_representer::Config::command(),
        ),
        ("job-applier", job_applier::Config::command()),
        ("clerk-mock", clerk_mock_service::Config::command()),
    ]
}

#[test]
fn every_variable_a_service_reads_is_in_env_example_and_compose() {
    let example = repo(".env.example");
    let compose = repo("docker-compose.yml");
    // Settings only the opt-in override sets (pre-created tokens as Docker secrets).
    let static_tokens = repo("deploy/compose.static-tokens.yml");
    for (service, cmd) in commands() {
        let vars = env_vars(cmd.clone());
        let secrets = secret_vars(cmd);
        let block = block(&compose, &format!("  {service}:"));
        assert!(!block.is_empty(), "{service} is not in compose");
        let mut set = keys(&block);
        // Anchors the service merges.
        for (anchor, name) in [
            ("*common", "x-common:"),
            ("*server", "x-server:"),
            ("*bot", "x-bot:"),
        ] {
            if block.contains(anchor) {
                set.extend(keys(&block_of(&compose, name)));
            }
        }
        set.extend(keys(&crate::contract::block(
            &static_tokens,
            &format!("  {service}:"),
        )));
        for var in vars {
            assert!(
                example.contains(&var),
                "{var} ({service}) is not documented in .env.example"
            );
            // A secret may come as a file (a Docker secret).
            assert!(
                set.contains(&var)
                    || secrets.contains(&var) && set.contains(&format!("{var}_FILE")),
                "{var} is read by {service} but compose does not set it"
            );
        }
    }
    // Every ${VAR} compose interpolates is documented too.
    let interpolated = Regex::new(r"\$\{([A-Z0-9_]+)").expect("regex");
    for cap in interpolated
        .captures_iter(&compose)
        .chain(interpolated.captures_iter(&static_tokens))
    {
        assert!(
            example.contains(&cap[1]),
            "compose reads ${{{}}} but .env.example does not document it",
            &cap[1]
        );
    }
}

/// The environment compose gives `service` when no `.env` exists: its `environment:` block with
/// the anchors it merges, each `${VAR:-default}` resolved to its default (`${VAR}` to empty), and
/// each Docker secret's path (`/run/secrets/<name>`) to the repository file it defaults to.
fn compose_env(compose: &str, service: &str) -> BTreeMap<String, String> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(compose).expect("compose is YAML");
    let default = Regex::new(r"^\$\{[A-Z0-9_]+:-(.+)\}$").expect("regex");
    let secret_file = |name: &str| {
        let file = yaml["secrets"][name]["file"]
            .as_str()
            .unwrap_or_else(|| panic!("no secret {name} in compose"));
        let path = default
            .captures(file)
            .map_or(file.to_owned(), |c| c[1].to_owned());
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path)
            .to_string_lossy()
            .into_owned()
    };
    let service_block = block(compose, &format!("  {service}:"));
    let env_block = block(&service_block, "    environment:");
    let mut lines: Vec<String> = Vec::new();
    for (anchor, name) in [("*common", "x-common:"), ("*bot", "x-bot:")] {
        if env_block.contains(anchor) {
            lines.extend(block_of(compose, name).lines().skip(1).map(str::to_owned));
        }
    }
    lines.extend(env_block.lines().skip(1).map(str::to_owned));
    let interpolated = Regex::new(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}").expect("regex");
    let mut out = BTreeMap::new();
    for line in lines {
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        if key.starts_with('<') || key.starts_with('#') {
            continue;
        }
        let value = value.trim().trim_matches('"');
        let value = interpolated.replace_all(value, |c: &regex::Captures<'_>| {
            c.get(2).map_or(String::new(), |d| d.as_str().to_owned())
        });
        let value = match value.strip_prefix("/run/secrets/") {
            Some(name) => secret_file(name),
            None => value.into_owned(),
        };
        out.insert(key.to_owned(), value);
    }
    out
}

/// Parses a service's settings from compose's values the way its binary does (each variable
/// becomes the flag that reads it, empty values included).
fn parse_from_compose<C: clap::Parser + CommandFactory>(
    compose: &str,
    service: &str,
) -> Result<C, String> {
    let reads = env_vars(C::command());
    let env = compose_env(compose, service);
    let vars: BTreeMap<&str, String> = env
        .iter()
        .filter(|(k, _)| {
            reads.contains(*k) || k.strip_suffix("_FILE").is_some_and(|v| reads.contains(v))
        })
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    devstack::config_from_env::<C>(service, &vars).map_err(|e| e.to_string())
}

#[tokio::test]
async fn every_service_accepts_the_values_compose_gives_it_with_no_env_file() {
    // An unset variable reaches the container as an empty string (`${VAR:-}`): a service must
    // treat it as unset, not refuse to start (as the bots once did in `docker compose up`).
    let compose = repo("docker-compose.yml");
    let env = compose_env(&compose, "job-applier");
    assert_eq!(
        env.get("M2M_TOKEN_LIFETIME_SECONDS").map(String::as_str),
        Some("")
    );
    assert_eq!(
        env.get("JOBTRACKER_API_URL").map(String::as_str),
        Some("http://load-balancer:5000")
    );

    let api: jobtracker_api::Config =
        parse_from_compose(&compose, "jobtracker-api").expect("jobtracker-api");
    assert!(api.database_url.expose_secret().starts_with("postgres://"));
    let mock: clerk_mock_service::Config =
        parse_from_compose(&compose, "clerk-mock").expect("clerk-mock");
    assert_eq!(mock.bind.port(), 8080);
    let representer: candidate_representer::Config =
        parse_from_compose(&compose, "candidate-representer").expect("candidate-representer");
    candidate_representer::Representer::from_config(&representer).expect("representer settings");
    let applier: job_applier::Config =
        parse_from_compose(&compose, "job-applier").expect("job-applier");
    job_applier::Applier::from_config(&applier).expect("applier settings");
}

#[test]
fn the_design_variables_are_all_documented() {
    let example = repo(".env.example");
    for var in [
        "CLERK_API_BASE_URL",
        "CLERK_MACHINE_SECRET_KEY",
        "CLERK_M2M_TOKEN",
        "ENABLE_M2M_AUTH",
        "M2M_TOKEN_LIFETIME_SECONDS",
        "M2M_TOKEN_REFRESH_BUFFER_SECONDS",
        "M2M_TOKEN_FORMAT",
        "JOBTRACKER_API_URL",
        "JOBTRACKER_BIND",
        "DATABASE_URL",
        "CLERK_SECRET_KEY",
        "CLERK_JWT_KEY",
        "CLERK_JWKS_URL",
        "CLERK_AUTHORIZED_PARTIES",
        "CLERK_ISSUER",
        "CANDIDATE_REPRESENTER_MACHINE_ID",
        "JOB_APPLIER_MACHINE_ID",
        "M2M_VERIFY_CACHE_TTL_SECONDS",
        "REPRESENTER_BIND",
        "APPLIER_BIND",
        "POLL_INTERVAL_SECONDS",
        "APPLIER_OUTBOX_DIR",
        "APPLIER_SUBMIT_URL",
        "RUST_LOG",
        "LOG_FORMAT",
    ] {
        assert!(example.contains(var), "{var} is missing from .env.example");
    }
}

#[test]
fn the_docs_name_only_variables_binaries_and_commands_that_exist() {
    let mut known: BTreeSet<String> = services().into_iter().flat_map(|(_, v)| v).collect();
    known.extend(env_vars(devstack::Options::command()));
    known.extend(env_vars(m2m_cli::Cli::command()));
    // Each secret setting's file variant.
    let mut secrets: BTreeSet<String> = commands()
        .into_iter()
        .flat_map(|(_, cmd)| secret_vars(cmd))
        .collect();
    secrets.extend(secret_vars(devstack::Options::command()));
    known.extend(secrets.iter().map(|v| format!("{v}_FILE")));
    let compose = repo("docker-compose.yml");
    let interpolated = Regex::new(r"\$\{([A-Z0-9_]+)").expect("regex");
    known.extend(
        interpolated
            .captures_iter(&compose)
            .map(|c| c[1].to_owned()),
    );
    // Read by the test harness and CI, not by a service.
    known.extend(
        [
            "TEST_POSTGRES_URL",
            "REQUIRE_BROWSER_TEST",
            "REQUIRE_COMPOSE_CHECK",
            // tests/graph.rs: rewrites the mock's seed from deploy/m2m.toml.
            "M2M_BLESS_SEED",
        ]
        .map(str::to_owned),
    );
    // Compose's own database settings.
    known.extend(
        [
            "POSTGRES_USER",
            "POSTGRES_DB",
            "POSTGRES_PASSWORD",
            "POSTGRES_PASSWORD_FILE",
        ]
        .map(str::to_owned),
    );

    let mut docs = vec![
        ("README.md".to_owned(), repo("README.md")),
        (".env.example".to_owned(), repo(".env.example")),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    for entry in std::fs::read_dir(&dir).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = format!("docs/{}", path.file_name().expect("name").to_string_lossy());
            docs.push((name, std::fs::read_to_string(&path).expect("read")));
        }
    }
    let var = Regex::new(r"\b((?:CLERK|M2M|JOBTRACKER|APPLIER|REPRESENTER|CANDIDATE|JOB|ENABLE|POLL|DATABASE|RESUME|LOG|RUST|DEVSTACK|API|TEST|REQUIRE|POSTGRES)_[A-Z0-9_]*[A-Z0-9])\b").expect("regex");
    let per_service = Regex::new(r"^CLERK_M2M_(TOKEN|MACHINE_ID)_[A-Z0-9_]+$").expect("regex");
    let bins = [
        "clerk-mock",
        "jobtracker-api",
        "candidate-representer",
        "job-applier",
        "m2m",
        "devstack",
        "loadbench",
        "floorbench",
    ];
    let bin = Regex::new(r"--bin ([a-z0-9-]+)").expect("regex");
    let m2m_cmd = Regex::new(r"`m2m ([^`]*)`").expect("regex");
    let cli = m2m_cli::Cli::command();
    let mut problems = Vec::new();
    for (name, text) in &docs {
        for cap in var.captures_iter(text) {
            let v = &cap[1];
            if !known.contains(v) && !per_service.is_match(v) && !v.ends_with("_SERVICE") {
                problems.push(format!("{name}: {v} is not read by anything"));
            }
        }
        for cap in bin.captures_iter(text) {
            if !bins.contains(&&cap[1]) {
                problems.push(format!("{name}: there is no binary {}", &cap[1]));
            }
        }
        for cap in m2m_cmd.captures_iter(text) {
            let mut cmd = &cli;
            // The subcommand words, up to the first flag or argument.
            for word in cap[1]
                .split_whitespace()
                .take_while(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
            {
                match cmd.find_subcommand(word) {
                    Some(sub) => cmd = sub,
                    None => {
                        problems.push(format!("{name}: `m2m {}` is not a command", cap[1].trim()));
                        break;
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
