//! The README's curl walkthrough, run as README.md has it (with bash and curl) against devstack:
//! only the two base URLs change, to the ports this test got. `scripts/compose-check.sh` runs the
//! same snippet, unchanged, against `docker compose up`.

use std::process::Command;
use std::time::{Duration, Instant};

fn readme() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first `sh` block after the paragraph that starts with `heading`.
fn block_after(readme: &str, heading: &str) -> String {
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip_while(|l| *l != "```sh")
        .skip(1);
    let mut out = Vec::new();
    for l in lines.by_ref() {
        if l == "```" {
            return out.join("\n") + "\n";
        }
        out.push(l);
    }
    panic!("README.md: no closed sh block after {heading:?}");
}

/// The `sh` block after "The pipeline with curl" (the compose check extracts it the same way).
fn walkthrough(readme: &str) -> String {
    block_after(readme, "The pipeline with curl")
}

/// The devstack-only `sh` block that lists the walkthrough's packet, run in the same shell.
fn packet_check(readme: &str) -> String {
    block_after(readme, "The packet the applier wrote")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn the_walkthrough_waits_for_submitted_without_a_fixed_sleep() {
    let snippet = walkthrough(&readme());
    assert!(
        snippet.contains("http://localhost:8080") && snippet.contains("API=http://localhost:5000"),
        "the walkthrough talks to the default ports (devstack and compose publish them): {snippet}"
    );
    assert!(
        !snippet
            .lines()
            .any(|l| l.trim_start().starts_with("sleep ")),
        "a fixed sleep is shorter than compose's 5 s poll interval: wait for `submitted`"
    );
    // Nothing that works under one stack only (devstack's ./data, compose's volume) runs.
    assert!(
        !snippet.lines().any(|l| l.trim_start().starts_with("ls ")
            || (l.contains("docker ") && !l.trim_start().starts_with('#'))),
        "{snippet}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_reaches_submitted_under_devstack() {
    if Command::new("curl").arg("--version").output().is_err() {
        panic!("curl is needed to run the README's walkthrough (apt-get install curl)");
    }
    // devstack's folder: the README's `ls data/outbox/$APP` runs from it, as a user's would.
    let dir = std::env::temp_dir().join(format!("readme-{}", jobtracker_api::db::new_id("r")));
    std::fs::create_dir_all(&dir).expect("dir");
    let (mock_port, api_port) = (free_port(), free_port());
    let options = devstack::Options {
        clerk_mock_bind: format!("127.0.0.1:{mock_port}"),
        api_bind: format!("127.0.0.1:{api_port}"),
        representer_bind: format!("127.0.0.1:{}", free_port()),
        applier_bind: format!("127.0.0.1:{}", free_port()),
        api_metrics_bind: format!("127.0.0.1:{}", free_port()),
        representer_metrics_bind: format!("127.0.0.1:{}", free_port()),
        applier_metrics_bind: format!("127.0.0.1:{}", free_port()),
        data_dir: dir.join("data").display().to_string(),
        database_url: None,
        // Compose's default: the walkthrough's wait must cover a full poll interval.
        poll_interval_seconds: 5,
        log: Default::default(),
        server: Default::default(),
    };
    let running = devstack::start(&options).await.expect("devstack starts");
    let readme = readme();
    let snippet = (walkthrough(&readme) + &packet_check(&readme))
        .replace(
            "http://localhost:8080",
            &format!("http://127.0.0.1:{mock_port}"),
        )
        .replace(
            "API=http://localhost:5000",
            &format!("API=http://127.0.0.1:{api_port}"),
        );
    let started = Instant::now();
    let cwd = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(snippet)
            .current_dir(cwd)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
            .expect("bash runs")
    })
    .await
    .expect("join");
    let took = started.elapsed();
    running.stop().await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(r#""status":"submitted""#),
        "not submitted after {took:?}:\n{stdout}\n{stderr}"
    );
    for actor in [
        r#""actor":"user:user_2DemoAliceCandidate"#,
        r#""actor":"machine:mch_2CandidateRepresenterBot"#,
        r#""actor":"machine:mch_2JobApplierBot"#,
    ] {
        assert!(stdout.contains(actor), "no event from {actor}:\n{stdout}");
    }
    // The three answers it prints (the user, the application, its events) are a line each.
    let printed: Vec<&str> = stdout.lines().collect();
    assert!(printed.len() >= 3, "{stdout}");
    for line in &printed[..3] {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not one JSON answer a line: {line}\n{stdout}"
        );
    }
    // Then the packet, listed by the README's `ls`.
    for file in ["packet.json", "resume.txt"] {
        assert!(
            printed[3..].contains(&file),
            "the packet check did not list {file}:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        took < Duration::from_secs(60),
        "the walkthrough's wait is bounded: {took:?}"
    );
}
