//! Process-level smoke test: the built binaries, started with environment variables only (the
//! wiring compose and devstack use), run the pipeline and stop cleanly on SIGTERM.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Kills any child still running when the test ends (also on panic).
struct Children(Vec<(&'static str, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace`, which builds every service binary",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn spawn(name: &'static str, env: &[(&str, String)]) -> (&'static str, Child) {
    let mut cmd = Command::new(binary(name));
    // SMOKE_LOG_DIR keeps each service's log in a file, for diagnosing a failure.
    let log = std::env::var("SMOKE_LOG_DIR")
        .ok()
        .and_then(|dir| std::fs::File::create(format!("{dir}/{name}.log")).ok());
    cmd.env_clear()
        .env(
            "RUST_LOG",
            std::env::var("SMOKE_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(log.map_or_else(Stdio::inherit, Stdio::from));
    for (k, v) in env {
        cmd.env(k, v);
    }
    (
        name,
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}")),
    )
}

async fn wait_ok(http: &reqwest::Client, url: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_run_the_pipeline_from_environment_variables_alone() {
    let seed_out = Command::new(binary("clerk-mock"))
        .env_clear()
        .arg("--print-seed")
        .output()
        .expect("print-seed");
    let seed: Value = serde_json::from_slice(&seed_out.stdout).expect("seed JSON");
    let machine = |name: &str| {
        let m = seed["machines"]
            .as_array()
            .expect("machines")
            .iter()
            .find(|m| m["name"] == name)
            .expect("machine")
            .clone();
        (
            m["id"].as_str().expect("id").to_owned(),
            m["secret_key"].as_str().expect("key").to_owned(),
        )
    };
    let ((_, api_key), (rep_id, rep_key), (app_id, app_key)) = (
        machine("JobTracker.API"),
        machine("CandidateRepresenter.Bot"),
        machine("JobApplier.Bot"),
    );
    let sk = seed["instance_secret_key"].as_str().expect("sk").to_owned();
    let user = seed["users"][0]["id"].as_str().expect("user").to_owned();

    let dir = std::env::temp_dir().join(format!("smoke-{}", jobtracker_api::db::new_id("s")));
    std::fs::create_dir_all(&dir).expect("dir");
    let (mock_port, api_port, rep_port, app_port) =
        (free_port(), free_port(), free_port(), free_port());
    let app_metrics_port = free_port();
    let clerk = format!("http://127.0.0.1:{mock_port}/v1");
    let api = format!("http://127.0.0.1:{api_port}");
    let http = reqwest::Client::new();
    let mut children = Children(Vec::new());

    children.0.push(spawn(
        "clerk-mock",
        &[("CLERK_MOCK_BIND", format!("127.0.0.1:{mock_port}"))],
    ));
    wait_ok(&http, &format!("http://127.0.0.1:{mock_port}/healthz")).await;
    children.0.push(spawn(
        "jobtracker-api",
        &[
            ("JOBTRACKER_BIND", format!("127.0.0.1:{api_port}")),
            ("METRICS_BIND", format!("127.0.0.1:{}", free_port())),
            (
                "DATABASE_URL",
                format!("sqlite://{}/jobtracker.db?mode=rwc", dir.display()),
            ),
            ("CLERK_API_BASE_URL", clerk.clone()),
            ("CLERK_MACHINE_SECRET_KEY", api_key),
            ("CLERK_SECRET_KEY", sk.clone()),
            ("CANDIDATE_REPRESENTER_MACHINE_ID", rep_id),
            ("JOB_APPLIER_MACHINE_ID", app_id),
        ],
    ));
    wait_ok(&http, &format!("{api}/readyz")).await;
    let bot = |key: String| {
        vec![
            ("JOBTRACKER_API_URL", api.clone()),
            ("CLERK_API_BASE_URL", clerk.clone()),
            ("CLERK_MACHINE_SECRET_KEY", key),
            ("POLL_INTERVAL_SECONDS", "1".to_owned()),
        ]
    };
    let mut rep_env = bot(rep_key);
    rep_env.push(("REPRESENTER_BIND", format!("127.0.0.1:{rep_port}")));
    rep_env.push(("METRICS_BIND", format!("127.0.0.1:{}", free_port())));
    let mut app_env = bot(app_key);
    app_env.push(("APPLIER_BIND", format!("127.0.0.1:{app_port}")));
    app_env.push(("METRICS_BIND", format!("127.0.0.1:{app_metrics_port}")));
    app_env.push((
        "APPLIER_OUTBOX_DIR",
        dir.join("outbox").display().to_string(),
    ));
    children.0.push(spawn("candidate-representer", &rep_env));
    children.0.push(spawn("job-applier", &app_env));
    wait_ok(&http, &format!("http://127.0.0.1:{rep_port}/healthz")).await;
    wait_ok(&http, &format!("http://127.0.0.1:{app_port}/healthz")).await;

    // A user, through the mock's sessions API exactly as the README shows.
    let session: Value = http
        .post(format!("{clerk}/sessions"))
        .bearer_auth(&sk)
        .json(&json!({"user_id": user}))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    let token: Value = http
        .post(format!(
            "{clerk}/sessions/{}/tokens",
            session["id"].as_str().expect("sid")
        ))
        .bearer_auth(&sk)
        .json(&json!({"expires_in_seconds": 600}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let jwt = token["jwt"].as_str().expect("jwt").to_owned();
    let ok = |r: reqwest::Response| async move {
        assert!(r.status().is_success(), "{}", r.status());
        r.json::<Value>().await.expect("json")
    };
    ok(http
        .post(format!("{api}/api/users"))
        .bearer_auth(&jwt)
        .json(
            &json!({"full_name": "Alice", "email": "alice@example.com", "notice_period_days": 14}),
        )
        .send()
        .await
        .expect("profile"))
    .await;
    let resume = ok(http
        .post(format!("{api}/api/users/{user}/resumes?file_name=cv.txt"))
        .bearer_auth(&jwt)
        .header("content-type", "text/plain")
        .body("Alice, engineer")
        .send()
        .await
        .expect("resume"))
    .await;
    let app = ok(http
        .post(format!("{api}/api/job-applications"))
        .bearer_auth(&jwt)
        .json(&json!({"company": "Acme", "position": "Engineer", "resume_id": resume["id"], "questions": ["What is your notice period?"], "status": "queued"}))
        .send()
        .await
        .expect("application"))
    .await;
    let id = app["id"].as_str().expect("id").to_owned();
    let started = Instant::now();
    loop {
        let a = ok(http
            .get(format!("{api}/api/job-applications/{id}"))
            .bearer_auth(&jwt)
            .send()
            .await
            .expect("get"))
        .await;
        if a["status"] == "submitted" {
            assert!(
                a["questions"][0]["answer"]
                    .as_str()
                    .expect("answer")
                    .contains("14 days")
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not submitted in time: {a}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(dir.join("outbox").join(&id).join("packet.json").exists());
    // /metrics is on its own address; the public one does not serve it.
    let public = http
        .get(format!("http://127.0.0.1:{app_port}/metrics"))
        .send()
        .await
        .expect("public /metrics");
    assert_eq!(public.status(), 404);
    let metrics = http
        .get(format!("http://127.0.0.1:{app_metrics_port}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("applier_submitted_total 1"), "{metrics}");

    // SIGTERM: every process stops by itself, successfully.
    for (name, child) in &mut children.0 {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{name} ignored SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{name} exited with {status}");
    }
    children.0.clear();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_in_flight_request() {
    // Every request is verified at a slow Clerk, so many are in flight when SIGTERM arrives.
    let mock = clerk_mock::ClerkMock::start_demo().await;
    let dir = std::env::temp_dir().join(format!("sigterm-{}", jobtracker_api::db::new_id("s")));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let m = |n: &str| mock.machine_by_name(n).expect("machine");
    let mut children = Children(vec![spawn(
        "jobtracker-api",
        &[
            ("JOBTRACKER_BIND", format!("127.0.0.1:{port}")),
            ("METRICS_BIND", format!("127.0.0.1:{}", free_port())),
            (
                "DATABASE_URL",
                format!("sqlite://{}/jobtracker.db?mode=rwc", dir.display()),
            ),
            ("CLERK_API_BASE_URL", mock.api_url()),
            ("CLERK_MACHINE_SECRET_KEY", m("JobTracker.API").secret_key),
            ("CLERK_SECRET_KEY", mock.instance_secret_key()),
            ("JOB_APPLIER_MACHINE_ID", m("JobApplier.Bot").id),
            ("M2M_VERIFY_CACHE_TTL_SECONDS", "0".into()),
        ],
    )]);
    let http = reqwest::Client::new();
    wait_ok(&http, &format!("{api}/readyz")).await;
    let token: Value = http
        .post(format!("{}/m2m_tokens", mock.api_url()))
        .bearer_auth(m("JobApplier.Bot").secret_key)
        .json(&json!({}))
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let token = token["token"].as_str().expect("token").to_owned();
    mock.set_latency(Duration::from_millis(1500));
    mock.reset_calls();

    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..40)
        .map(|_| {
            let (client, url, token) = (client.clone(), format!("{api}/api/whoami"), token.clone());
            tokio::spawn(async move {
                client
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    // Every request is inside the API (waiting on Clerk) before the signal: truly in flight.
    let started = Instant::now();
    while mock.calls(clerk_mock::Endpoint::VerifyToken) < 40 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "only {} requests reached the API",
            mock.calls(clerk_mock::Endpoint::VerifyToken)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, child) = &mut children.0[0];
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let mut statuses = Vec::new();
    for r in requests {
        statuses.push(
            r.await
                .expect("join")
                .expect("an in-flight request was cut off"),
        );
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the API did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        http.get(format!("{api}/healthz")).send().await.is_err(),
        "it no longer accepts connections"
    );
    children.0.clear();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_slow_clients_attached_exits_after_the_grace_period() {
    use tokio::io::AsyncWriteExt;
    // One request stuck at a Clerk that never answers in time, one client trickling headers:
    // neither may hold the process past SHUTDOWN_GRACE_SECONDS.
    let mock = clerk_mock::ClerkMock::start_demo().await;
    let dir = std::env::temp_dir().join(format!("grace-{}", jobtracker_api::db::new_id("g")));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let m = |n: &str| mock.machine_by_name(n).expect("machine");
    let mut children = Children(vec![spawn(
        "jobtracker-api",
        &[
            ("JOBTRACKER_BIND", format!("127.0.0.1:{port}")),
            ("METRICS_BIND", format!("127.0.0.1:{}", free_port())),
            (
                "DATABASE_URL",
                format!("sqlite://{}/jobtracker.db?mode=rwc", dir.display()),
            ),
            ("CLERK_API_BASE_URL", mock.api_url()),
            ("CLERK_MACHINE_SECRET_KEY", m("JobTracker.API").secret_key),
            ("CLERK_SECRET_KEY", mock.instance_secret_key()),
            ("JOB_APPLIER_MACHINE_ID", m("JobApplier.Bot").id),
            ("M2M_VERIFY_CACHE_TTL_SECONDS", "0".into()),
            ("SHUTDOWN_GRACE_SECONDS", "2".into()),
            ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "30".into()),
        ],
    )]);
    let http = reqwest::Client::new();
    wait_ok(&http, &format!("{api}/readyz")).await;
    let token: Value = http
        .post(format!("{}/m2m_tokens", mock.api_url()))
        .bearer_auth(m("JobApplier.Bot").secret_key)
        .json(&json!({}))
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let token = token["token"].as_str().expect("token").to_owned();
    mock.set_latency(Duration::from_secs(3600));
    mock.reset_calls();
    let stuck = {
        let (client, url) = (http.clone(), format!("{api}/api/whoami"));
        tokio::spawn(async move { client.get(url).bearer_auth(token).send().await })
    };
    let started = Instant::now();
    while mock.calls(clerk_mock::Endpoint::VerifyToken) < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the request did not reach the API"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut trickler = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    trickler
        .write_all(b"GET /healthz HTTP/1.1\r\nx-a: 1\r\n")
        .await
        .expect("write");
    let trickle = tokio::spawn(async move {
        for i in 0..120 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if trickler
                .write_all(format!("x-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });

    let (_, child) = &mut children.0[0];
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the API still runs 15 s after SIGTERM with SHUTDOWN_GRACE_SECONDS=2"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    // The stuck request was abandoned, not answered.
    let answer = tokio::time::timeout(Duration::from_secs(15), stuck)
        .await
        .expect("the abandoned request ends")
        .expect("join");
    assert!(answer.is_err(), "{answer:?}");
    trickle.abort();
    children.0.clear();
    let _ = std::fs::remove_dir_all(&dir);
}
