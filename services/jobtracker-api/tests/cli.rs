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
