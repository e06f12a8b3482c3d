//! Local data and secrets never reach git or a Docker build context: the files the docs tell
//! people to create (`.env`, `m2m setup --write` targets, `.env.local`) and the SQLite database
//! with its WAL are ignored by both.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

const PRIVATE: [&str; 8] = [
    "secrets/api_clerk_machine_secret_key",
    ".env",
    ".env.m2m",
    ".env.local",
    "jobtracker.db",
    "jobtracker.db-wal",
    "jobtracker.db-shm",
    "data/jobtracker.db",
];

#[test]
fn git_ignores_local_secrets_and_data_but_not_the_example() {
    if !repo().join(".git").exists() {
        panic!(
            "{} is not a git checkout: this test checks .gitignore through `git check-ignore`",
            repo().display()
        );
    }
    for path in PRIVATE {
        let status = Command::new("git")
            .current_dir(repo())
            .args(["check-ignore", "-q", "--no-index", path])
            .status()
            .expect("git runs");
        assert!(status.success(), "{path} is not git-ignored");
    }
    let status = Command::new("git")
        .current_dir(repo())
        .args(["check-ignore", "-q", "--no-index", ".env.example"])
        .status()
        .expect("git runs");
    assert!(!status.success(), ".env.example must stay tracked");
    // The mock's demo keys, which `docker compose up` reads as Docker secrets on a fresh clone.
    let status = Command::new("git")
        .current_dir(repo())
        .args([
            "check-ignore",
            "-q",
            "--no-index",
            "deploy/secrets/demo/api_clerk_machine_secret_key",
        ])
        .status()
        .expect("git runs");
    assert!(!status.success(), "the demo secret files must stay tracked");
}

#[test]
fn the_docker_build_context_leaves_out_local_secrets_and_data() {
    let text = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // Docker matches each pattern against the whole path (Go's filepath.Match, plus `**`).
    for needed in [
        ".env",
        ".env.*",
        "*.db",
        "*.db-*",
        "**/.env.*",
        "**/*.db",
        "**/*.db-*",
        "data",
    ] {
        assert!(patterns.contains(&needed), ".dockerignore lacks {needed}");
    }
    assert!(patterns.contains(&"!.env.example"));
}

#[test]
fn compose_publishes_ports_on_loopback_only_and_keeps_the_instance_key_from_the_representer() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).expect("compose");
    let compose: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let services = compose["services"].as_mapping().expect("services");
    let mut published = 0;
    for (name, service) in services {
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().expect("short port syntax");
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name:?} publishes {port} on every interface"
            );
            published += 1;
        }
    }
    assert!(
        published >= 3,
        "the mock, the API and the representer are published"
    );
    let representer = &services[&serde_yaml::Value::from("candidate-representer")];
    let env = representer["environment"]
        .as_mapping()
        .expect("environment");
    assert!(
        !env.contains_key("CLERK_SECRET_KEY") && !env.contains_key("CLERK_SECRET_KEY_FILE"),
        "the representer verifies with public keys only"
    );
}

#[test]
fn compose_passes_keys_as_docker_secrets_never_in_the_environment() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).expect("compose");
    let compose: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let declared = compose["secrets"].as_mapping().expect("top-level secrets");
    let services = compose["services"].as_mapping().expect("services");
    let mut mounted = 0;
    for (name, service) in services {
        let env = service["environment"].as_mapping();
        let listed: Vec<&str> = service["secrets"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(serde_yaml::Value::as_str)
            .collect();
        for (key, value) in env.into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            let value = value.as_str().unwrap_or_default();
            for plain in [
                "CLERK_MACHINE_SECRET_KEY",
                "CLERK_SECRET_KEY",
                "CLERK_M2M_TOKEN",
                "DATABASE_URL",
                "POSTGRES_PASSWORD",
            ] {
                assert_ne!(key, plain, "{name:?} gets {plain} in its environment");
            }
            if let Some(secret) = key
                .ends_with("_FILE")
                .then(|| value.strip_prefix("/run/secrets/"))
                .flatten()
            {
                assert!(listed.contains(&secret), "{name:?} does not mount {secret}");
                assert!(
                    declared.contains_key(secret),
                    "{secret} is not a declared secret"
                );
                mounted += 1;
            }
        }
        for value in env.into_iter().flatten().map(|(_, v)| v) {
            let value = value.as_str().unwrap_or_default();
            assert!(
                !value.contains("ak_") && !value.contains("sk_"),
                "{name:?} has a key in its environment"
            );
        }
    }
    assert!(
        mounted >= 6,
        "every key and the database password are secrets"
    );
    // The opt-in pre-created tokens are secrets too, each bot mounting its own.
    let text =
        std::fs::read_to_string(repo().join("deploy/compose.static-tokens.yml")).expect("override");
    let overlay: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    for (bot, secret) in [
        ("candidate-representer", "representer_m2m_token"),
        ("job-applier", "applier_m2m_token"),
    ] {
        let service = &overlay["services"][bot];
        assert_eq!(
            service["environment"]["CLERK_M2M_TOKEN_FILE"].as_str(),
            Some(format!("/run/secrets/{secret}").as_str())
        );
        assert_eq!(
            service["environment"].as_mapping().map(|m| m.len()),
            Some(1)
        );
        assert_eq!(service["secrets"][0].as_str(), Some(secret));
        assert!(overlay["secrets"][secret]["file"].is_string(), "{secret}");
    }
    let representer = &services[&serde_yaml::Value::from("candidate-representer")];
    let listed = representer["secrets"].as_sequence().expect("secrets");
    assert!(
        !listed.contains(&serde_yaml::Value::from("clerk_secret_key")),
        "the representer holds no instance key"
    );
    // A fresh clone starts: every secret's default file is in the repository.
    let default = regex::Regex::new(r"^\$\{[A-Z0-9_]+:-(.+)\}$").expect("regex");
    for (name, secret) in declared {
        let file = secret["file"].as_str().expect("a file secret");
        let path = default
            .captures(file)
            .map_or(file.to_owned(), |c| c[1].to_owned());
        let text = std::fs::read_to_string(repo().join(&path))
            .unwrap_or_else(|e| panic!("{name:?}: {path}: {e}"));
        assert!(!text.trim().is_empty(), "{path} is empty");
    }
}
