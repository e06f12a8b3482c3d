//! The binary: `--help` documents every setting; bad settings stop it with one clear line.

use test_support::cli;

const BIN: &str = env!("CARGO_BIN_EXE_jobtracker-api");

#[test]
fn help_lists_every_variable() {
    cli::assert_help_lists(
        BIN,
        &[
            "JOBTRACKER_BIND",
            "METRICS_BIND",
            "DATABASE_URL",
            "CLERK_API_BASE_URL",
            "CLERK_MACHINE_SECRET_KEY",
            "CLERK_SECRET_KEY",
            "CLERK_JWT_KEY",
            "CLERK_JWKS_URL",
            "CLERK_AUTHORIZED_PARTIES",
            "CLERK_ISSUER",
            "M2M_VERIFY_CACHE_TTL_SECONDS",
            "M2M_VERIFY_MISS_BURST",
            "M2M_VERIFY_MISS_PER_SECOND",
            "M2M_VERIFY_MISS_PER_CLIENT_BURST",
            "M2M_VERIFY_MISS_PER_CLIENT_PER_SECOND",
            "M2M_VERIFY_TRUSTED_PROXIES",
            "CLERK_JWKS_CACHE_TTL_SECONDS",
            "CLERK_JWT_CACHE_MAX_ENTRIES",
            "CLERK_JWT_CACHE_MAX_MIB",
            "CANDIDATE_REPRESENTER_MACHINE_ID",
            "JOB_APPLIER_MACHINE_ID",
            "RESUME_MAX_BYTES",
            "RESUME_MAX_FILES",
            "RESUME_QUOTA_BYTES",
            "RUST_LOG",
            "LOG_FORMAT",
        ],
    );
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    for (var, value) in [
        ("CLERK_MACHINE_SECRET_KEY", "sk_test_wrong_kind"),
        ("CLERK_JWKS_URL", "not-a-url"),
        ("JOB_APPLIER_MACHINE_ID", "user_123"),
        ("M2M_VERIFY_MISS_BURST", "0"),
        ("M2M_VERIFY_MISS_PER_SECOND", "0"),
        ("M2M_VERIFY_MISS_PER_CLIENT_BURST", "0"),
        ("M2M_VERIFY_TRUSTED_PROXIES", "10.0.0.0/99"),
        ("CLERK_JWKS_CACHE_TTL_SECONDS", "0"),
        ("CLERK_JWT_CACHE_MAX_MIB", "0"),
        ("CLERK_AUTHORIZED_PARTIES", "https://app.example.com/"),
        ("RESUME_MAX_FILES", "0"),
        ("RESUME_QUOTA_BYTES", "0"),
    ] {
        let mut cmd = cli::bin(BIN);
        cmd.env("CLERK_SECRET_KEY", "sk_test_x")
            .env("JOBTRACKER_BIND", "127.0.0.1:0");
        cli::assert_refused(cmd, var, value, "sk_test_wrong_kind");
    }
    let mut cmd = cli::bin(BIN);
    cmd.env("JOBTRACKER_BIND", "127.0.0.1:0");
    cli::assert_fails_mentioning(
        cmd,
        "CLERK_MACHINE_SECRET_KEY",
        "no Clerk key at all must not start",
    );
}

/// The last line `cmd` writes to stderr, having failed to start.
fn refusal(mut cmd: std::process::Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(!out.status.success(), "it started");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    err.lines().last().unwrap_or_default().to_owned()
}

#[test]
fn with_no_key_it_says_that_any_one_of_them_is_enough() {
    let mut cmd = cli::bin(BIN);
    cmd.env("JOBTRACKER_BIND", "127.0.0.1:0");
    let line = refusal(cmd);
    assert!(line.contains("set one of"), "{line}");
    for var in [
        "CLERK_MACHINE_SECRET_KEY",
        "CLERK_SECRET_KEY",
        "CLERK_JWT_KEY",
        "CLERK_JWKS_URL",
    ] {
        assert!(line.contains(var), "{var} not in: {line}");
    }
}

#[test]
fn a_machine_key_alone_is_enough_to_start() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = cli::bin(BIN)
        .env("JOBTRACKER_BIND", "127.0.0.1:0")
        .env("CLERK_MACHINE_SECRET_KEY", "ak_test_only_a_machine_key")
        // Nothing is called at start with only a machine key; were it, it would fail here.
        .env("CLERK_API_BASE_URL", "http://127.0.0.1:9/v1")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("api.db").display()),
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let mut seen = Vec::new();
    for line in BufReader::new(child.stderr.take().expect("stderr")).lines() {
        let line = line.expect("stderr");
        let listening = line.contains("jobtracker-api listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("jobtracker-api listening")),
        "it did not start:\n{}",
        seen.join("\n")
    );
}

#[test]
fn a_missing_sqlite_file_without_mode_rwc_names_the_variable_the_path_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("absent.db");
    let mut cmd = cli::bin(BIN);
    cmd.env("JOBTRACKER_BIND", "127.0.0.1:0")
        .env("CLERK_SECRET_KEY", "sk_test_x")
        .env("CLERK_API_BASE_URL", "http://127.0.0.1:9/v1")
        .env("DATABASE_URL", format!("sqlite://{}", file.display()));
    let line = refusal(cmd);
    for needle in ["DATABASE_URL", &file.display().to_string(), "?mode=rwc"] {
        assert!(line.contains(needle), "{needle:?} not in: {line}");
    }
    assert!(!file.exists(), "nothing is created without mode=rwc");
}
