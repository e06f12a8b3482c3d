//! `m2m plan`, `apply` and `rotate` against clerk-mock, with the repository's own declaration
//! (deploy/m2m.toml).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use clerk_mock::{ClerkMock, Endpoint};

const EXAMPLE: &str = include_str!("../../../deploy/m2m.toml");

/// Every call that changes something at Clerk.
const WRITES: [Endpoint; 6] = [
    Endpoint::CreateMachine,
    Endpoint::UpdateMachine,
    Endpoint::DeleteMachine,
    Endpoint::RotateMachineSecretKey,
    Endpoint::CreateMachineScope,
    Endpoint::DeleteMachineScope,
];

fn writes(mock: &ClerkMock) -> u64 {
    WRITES.iter().map(|e| mock.calls(*e)).sum()
}

struct Fixture {
    mock: ClerkMock,
    dir: tempfile::TempDir,
    file: PathBuf,
    /// Everything the binary printed, to grep for keys.
    printed: std::cell::RefCell<String>,
}

impl Fixture {
    async fn new(mock: ClerkMock) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("m2m.toml");
        let f = Self {
            mock,
            dir,
            file,
            printed: Default::default(),
        };
        f.declare(EXAMPLE);
        f
    }

    /// Writes `text` as the declaration, its outputs inside the temporary folder.
    fn declare(&self, text: &str) {
        let text = text
            .replace("\"../secrets/m2m\"", "\"secrets\"")
            .replace("\"../secrets/env\"", "\"env\"");
        std::fs::write(&self.file, text).expect("write declaration");
    }

    fn m2m(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_m2m"));
        cmd.env_clear()
            .env("CLERK_API_BASE_URL", self.mock.api_url())
            .env("CLERK_SECRET_KEY", self.mock.instance_secret_key())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("m2m runs");
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes());
        let out = child.wait_with_output().expect("output");
        let mut printed = self.printed.borrow_mut();
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    fn run(&self, cmd: &str, extra: &[&str]) -> Output {
        let file = self.file.to_str().expect("utf-8 path");
        let mut args = vec![cmd, "-f", file];
        args.extend(extra);
        self.m2m(&args, "")
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn env(&self, service: &str) -> String {
        std::fs::read_to_string(self.path(&format!("env/{service}.env"))).expect("env file")
    }

    /// No key the mock ever issued (current or rotated out) nor the instance key was printed.
    fn assert_no_key_printed(&self, keys: &[String]) {
        let printed = self.printed.borrow();
        for k in keys
            .iter()
            .cloned()
            .chain(self.mock.machines().into_iter().map(|m| m.secret_key))
            .chain([self.mock.instance_secret_key()])
        {
            assert!(!printed.contains(&k), "a key was printed");
        }
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_from_empty_builds_the_seed_graph_and_a_second_apply_writes_nothing() {
    let f = Fixture::new(ClerkMock::start().await).await;

    let plan = f.run("plan", &[]);
    assert_eq!(code(&plan), 2, "{}", stderr(&plan));
    assert!(stdout(&plan).contains("+ machine JobTracker.API"));
    assert_eq!(writes(&f.mock), 0, "plan changes nothing");

    let apply = f.run("apply", &[]);
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    let api = f.mock.machine_by_name("JobTracker.API").expect("api");
    let rep = f
        .mock
        .machine_by_name("CandidateRepresenter.Bot")
        .expect("rep");
    let app = f.mock.machine_by_name("JobApplier.Bot").expect("applier");
    assert_eq!(rep.scoped_machines, [api.id.as_str()]);
    assert_eq!(app.scoped_machines, [api.id.as_str()]);
    assert!(api.scoped_machines.is_empty());
    assert_eq!(api.default_token_ttl, 3600);

    for (service, m) in [
        ("jobtracker-api", &api),
        ("candidate-representer", &rep),
        ("job-applier", &app),
    ] {
        let key_file = f.path(&format!("secrets/{service}.key"));
        assert_eq!(
            std::fs::read_to_string(&key_file).expect("key").trim(),
            m.secret_key
        );
        #[cfg(unix)]
        assert_eq!(mode(&key_file), 0o444);
        let env = f.env(service);
        assert!(
            env.contains(&format!("CLERK_MACHINE_ID={}\n", m.id)),
            "{env}"
        );
        assert!(env.contains("CLERK_MACHINE_SECRET_KEY_FILE=/"), "{env}");
        assert!(!env.contains("ak_"), "no key in an env file: {env}");
    }
    #[cfg(unix)]
    assert_eq!(mode(&f.path("secrets")), 0o700);
    let api_env = f.env("jobtracker-api");
    assert!(api_env.contains(&format!("CANDIDATE_REPRESENTER_MACHINE_ID={}\n", rep.id)));
    assert!(api_env.contains(&format!("JOB_APPLIER_MACHINE_ID={}\n", app.id)));
    assert!(
        !f.env("candidate-representer")
            .contains("REPRESENTER_ALLOWED_MACHINE_IDS")
    );

    let before = writes(&f.mock);
    let again = f.run("apply", &[]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(stdout(&again).contains("No changes"), "{}", stdout(&again));
    assert_eq!(
        writes(&f.mock),
        before,
        "a second apply makes no writing call"
    );
    assert_eq!(f.mock.machines().len(), 3);
    let plan = f.run("plan", &["--json"]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("json");
    assert_eq!(json["pending"], false);
    f.assert_no_key_printed(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_edge_asks_first_then_removes_the_scope_and_the_role() {
    let f = Fixture::new(ClerkMock::start().await).await;
    assert_eq!(code(&f.run("apply", &[])), 0);
    let api = f.mock.machine_by_name("JobTracker.API").expect("api");
    let without = EXAMPLE.replace(
        "[[edges]]\ncaller = \"job-applier\"\nreceiver = \"jobtracker-api\"\nrole = \"job_applier\"\n",
        "",
    );
    assert_ne!(without, EXAMPLE);
    f.declare(&without);
    // Tokens minted before: the applier's (scoped to the API) and the representer's.
    let app = f.mock.machine_by_name("JobApplier.Bot").expect("applier");
    let rep = f
        .mock
        .machine_by_name("CandidateRepresenter.Bot")
        .expect("rep");
    let held = f.mock.mint(&app.id, &serde_json::json!({}))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let other = f.mock.mint(&rep.id, &serde_json::json!({}))["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let verify = |token: String| {
        let (url, key) = (f.mock.api_url(), api.secret_key.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{url}/m2m_tokens/verify"))
                .bearer_auth(key)
                .json(&serde_json::json!({ "token": token }))
                .send()
                .await
                .expect("mock")
                .status()
                .as_u16()
        }
    };
    assert_eq!(verify(held.clone()).await, 200);

    let plan = f.run("plan", &[]);
    assert_eq!(code(&plan), 2);
    assert!(
        stdout(&plan).contains("- scope JobApplier.Bot"),
        "{}",
        stdout(&plan)
    );

    let file = f.file.to_str().expect("utf-8");
    let refused = f.m2m(&["apply", "-f", file], "no\n");
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("not confirmed"),
        "{}",
        stderr(&refused)
    );
    let app = f.mock.machine_by_name("JobApplier.Bot").expect("applier");
    assert_eq!(app.scoped_machines, [api.id.as_str()], "nothing changed");
    assert_eq!(f.mock.calls(Endpoint::RevokeToken), 0, "nothing revoked");

    let confirmed = f.m2m(&["apply", "-f", file], "yes\n");
    assert_eq!(code(&confirmed), 0, "{}", stderr(&confirmed));
    let app = f.mock.machine_by_name("JobApplier.Bot").expect("applier");
    assert!(app.scoped_machines.is_empty());
    assert!(!f.env("jobtracker-api").contains("JOB_APPLIER_MACHINE_ID"));
    assert!(
        stdout(&confirmed).contains("revoked 1 live token(s) of JobApplier.Bot"),
        "{}",
        stdout(&confirmed)
    );
    // Clerk keeps a token's scopes from its minting: the one the applier held is revoked, so
    // the API refuses it once its verification cache lapses; other callers' tokens are kept.
    assert_eq!(verify(held).await, 404, "revoked");
    assert_eq!(verify(other).await, 200);
    // Its next token is not valid for the API.
    let minted = f.mock.mint(&app.id, &serde_json::json!({}));
    assert!(
        !minted["scopes"]
            .as_array()
            .expect("scopes")
            .iter()
            .any(|s| s == api.id.as_str()),
        "{minted}"
    );
    f.assert_no_key_printed(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unnamed_machines_are_kept_unless_pruned_and_two_of_one_name_is_an_error() {
    let f = Fixture::new(ClerkMock::start().await).await;
    let stray = f.mock.create_machine("Stray.Bot", &[]);
    assert_eq!(code(&f.run("apply", &[])), 0);
    assert!(f.mock.machine(&stray.id).is_some(), "kept without --prune");
    let prune = f.run("apply", &["--prune", "--yes"]);
    assert_eq!(code(&prune), 0, "{}", stderr(&prune));
    assert!(f.mock.machine(&stray.id).is_none(), "--prune deleted it");

    let api = f.mock.machine_by_name("JobTracker.API").expect("api");
    let twin = f.mock.create_machine("JobTracker.API", &[]);
    let plan = f.run("plan", &[]);
    assert_eq!(code(&plan), 1);
    let err = stderr(&plan);
    assert!(err.contains(&twin.id) && err.contains(&api.id), "{err}");
    f.assert_no_key_printed(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_writes_the_new_key_and_the_old_one_ends_after_the_grace() {
    let f = Fixture::new(ClerkMock::start().await).await;
    assert_eq!(code(&f.run("apply", &[])), 0);
    let old = f
        .mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .secret_key;
    let rotated = f.run("rotate", &["job-applier", "--grace", "0s"]);
    assert_eq!(code(&rotated), 0, "{}", stderr(&rotated));
    let new = f
        .mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .secret_key;
    assert_ne!(new, old);
    assert_eq!(
        std::fs::read_to_string(f.path("secrets/job-applier.key"))
            .expect("key")
            .trim(),
        new
    );
    let mint = |key: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_m2m"));
        cmd.env_clear()
            .env("CLERK_API_BASE_URL", f.mock.api_url())
            .env("CLERK_MACHINE_SECRET_KEY", key)
            .args(["token", "create", "--json"])
            .output()
            .expect("runs")
    };
    assert!(!mint(&old).status.success(), "the old key is refused");
    assert!(mint(&new).status.success(), "the new key works");
    let too_long = f.run("rotate", &["job-applier", "--grace", "9h"]);
    assert_eq!(code(&too_long), 1);
    f.assert_no_key_printed(&[old]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_text_urls_and_machine_keys_are_refused() {
    let f = Fixture::new(ClerkMock::start().await).await;
    let file = f.file.to_str().expect("utf-8");
    let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .env_clear()
        .env("CLERK_API_BASE_URL", "http://clerk.example.com/v1")
        .env("CLERK_SECRET_KEY", f.mock.instance_secret_key())
        .args(["plan", "-f", file])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("--insecure"), "{}", stderr(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .env_clear()
        .env("CLERK_API_BASE_URL", f.mock.api_url())
        .env("CLERK_SECRET_KEY", "ak_not_an_instance_key")
        .args(["plan", "-f", file])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 1);
    assert!(!stderr(&out).contains("ak_not_an_instance_key"));
    assert_eq!(f.mock.total_requests(), 0, "nothing was sent");
}
