//! The binary: `--help` documents every setting; bad settings stop it with one clear line.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_candidate-representer"));
    c.env_clear();
    c
}

#[test]
fn help_lists_every_variable() {
    let out = bin().arg("--help").output().expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
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
        "CLERK_JWT_KEY",
        "CLERK_JWKS_URL",
        "REPRESENTER_ALLOWED_MACHINE_IDS",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    for (var, value) in [
        ("CLERK_MACHINE_SECRET_KEY", "sk_live_wrong_kind"),
        ("M2M_TOKEN_FORMAT", "paseto"),
        ("JOBTRACKER_API_URL", "localhost"),
        ("REPRESENTER_ALLOWED_MACHINE_IDS", "user_not_a_machine"),
    ] {
        let mut cmd = bin();
        if var != "CLERK_MACHINE_SECRET_KEY" {
            cmd.env("CLERK_MACHINE_SECRET_KEY", "ak_valid_looking_key");
        }
        let out = cmd.env(var, value).output().expect("runs");
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.lines().last().unwrap_or_default().contains(var),
            "{var}: {err}"
        );
        assert!(
            !err.contains("sk_live_wrong_kind"),
            "the secret was echoed: {err}"
        );
    }
    let out = bin().output().expect("runs");
    assert!(!out.status.success(), "no key and no token must not start");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLERK_MACHINE_SECRET_KEY"));
}
