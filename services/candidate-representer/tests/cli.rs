//! The binary: `--help` documents every setting; bad settings stop it with one clear line.

use test_support::cli;

const BIN: &str = env!("CARGO_BIN_EXE_candidate-representer");

#[test]
fn help_lists_every_variable() {
    cli::assert_help_lists(
        BIN,
        &[
            "JOBTRACKER_API_URL",
            "CLERK_API_BASE_URL",
            "CLERK_MACHINE_SECRET_KEY",
            "CLERK_M2M_TOKEN",
            "ENABLE_M2M_AUTH",
            "M2M_TOKEN_LIFETIME_SECONDS",
            "M2M_TOKEN_REFRESH_BUFFER_SECONDS",
            "M2M_TOKEN_FORMAT",
            "POLL_INTERVAL_SECONDS",
            "RUST_LOG",
            "LOG_FORMAT",
            "REPRESENTER_BIND",
            "METRICS_BIND",
            "CLERK_JWT_KEY",
            "CLERK_JWKS_URL",
            "REPRESENTER_ALLOWED_MACHINE_IDS",
        ],
    );
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    for (var, value) in [
        ("CLERK_MACHINE_SECRET_KEY", "sk_live_wrong_kind"),
        ("M2M_TOKEN_FORMAT", "paseto"),
        ("JOBTRACKER_API_URL", "localhost"),
        ("REPRESENTER_ALLOWED_MACHINE_IDS", "user_not_a_machine"),
    ] {
        let mut cmd = cli::bin(BIN);
        if var != "CLERK_MACHINE_SECRET_KEY" {
            cmd.env("CLERK_MACHINE_SECRET_KEY", "ak_valid_looking_key");
        }
        cli::assert_refused(cmd, var, value, "sk_live_wrong_kind");
    }
    cli::assert_fails_mentioning(
        cli::bin(BIN),
        "CLERK_MACHINE_SECRET_KEY",
        "no key and no token must not start",
    );
}
