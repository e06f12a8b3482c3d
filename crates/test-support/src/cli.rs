//! The `tests/cli.rs` checks every service binary makes: `--help` documents every setting, and a
//! bad setting stops start-up with one line naming it, never echoing a secret.
//!
//! Cargo gives a binary's path to its own package's tests only, as `env!("CARGO_BIN_EXE_<name>")`;
//! the helpers take that path.

use std::process::Command;

/// The binary at `path`, with an empty environment: only what the test sets is seen.
pub fn bin(path: &str) -> Command {
    let mut c = Command::new(path);
    c.env_clear();
    c
}

/// What `path args… --help` prints.
pub fn help(path: &str, args: &[&str]) -> String {
    let out = bin(path).args(args).arg("--help").output().expect("runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `path --help` names every one of `vars`.
pub fn assert_help_lists(path: &str, vars: &[&str]) {
    let help = help(path, &[]);
    for var in vars {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

/// `cmd` with `var=value` does not start; the last line of its stderr names `var`, and `secret`
/// appears nowhere in it.
pub fn assert_refused(mut cmd: Command, var: &str, value: &str, secret: &str) {
    let out = cmd.env(var, value).output().expect("runs");
    assert!(!out.status.success(), "{var}={value} was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().last().unwrap_or_default().contains(var),
        "{var}: {err}"
    );
    assert!(!err.contains(secret), "the secret was echoed: {err}");
}

/// `cmd` does not start (`why` says why it must not) and its stderr mentions `needle`.
pub fn assert_fails_mentioning(mut cmd: Command, needle: &str, why: &str) {
    let out = cmd.output().expect("runs");
    assert!(!out.status.success(), "{why}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(needle));
}
