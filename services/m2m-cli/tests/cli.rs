//! The `m2m` binary against clerk-mock.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use clerk_mock::ClerkMock;
use serde_json::Value;
use test_support::cli;

fn m2m(mock: &ClerkMock, env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m2m"));
    cmd.env_clear()
        .env("CLERK_API_BASE_URL", mock.api_url())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("m2m runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("output")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_verify_list_revoke() {
    let mock = ClerkMock::start_demo().await;
    let applier = mock.machine_by_name("JobApplier.Bot").expect("applier");
    let api = mock.machine_by_name("JobTracker.API").expect("api");
    let created = json(&m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", &applier.secret_key)],
        &[
            "token",
            "create",
            "--lifetime",
            "365d",
            "--claims",
            r#"{"purpose":"static"}"#,
            "--json",
        ],
        None,
    ));
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(created["subject"], applier.id);
    assert_eq!(
        created["expiration"].as_i64().expect("exp")
            - created["created_at"].as_i64().expect("created"),
        365 * 86_400 * 1000
    );

    // The token travels on stdin, not in arguments; the receiver's key verifies it.
    let verified = json(&m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", &api.secret_key)],
        &["token", "verify", "--json"],
        Some(&token),
    ));
    assert_eq!(verified["id"], created["id"]);
    let text = m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", &api.secret_key)],
        &["token", "verify"],
        Some(&token),
    );
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("valid: id mt_"));

    let listed = json(&m2m(
        &mock,
        &[("CLERK_SECRET_KEY", &mock.instance_secret_key())],
        &["token", "list", "--subject", &applier.id, "--json"],
        None,
    ));
    assert_eq!(listed["total_count"], 1);

    let id = created["id"].as_str().expect("id");
    let revoked = json(&m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", &applier.secret_key)],
        &["token", "revoke", id, "--reason", "rotated", "--json"],
        None,
    ));
    assert_eq!(revoked["revoked"], true);
    let after = m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", &api.secret_key)],
        &["token", "verify"],
        Some(&token),
    );
    assert!(!after.status.success());
    assert!(String::from_utf8_lossy(&after.stderr).contains("resource_not_found"));
    assert!(
        !String::from_utf8_lossy(&after.stderr).contains(&token),
        "the token is never echoed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_come_from_arguments_and_errors_are_clear() {
    let mock = ClerkMock::start_demo().await;
    let out = m2m(&mock, &[], &["token", "create"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("set CLERK_MACHINE_SECRET_KEY or pass --key-file")
    );
    let out = m2m(&mock, &[], &["token", "create", "--key", "ak_x"], None);
    assert!(!out.status.success(), "there is no --key flag");
    let out = m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", &mock.instance_secret_key())],
        &["token", "create"],
        None,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("instance secret key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", "ak_not_a_real_key")],
        &["token", "create"],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("clerk_key_invalid") && err.contains("check the key"),
        "{err}"
    );
    assert!(!err.contains("ak_not_a_real_key"));
    let out = m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", "ak_x")],
        &["token", "create", "--lifetime", "forever"],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid lifetime"));
    let out = m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", "ak_x")],
        &["token", "verify"],
        Some(""),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token"));

    let dir = std::env::temp_dir().join(format!("m2m-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key_file = dir.join("key");
    std::fs::write(
        &key_file,
        format!(
            "{}\n",
            mock.machine_by_name("JobApplier.Bot")
                .expect("m")
                .secret_key
        ),
    )
    .expect("write");
    let out = m2m(
        &mock,
        &[],
        &[
            "token",
            "create",
            "--key-file",
            key_file.to_str().expect("path"),
            "--json",
        ],
        None,
    );
    assert!(
        json(&out)["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("mt_"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_writes_the_env_lines_of_the_older_package() {
    let mock = ClerkMock::start_demo().await;
    let dir = std::env::temp_dir().join(format!("m2m-setup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("m2m.toml");
    let rep_key_file = dir.join("rep.key");
    std::fs::write(
        &rep_key_file,
        mock.machine_by_name("CandidateRepresenter.Bot")
            .expect("m")
            .secret_key,
    )
    .expect("write");
    std::fs::write(
        &config,
        format!(
            "[[services]]\nname = \"job-applier\"\nsecret_key_env = \"APPLIER_KEY\"\nlifetime = \"365d\"\n\n[[services]]\nname = \"candidate-representer\"\nsecret_key_file = \"{}\"\n",
            rep_key_file.display()
        ),
    )
    .expect("write");
    let applier = mock.machine_by_name("JobApplier.Bot").expect("applier");
    let target = dir.join(".env.m2m");
    let out = setup(&mock, &applier.secret_key, &config, &target);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(&target).expect("written");
    assert!(env.contains(&format!("CLERK_M2M_MACHINE_ID_JOB_APPLIER={}", applier.id)));
    assert!(
        env.lines()
            .any(|l| l.starts_with("CLERK_M2M_TOKEN_JOB_APPLIER=mt_"))
    );
    assert!(
        env.lines()
            .any(|l| l.starts_with("CLERK_M2M_TOKEN_CANDIDATE_REPRESENTER=mt_"))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&target)
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    // The written tokens are what the bots read (older package's operations).
    let tokens =
        m2m_core::config::ServiceTokens::from_vars(env.lines().filter_map(|l| l.split_once('=')))
            .expect("tokens");
    assert!(tokens.is_configured("job-applier"));
    assert_eq!(
        tokens.expected_machine_id("job-applier"),
        Some(applier.id.as_str())
    );
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[services]]\nname = \"x\"\nsecret_key_env = \"MISSING\"\n",
    )
    .expect("write");
    let out = m2m(
        &mock,
        &[],
        &["setup", "--config", bad.to_str().expect("p")],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("MISSING is not set"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `m2m setup --config config --write target`, the applier's key in `APPLIER_KEY`.
fn setup(
    mock: &ClerkMock,
    applier_key: &str,
    config: &std::path::Path,
    target: &std::path::Path,
) -> Output {
    m2m(
        mock,
        &[("APPLIER_KEY", applier_key)],
        &[
            "setup",
            "--config",
            config.to_str().expect("p"),
            "--write",
            target.to_str().expect("p"),
        ],
        None,
    )
}

/// The demo mock, a temporary folder holding `m2m.toml` for both bots (the applier's key read
/// from `APPLIER_KEY`, the representer's from a file), and the applier machine.
async fn two_bots() -> (
    ClerkMock,
    tempfile::TempDir,
    clerk_mock::MachineInfo,
    std::path::PathBuf,
) {
    let mock = ClerkMock::start_demo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rep = mock.machine_by_name("CandidateRepresenter.Bot").expect("m");
    let applier = mock.machine_by_name("JobApplier.Bot").expect("applier");
    let config = two_services(dir.path(), &rep.secret_key);
    (mock, dir, applier, config)
}

/// Writes `m2m.toml` for the two bots into `dir`; the representer's key comes from `rep_key`.
fn two_services(dir: &std::path::Path, rep_key: &str) -> std::path::PathBuf {
    let config = dir.join("m2m.toml");
    let key_file = dir.join("rep.key");
    write_mode(&key_file, rep_key, 0o600);
    std::fs::write(
        &config,
        format!(
            "[[services]]\nname = \"job-applier\"\nsecret_key_env = \"APPLIER_KEY\"\n\n[[services]]\nname = \"candidate-representer\"\nsecret_key_file = \"{}\"\n",
            key_file.display()
        ),
    )
    .expect("write");
    config
}

fn write_mode(path: &std::path::Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    #[cfg(not(unix))]
    let _ = mode;
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_replaces_its_own_lines_in_an_existing_file_and_leaves_it_owner_only() {
    let (mock, dir, applier, config) = two_bots().await;
    let target = dir.path().join(".env.m2m");
    write_mode(
        &target,
        "# kept\nDATABASE_URL=postgres://db\nCLERK_M2M_TOKEN_JOB_APPLIER=mt_stale\n",
        0o644,
    );
    let out = setup(&mock, &applier.secret_key, &config, &target);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode_of(&target), 0o600, "a 0644 file ends up 0600");
    let env = std::fs::read_to_string(&target).expect("read");
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(&lines[..2], &["# kept", "DATABASE_URL=postgres://db"]);
    assert!(!env.contains("mt_stale"));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("CLERK_M2M_TOKEN_JOB_APPLIER=mt_"))
            .count(),
        1
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("CLERK_M2M_TOKEN_CANDIDATE_REPRESENTER=mt_"))
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".m2m-setup-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left behind");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_refuses_a_symlink_before_creating_any_token() {
    let (mock, dir, applier, config) = two_bots().await;
    let elsewhere = dir.path().join("someone-elses-file");
    std::fs::write(&elsewhere, "theirs\n").expect("write");
    let link = dir.path().join(".env.m2m");
    std::os::unix::fs::symlink(&elsewhere, &link).expect("symlink");
    let out = setup(&mock, &applier.secret_key, &config, &link);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symbolic link"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&elsewhere).expect("read"),
        "theirs\n"
    );
    assert_eq!(
        mock.calls(clerk_mock::Endpoint::CreateToken),
        0,
        "no token was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_setup_revokes_the_tokens_it_created() {
    let mock = ClerkMock::start_demo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let applier = mock.machine_by_name("JobApplier.Bot").expect("applier");
    // The second service's key looks right but Clerk does not know it.
    let config = two_services(dir.path(), "ak_0000000000000000000000000000dead");
    let target = dir.path().join(".env.m2m");
    let out = setup(&mock, &applier.secret_key, &config, &target);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("candidate-representer"), "{stderr}");
    assert!(stderr.contains("revoked the 1 token(s)"), "{stderr}");
    assert!(!target.exists(), "nothing written");
    let ids = mock.token_ids(&applier.id);
    assert_eq!(ids.len(), 1, "the applier's token was created first");
    let listed = json(&m2m(
        &mock,
        &[("CLERK_MACHINE_SECRET_KEY", &applier.secret_key)],
        &[
            "token",
            "list",
            "--subject",
            &applier.id,
            "--revoked",
            "--json",
        ],
        None,
    ));
    let token = listed["m2m_tokens"]
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["id"] == ids[0].as_str())
        .cloned()
        .expect("listed");
    assert_eq!(token["revoked"], true, "{token}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_others_can_read_is_warned_about() {
    let mock = ClerkMock::start_demo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let applier = mock.machine_by_name("JobApplier.Bot").expect("applier");
    let key_file = dir.path().join("applier.key");
    write_mode(&key_file, &applier.secret_key, 0o644);
    let args = [
        "token",
        "create",
        "--key-file",
        key_file.to_str().expect("p"),
        "--json",
    ];
    let out = m2m(&mock, &[], &args, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&applier.secret_key),
        "the key is never printed"
    );
    write_mode(&key_file, &applier.secret_key, 0o600);
    let out = m2m(&mock, &[], &args, None);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

#[test]
fn help_lists_the_subcommands() {
    cli::assert_help_lists(
        env!("CARGO_BIN_EXE_m2m"),
        &[
            "token",
            "setup",
            "CLERK_MACHINE_SECRET_KEY",
            "CLERK_API_BASE_URL",
        ],
    );
    let token_help = cli::help(env!("CARGO_BIN_EXE_m2m"), &["token"]);
    for s in ["create", "verify", "revoke", "list"] {
        assert!(token_help.contains(s), "{s}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_with_a_secrets_dir_writes_one_private_file_per_token_and_names_it_in_env() {
    let (mock, dir, applier, config) = two_bots().await;
    let target = dir.path().join(".env");
    // An earlier run's inline token line must go: both set is an error at start.
    write_mode(
        &target,
        "OTHER=kept\nCLERK_M2M_TOKEN_JOB_APPLIER=mt_old_inline\n",
        0o644,
    );
    let secrets = dir.path().join("secrets");
    let out = m2m(
        &mock,
        &[("APPLIER_KEY", &applier.secret_key)],
        &[
            "setup",
            "--config",
            config.to_str().expect("p"),
            "--write",
            target.to_str().expect("p"),
            "--secrets-dir",
            secrets.to_str().expect("p"),
        ],
        None,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(mode_of(&secrets), 0o700);
    // Read-only files in an owner-only folder: a container's user reads its bind-mounted
    // secret, nobody else on the host gets past the folder.
    let applier_file = std::fs::canonicalize(&secrets)
        .expect("absolute")
        .join("clerk_m2m_token_job_applier");
    assert_eq!(mode_of(&applier_file), 0o444);
    assert_eq!(
        mode_of(&secrets.join("clerk_m2m_token_candidate_representer")),
        0o444
    );
    let token = std::fs::read_to_string(&applier_file).expect("token file");
    let token = token.trim();
    assert!(token.starts_with("mt_"), "a token, one line");
    let env = std::fs::read_to_string(&target).expect(".env");
    assert!(!env.contains(token) && !stdout.contains(token) && !stderr.contains(token));
    assert!(!env.contains("CLERK_M2M_TOKEN_JOB_APPLIER="), "{env}");
    assert!(env.starts_with("OTHER=kept\n"), "{env}");
    assert!(
        env.contains(&format!(
            "CLERK_M2M_TOKEN_JOB_APPLIER_FILE={}",
            applier_file.display()
        )),
        "{env}"
    );
    // What a bot or a sender reads back: the token itself, through the file.
    let tokens =
        m2m_core::config::ServiceTokens::from_vars(env.lines().filter_map(|l| l.split_once('=')))
            .expect("readable");
    assert_eq!(
        tokens.token_for("job-applier").expect("token").expose(),
        token
    );
    assert_eq!(
        mock.token_ids(&applier.id).len(),
        1,
        "one token, the file's"
    );

    // A folder that is a symbolic link is refused before any token is created.
    let calls = mock.calls(clerk_mock::Endpoint::CreateToken);
    let link = dir.path().join("linked-secrets");
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).expect("symlink");
    let out = m2m(
        &mock,
        &[("APPLIER_KEY", &applier.secret_key)],
        &[
            "setup",
            "--config",
            config.to_str().expect("p"),
            "--secrets-dir",
            link.to_str().expect("p"),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert_eq!(mock.calls(clerk_mock::Endpoint::CreateToken), calls);

    // Two names of one variable would create two tokens and keep one: refused first.
    let dup = dir.path().join("dup.toml");
    std::fs::write(
        &dup,
        "[[services]]\nname = \"job-applier\"\nsecret_key_env = \"APPLIER_KEY\"\n\n[[services]]\nname = \"job_applier\"\nsecret_key_env = \"APPLIER_KEY\"\n",
    )
    .expect("write");
    let out = m2m(
        &mock,
        &[("APPLIER_KEY", &applier.secret_key)],
        &["setup", "--config", dup.to_str().expect("p")],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("both map to CLERK_M2M_TOKEN_JOB_APPLIER"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mock.calls(clerk_mock::Endpoint::CreateToken), calls);
}
