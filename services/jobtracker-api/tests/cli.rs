//! The binary: `--help` documents every setting; bad settings stop it with one clear line.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobtracker-api"));
    c.env_clear();
    c
}

#[test]
fn help_lists_every_variable() {
    let out = bin().arg("--help").output().expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "JOBTRACKER_BIND",
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
        "CLERK_JWKS_CACHE_TTL_SECONDS",
        "CANDIDATE_REPRESENTER_MACHINE_ID",
        "JOB_APPLIER_MACHINE_ID",
        "RESUME_MAX_BYTES",
        "RUST_LOG",
        "LOG_FORMAT",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    for (var, value) in [
        ("CLERK_MACHINE_SECRET_KEY", "sk_test_wrong_kind"),
        ("CLERK_JWKS_URL", "not-a-url"),
        ("JOB_APPLIER_MACHINE_ID", "user_123"),
        ("M2M_VERIFY_MISS_BURST", "0"),
        ("M2M_VERIFY_MISS_PER_SECOND", "0"),
        ("CLERK_JWKS_CACHE_TTL_SECONDS", "0"),
        ("CLERK_AUTHORIZED_PARTIES", "https://app.example.com/"),
    ] {
        let out = bin()
            .env("CLERK_SECRET_KEY", "sk_test_x")
            .env("JOBTRACKER_BIND", "127.0.0.1:0")
            .env(var, value)
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        assert!(last.contains(var), "{var}: {err}");
        assert!(
            !err.contains("sk_test_wrong_kind"),
            "the secret was echoed: {err}"
        );
    }
    let out = bin()
        .env("JOBTRACKER_BIND", "127.0.0.1:0")
        .output()
        .expect("runs");
    assert!(!out.status.success(), "no Clerk key at all must not start");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLERK_MACHINE_SECRET_KEY"));
}
