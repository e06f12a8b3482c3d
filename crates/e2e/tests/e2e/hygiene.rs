//! Local data and secrets never reach git or a Docker build context: the files the docs tell
//! people to create (`.env`, `m2m setup --write` targets, `.env.local`) and the SQLite database
//! with its WAL are ignored by both.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

const PRIVATE: [&str; 7] = [
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
