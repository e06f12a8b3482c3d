//! The binary: `--print-seed` prints the effective seed; bad seeds fail clearly.

use test_support::cli;

const BIN: &str = env!("CARGO_BIN_EXE_clerk-mock");

fn bin() -> std::process::Command {
    cli::bin(BIN)
}

#[test]
fn print_seed_shows_the_fixed_demo_machines() {
    let out = bin().arg("--print-seed").output().expect("runs");
    assert!(out.status.success());
    let seed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = seed["machines"]
        .as_array()
        .expect("machines")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "JobTracker.API",
            "CandidateRepresenter.Bot",
            "JobApplier.Bot"
        ]
    );
    assert_eq!(
        seed["instance_secret_key"],
        "sk_test_jobtracker_mock_instance_secret_key"
    );
    assert!(
        seed["jwt_public_key_pem"]
            .as_str()
            .expect("pem")
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    cli::assert_help_lists(BIN, &["CLERK_MOCK_BIND", "CLERK_MOCK_SEED"]);
}

#[test]
fn a_bad_seed_file_is_refused_with_its_variable() {
    let path = std::env::temp_dir().join(format!("bad-seed-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"machines":[{"name":"A","scoped_machines":["Nobody"]}]}"#,
    )
    .expect("write");
    let out = bin()
        .env("CLERK_MOCK_SEED", &path)
        .arg("--print-seed")
        .output()
        .expect("runs");
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Nobody"), "{err}");
    let out = bin()
        .env("CLERK_MOCK_SEED", "/nonexistent/seed.json")
        .arg("--print-seed")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLERK_MOCK_SEED"));
}
