//! The service graph as code (#28), end to end: `m2m apply` on an empty Clerk instance writes the
//! keys and env files the services start from; a second apply writes nothing; removing an edge
//! refuses the caller's next token; rotating each bot's key while the pipeline runs loses no
//! request; and the mock's seed and compose's demo secrets are the declaration's.
//!
//! Scenarios that touch the database run on SQLite and, when TEST_POSTGRES_URL is set, on
//! Postgres (else those show as ignored).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_runtime::Bot;
use candidate_representer::Representer;
use clap::Parser;
use clerk_mock::{ClerkMock, Endpoint, Seed};
use e2e::{Running, Stack, both};
use job_applier::Applier;
use jobtracker_api_testing::Backend;
use m2m_cli::graph::Declaration;
use secrecy::ExposeSecret;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Endpoints that change Clerk's machines: a second `apply` must call none of them.
const WRITES: [Endpoint; 6] = [
    Endpoint::CreateMachine,
    Endpoint::UpdateMachine,
    Endpoint::DeleteMachine,
    Endpoint::CreateMachineScope,
    Endpoint::DeleteMachineScope,
    Endpoint::RotateMachineSecretKey,
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A new Clerk instance: the demo instance and users, no machine.
async fn empty_instance() -> ClerkMock {
    let mock = ClerkMock::start_with(Seed {
        machines: Vec::new(),
        ..Seed::demo()
    })
    .await;
    assert!(mock.machines().is_empty());
    mock
}

/// A copy of `deploy/m2m.toml` (after `edit`) in `<tmp>/deploy/`, so its outputs land in
/// `<tmp>/secrets/` as the repository's land in `./secrets/`.
struct Graph {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Graph {
    fn copy(edit: impl FnOnce(String) -> String) -> Self {
        let text = std::fs::read_to_string(repo().join("deploy/m2m.toml")).expect("declaration");
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("deploy")).expect("mkdir");
        let file = dir.path().join("deploy/m2m.toml");
        std::fs::write(&file, edit(text)).expect("write");
        Self { dir, file }
    }

    fn rewrite(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.file).expect("declaration");
        std::fs::write(&self.file, edit(text)).expect("write");
    }

    fn key_file(&self, service: &str) -> PathBuf {
        self.dir.path().join(format!("secrets/m2m/{service}.key"))
    }

    fn key(&self, service: &str) -> String {
        std::fs::read_to_string(self.key_file(service))
            .expect("key file")
            .trim()
            .to_owned()
    }

    /// The env file apply wrote for `service`, as the variables the service gets.
    fn env(&self, service: &str) -> BTreeMap<&'static str, String> {
        let path = self.dir.path().join(format!("secrets/env/{service}.env"));
        let text = std::fs::read_to_string(&path).expect("env file");
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (&*k.trim().to_owned().leak(), v.trim().to_owned()))
            .collect()
    }

    /// `m2m <args> -f <file>` against `mock`, as the binary runs it (the instance key from the
    /// environment).
    async fn m2m(&self, mock: &ClerkMock, args: &[&str]) -> Result<m2m_cli::Report, String> {
        let file = self.file.display().to_string();
        let api = mock.api_url();
        let mut argv = vec!["m2m"];
        argv.extend_from_slice(args);
        argv.extend(["-f", &file, "--api-url", &api]);
        let cli = m2m_cli::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let sk = mock.instance_secret_key();
        let lookup = move |k: &str| (k == "CLERK_SECRET_KEY").then(|| sk.clone());
        let out = m2m_cli::run(cli, &lookup, &mut std::io::empty())
            .await
            .map_err(|e| e.to_string())?;
        // Output names ids, never a key the mock issued.
        for m in mock.machines() {
            assert!(!out.text.contains(&m.secret_key), "{}", out.text);
        }
        Ok(out)
    }
}

fn writes(mock: &ClerkMock) -> Vec<u64> {
    WRITES.iter().map(|e| mock.calls(*e)).collect()
}

/// Starts the API from the env file apply wrote (plus what no declaration says: addresses, the
/// database, how users' session tokens are verified, and `extra`).
async fn stack(
    backend: Backend,
    mock: ClerkMock,
    graph: &Graph,
    extra: &[(&'static str, &str)],
) -> Option<Stack> {
    let jwks = mock.jwks_url();
    let party = mock.authorized_party();
    let mut vars = graph.env("jobtracker-api");
    Stack::start_on(backend, mock, move |c| {
        vars.insert("DATABASE_URL", c.database_url.expose_secret().to_owned());
        vars.insert("JOBTRACKER_BIND", "127.0.0.1:0".into());
        vars.insert("METRICS_BIND", "127.0.0.1:0".into());
        vars.insert("CLERK_JWKS_URL", jwks);
        vars.insert("CLERK_AUTHORIZED_PARTIES", party);
        for &(k, v) in extra {
            vars.insert(k, v.to_owned());
        }
        assert!(
            !vars.contains_key("CLERK_MACHINE_SECRET_KEY"),
            "the key comes from its file"
        );
        *c = devstack::config_from_env("jobtracker-api", &vars).expect("the API's settings");
    })
    .await
}

/// Both bots from their env files (plus addresses and `extra`).
fn bots(
    stack: &Stack,
    graph: &Graph,
    extra: &[(&'static str, &str)],
) -> (Arc<Representer>, Arc<Applier>) {
    let common = |service: &str| {
        let mut vars = graph.env(service);
        vars.insert("JOBTRACKER_API_URL", stack.api.clone());
        vars.insert("METRICS_BIND", "127.0.0.1:0".into());
        vars.insert("POLL_INTERVAL_SECONDS", "1".into());
        for &(k, v) in extra {
            vars.insert(k, v.to_owned());
        }
        vars
    };
    let mut rep = common("candidate-representer");
    rep.insert("REPRESENTER_BIND", "127.0.0.1:0".into());
    let mut app = common("job-applier");
    app.insert("APPLIER_BIND", "127.0.0.1:0".into());
    app.insert("APPLIER_OUTBOX_DIR", stack.outbox.display().to_string());
    let rep: candidate_representer::Config =
        devstack::config_from_env("candidate-representer", &rep).expect("representer settings");
    let app: job_applier::Config =
        devstack::config_from_env("job-applier", &app).expect("applier settings");
    (
        Arc::new(Representer::from_config(&rep).expect("representer")),
        Arc::new(Applier::from_config(&app).expect("applier")),
    )
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Mints a token with `key` at the mock, as a bot does.
async fn mint(mock: &ClerkMock, key: &str) -> (u16, String) {
    let resp = http()
        .post(format!("{}/m2m_tokens", mock.api_url()))
        .bearer_auth(key)
        .json(&json!({ "seconds_until_expiration": 600 }))
        .send()
        .await
        .expect("mock reachable");
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    (
        status,
        body["token"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn whoami(stack: &Stack, token: &str) -> u16 {
    stack
        .call(reqwest::Method::GET, "/api/whoami", token, None)
        .await
        .0
}

/// Responses of the API by status class, from its `/metrics`.
async fn api_failures(stack: &Stack) -> Vec<String> {
    let text = http()
        .get(format!("{}/metrics", stack.api_metrics))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter(|l| {
            ["status=\"401\"", "status=\"403\"", "status=\"5"]
                .iter()
                .any(|s| l.contains(s))
        })
        .filter(|l| !l.ends_with(" 0"))
        .map(str::to_owned)
        .collect()
}

async fn apply_on_an_empty_instance_runs_the_pipeline_and_a_second_apply_writes_nothing(
    backend: Backend,
) {
    let mock = empty_instance().await;
    let graph = Graph::copy(|t| t);
    let out = graph.m2m(&mock, &["apply"]).await.expect("apply");
    assert_eq!(mock.calls(Endpoint::CreateMachine), 3, "{}", out.text);
    assert_eq!(mock.calls(Endpoint::CreateMachineScope), 2, "{}", out.text);
    for (service, name) in [
        ("jobtracker-api", "JobTracker.API"),
        ("candidate-representer", "CandidateRepresenter.Bot"),
        ("job-applier", "JobApplier.Bot"),
    ] {
        let m = mock.machine_by_name(name).expect("created");
        assert_eq!(graph.key(service), m.secret_key, "{service}'s key file");
        assert_eq!(graph.env(service)["CLERK_MACHINE_ID"], m.id);
    }
    let Some(stack) = stack(backend, mock, &graph, &[]).await else {
        return;
    };
    let alice = stack.alice.clone();
    let id = stack
        .new_application(&alice, &["Will you require visa sponsorship?"])
        .await;
    let (rep, applier) = bots(&stack, &graph, &[]);
    let running = Running::start(std::slice::from_ref(&rep), std::slice::from_ref(&applier));
    assert!(
        stack
            .wait_for_status(&alice, std::slice::from_ref(&id), "submitted", WAIT)
            .await,
        "the stack started from apply's files takes an application to submitted"
    );
    running.stop().await;

    let before = writes(&stack.mock);
    let again = graph
        .m2m(&stack.mock, &["apply"])
        .await
        .expect("apply again");
    assert!(again.text.starts_with("No changes"), "{}", again.text);
    assert_eq!(
        writes(&stack.mock),
        before,
        "no writing call: {}",
        again.text
    );
    assert_eq!(
        stack.mock.calls(Endpoint::GetMachineSecretKey),
        0,
        "the keys were on disk"
    );
    let plan = graph.m2m(&stack.mock, &["plan"]).await.expect("plan");
    assert!(!plan.pending, "{}", plan.text);
}
both!(apply_on_an_empty_instance_runs_the_pipeline_and_a_second_apply_writes_nothing);

async fn removing_an_edge_refuses_the_callers_next_token(backend: Backend) {
    let mock = empty_instance().await;
    let graph = Graph::copy(|t| t);
    graph.m2m(&mock, &["apply"]).await.expect("apply");
    // A short verification cache, so its lapse is seen within the test.
    let ttl = [("M2M_VERIFY_CACHE_TTL_SECONDS", "2")];
    let Some(stack) = stack(backend, mock, &graph, &ttl).await else {
        return;
    };
    let key = graph.key("job-applier");
    let (status, held) = mint(&stack.mock, &key).await;
    assert_eq!(status, 201);
    assert_eq!(whoami(&stack, &held).await, 200, "the edge exists");

    let edge = "[[edges]]\ncaller = \"job-applier\"\nreceiver = \"jobtracker-api\"\nrole = \"job_applier\"\n";
    graph.rewrite(|t| {
        assert!(t.contains(edge), "the declaration's applier edge");
        t.replace(edge, "")
    });
    let plan = graph.m2m(&stack.mock, &["plan"]).await.expect("plan");
    assert!(
        plan.pending && plan.text.contains("JobApplier.Bot"),
        "{}",
        plan.text
    );
    // Taking access away asks first: refused without --yes (nothing to read on stdin).
    let refused = graph.m2m(&stack.mock, &["apply"]).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(stack.mock.calls(Endpoint::DeleteMachineScope), 0);
    let out = graph
        .m2m(&stack.mock, &["apply", "--yes"])
        .await
        .expect("apply");
    assert_eq!(
        stack.mock.calls(Endpoint::DeleteMachineScope),
        1,
        "{}",
        out.text
    );
    assert!(
        !graph
            .env("jobtracker-api")
            .contains_key("JOB_APPLIER_MACHINE_ID"),
        "the role is gone from the API's env file"
    );

    let (status, next) = mint(&stack.mock, &key).await;
    assert_eq!(status, 201, "the applier can still mint");
    assert_eq!(
        whoami(&stack, &next).await,
        401,
        "its next token is not valid at the API"
    );
    // The token it already held keeps its scopes at Clerk (snapshotted at minting), so apply
    // revoked it: refused once the API's cache entry for it lapses (docs/verification.md,
    // "Taking access away").
    assert!(out.text.contains("revoked 1 live token(s)"), "{}", out.text);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(whoami(&stack, &held).await, 401);
}
both!(removing_an_edge_refuses_the_callers_next_token);

async fn rotating_each_bots_key_while_the_pipeline_runs_loses_no_request(backend: Backend) {
    const GRACE_SECS: u64 = 5;
    let mock = empty_instance().await;
    let graph = Graph::copy(|t| t);
    graph.m2m(&mock, &["apply"]).await.expect("apply");
    let Some(stack) = stack(backend, mock, &graph, &[]).await else {
        return;
    };
    // Tokens of 4 s, refreshed 2 s before they end: the bots mint every ~2 s, so they need
    // their keys throughout.
    let short = [
        ("M2M_TOKEN_LIFETIME_SECONDS", "4"),
        ("M2M_TOKEN_REFRESH_BUFFER_SECONDS", "2"),
    ];
    let (rep, applier) = bots(&stack, &graph, &short);
    let running = Running::start(std::slice::from_ref(&rep), std::slice::from_ref(&applier));
    let alice = stack.alice.clone();
    let mut ids = vec![
        stack
            .new_application(&alice, &["Will you require visa sponsorship?"])
            .await,
    ];
    let old: Vec<(&str, String)> = ["candidate-representer", "job-applier"]
        .into_iter()
        .map(|s| (s, graph.key(s)))
        .collect();
    let grace = format!("{GRACE_SECS}s");
    let rotated_at = Instant::now();
    for (service, old_key) in &old {
        let out = graph
            .m2m(&stack.mock, &["rotate", *service, "--grace", &grace])
            .await
            .expect("rotate");
        assert!(!out.text.contains(old_key.as_str()), "{}", out.text);
        assert_ne!(&graph.key(service), old_key, "the new key is in the file");
        ids.push(
            stack
                .new_application(&alice, &["What are your salary expectations?"])
                .await,
        );
    }
    // Work keeps arriving until the grace period is over, and after.
    while rotated_at.elapsed() < Duration::from_secs(GRACE_SECS + 1) {
        tokio::time::sleep(Duration::from_millis(700)).await;
        ids.push(
            stack
                .new_application(&alice, &["How many years of Rust experience do you have?"])
                .await,
        );
    }
    for (service, old_key) in &old {
        assert_eq!(
            mint(&stack.mock, old_key).await.0,
            401,
            "{service}'s old key is refused after the grace period"
        );
        assert_eq!(mint(&stack.mock, &graph.key(service)).await.0, 201);
    }
    // Every token minted with an old key has expired by now: what the bots do from here, they
    // do with tokens minted with the keys in their files.
    tokio::time::sleep(Duration::from_secs(5)).await;
    ids.push(
        stack
            .new_application(&alice, &["Will you require visa sponsorship?"])
            .await,
    );
    assert!(
        stack.wait_for_status(&alice, &ids, "submitted", WAIT).await,
        "every application is submitted"
    );
    running.stop().await;
    assert_eq!(api_failures(&stack).await, Vec::<String>::new());
    assert_eq!(applier.counters().get("failed"), 0);
    assert_eq!(applier.counters().get("submitted"), ids.len() as u64);
}
both!(rotating_each_bots_key_while_the_pipeline_runs_loses_no_request);

/// The mock's machines (crates/clerk-mock/seed/default.json, which devstack and compose start
/// it with) are generated from deploy/m2m.toml, and compose's demo key files and machine ids
/// are the seed's: change the declaration and this fails until the seed follows.
/// `M2M_BLESS_SEED=1` rewrites the seed from the declaration.
#[test]
fn the_mock_seed_and_compose_demo_secrets_come_from_the_declaration() {
    let declaration = Declaration::load(&repo().join("deploy/m2m.toml")).expect("declaration");
    let seed_path = repo().join("crates/clerk-mock/seed/default.json");
    let committed =
        Seed::from_json(&std::fs::read_to_string(&seed_path).expect("seed")).expect("seed");
    let generated = devstack::seed::seed_from_declaration(&declaration, &committed);
    if generated != committed {
        if std::env::var_os("M2M_BLESS_SEED").is_some() {
            std::fs::write(&seed_path, devstack::seed::seed_json(&generated)).expect("write");
        } else {
            panic!(
                "{} does not match deploy/m2m.toml; run `M2M_BLESS_SEED=1 cargo test -p e2e --test graph seed` and review the diff.\ncommitted: {:#?}\ngenerated: {:#?}",
                seed_path.display(),
                committed.machines,
                generated.machines
            );
        }
    }
    assert_eq!(Seed::demo(), generated, "the mock embeds that file");

    let compose: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("docker-compose.yml")).expect("compose"),
    )
    .expect("yaml");
    // `${VAR:-default}` → default.
    let default = |v: &serde_yaml::Value| -> String {
        let s = v.as_str().expect("a string");
        s.split_once(":-")
            .map_or(s, |(_, d)| d.trim_end_matches('}'))
            .to_owned()
    };
    let seeded = |name: &str| {
        generated
            .machines
            .iter()
            .find(|m| m.name == name)
            .expect("seeded")
    };
    for m in &declaration.machines {
        let env = &compose["services"][m.service.as_str()]["environment"];
        let mounted = env["CLERK_MACHINE_SECRET_KEY_FILE"]
            .as_str()
            .and_then(|p| p.strip_prefix("/run/secrets/"))
            .unwrap_or_else(|| panic!("{}: a machine key file", m.service));
        let file = default(&compose["secrets"][mounted]["file"]);
        let key = std::fs::read_to_string(repo().join(&file)).expect("demo key file");
        assert_eq!(
            Some(key.trim()),
            seeded(&m.name).secret_key.as_deref(),
            "{file}"
        );
        if !env["CLERK_MACHINE_ID"].is_null() {
            assert_eq!(
                Some(default(&env["CLERK_MACHINE_ID"])),
                seeded(&m.name).id,
                "{}",
                m.service
            );
        }
        for (role, var) in &m.roles {
            let caller = declaration
                .edges
                .iter()
                .find(|e| e.receiver == m.service && e.role.as_deref() == Some(role))
                .and_then(|e| declaration.machine(&e.caller))
                .expect("an edge with that role");
            assert_eq!(
                Some(default(&env[var.as_str()])),
                seeded(&caller.name).id,
                "{}: {var}",
                m.service
            );
        }
    }
}
