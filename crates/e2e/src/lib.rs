//! The whole system in one process for tests: clerk-mock, jobtracker-api on its own database, and
//! bots built from the same settings their binaries read.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_runtime::{Bot, BotArgs};
use candidate_representer::Representer;
use clerk_mock::ClerkMock;
use job_applier::Applier;
use jobtracker_api_testing::{Backend, TestDatabase};
use m2m_core::config::{ClerkArgs, JwtArgs, TokenArgs};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

/// A running API plus the mock Clerk it trusts.
#[derive(Debug)]
pub struct Stack {
    /// The mock Clerk (demo seed).
    pub mock: ClerkMock,
    /// `http://127.0.0.1:PORT` of the API.
    pub api: String,
    /// `http://127.0.0.1:PORT` of the API's metrics listener.
    pub api_metrics: String,
    /// The applier's outbox.
    pub outbox: PathBuf,
    /// A demo user.
    pub alice: String,
    /// The API settings in use (to restart it).
    pub api_config: jobtracker_api::Config,
    database: TestDatabase,
    api_stop: Option<oneshot::Sender<()>>,
    api_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    http: reqwest::Client,
}

impl Stack {
    /// Starts the mock and the API on `backend` (`None` when Postgres is not configured).
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    /// As [`start`](Self::start), with a chance to change the API settings.
    pub async fn start_with(
        backend: Backend,
        edit: impl FnOnce(&mut jobtracker_api::Config),
    ) -> Option<Self> {
        Self::start_on(backend, ClerkMock::start_demo().await, edit).await
    }

    /// As [`start_with`](Self::start_with), on `mock` (e.g. one whose machines `m2m apply`
    /// creates); its first user is [`alice`](Self::alice). The API's settings start as
    /// [`mock_config`](jobtracker_api_testing::mock_config) makes them: `edit` may replace them
    /// (keeping `database_url`).
    pub async fn start_on(
        backend: Backend,
        mock: ClerkMock,
        edit: impl FnOnce(&mut jobtracker_api::Config),
    ) -> Option<Self> {
        let database = TestDatabase::create(backend).await?;
        let mut api_config = jobtracker_api_testing::mock_config(&mock, &database.url);
        edit(&mut api_config);
        let outbox =
            std::env::temp_dir().join(format!("e2e-outbox-{}", jobtracker_api::db::new_id("o")));
        let alice = mock.users()[0].id.clone();
        let mut stack = Self {
            mock,
            api: String::new(),
            api_metrics: String::new(),
            outbox,
            alice,
            api_config,
            database,
            api_stop: None,
            api_task: None,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        };
        stack.start_api().await;
        Some(stack)
    }

    /// (Re)starts the API; after a restart it keeps its port and database.
    pub async fn start_api(&mut self) {
        let app = jobtracker_api::Server::build(&self.api_config)
            .await
            .expect("the API starts");
        let (addr, metrics) = (app.local_addr(), app.metrics_addr());
        self.api_config.bind = addr;
        self.api_config.metrics_bind = metrics;
        self.api = format!("http://{addr}");
        self.api_metrics = format!("http://{metrics}");
        let (tx, rx) = oneshot::channel::<()>();
        self.api_task = Some(tokio::spawn(app.run_until(async {
            let _ = rx.await;
        })));
        self.api_stop = Some(tx);
    }

    /// Stops the API (in-flight requests finish).
    pub async fn stop_api(&mut self) {
        if let Some(tx) = self.api_stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.api_task.take() {
            let _ = task.await;
        }
    }

    /// Settings for a bot running as machine `machine` (a seeded name), minting opaque tokens
    /// with its key.
    pub fn bot_args(&self, machine: &str) -> BotArgs {
        BotArgs {
            jobtracker_api_url: self.api.clone(),
            clerk: ClerkArgs {
                clerk_api_base_url: self.mock.api_url(),
                clerk_machine_secret_key_file: None,
                clerk_machine_secret_key: self
                    .mock
                    .machine_by_name(machine)
                    .map(|m| m.secret_key.into()),
            },
            token: TokenArgs::default(),
            poll_interval_seconds: 1,
            log: Default::default(),
            server: Default::default(),
        }
    }

    /// A representer built from its settings.
    pub fn representer(&self, edit: impl FnOnce(&mut BotArgs)) -> Arc<Representer> {
        self.representer_with(|c| edit(&mut c.common))
    }

    /// The settings a representer gets here: its own machine key, and the mock's JWKS URL to
    /// verify session tokens on `/v1/ask` (no instance key), no machine allowed to ask.
    pub fn representer_config(&self) -> candidate_representer::Config {
        candidate_representer::Config {
            common: self.bot_args("CandidateRepresenter.Bot"),
            jwt: JwtArgs {
                clerk_jwt_key: None,
                clerk_jwks_url: Some(self.mock.jwks_url()),
                clerk_authorized_parties: vec![self.mock.authorized_party()],
                clerk_issuer: Some(self.mock.issuer()),
                clerk_machine_id: self
                    .mock
                    .machine_by_name("CandidateRepresenter.Bot")
                    .map(|m| m.id),
            },
            allowed_machine_ids: Vec::new(),
            bind: "127.0.0.1:0".parse().expect("addr"),
            metrics_bind: "127.0.0.1:0".parse().expect("addr"),
        }
    }

    /// A representer built from [`representer_config`](Self::representer_config) after `edit`.
    pub fn representer_with(
        &self,
        edit: impl FnOnce(&mut candidate_representer::Config),
    ) -> Arc<Representer> {
        let mut config = self.representer_config();
        edit(&mut config);
        Arc::new(Representer::from_config(&config).expect("representer config"))
    }

    /// An applier built from its settings, writing to this stack's outbox.
    pub fn applier(&self, edit: impl FnOnce(&mut job_applier::Config)) -> Arc<Applier> {
        let mut config = job_applier::Config {
            common: self.bot_args("JobApplier.Bot"),
            bind: "127.0.0.1:0".parse().expect("addr"),
            metrics_bind: "127.0.0.1:0".parse().expect("addr"),
            outbox_dir: self.outbox.clone(),
            submit_url: None,
            lease_seconds: 30,
            max_attempts: 3,
        };
        edit(&mut config);
        Arc::new(Applier::from_config(&config).expect("applier config"))
    }

    /// A session JWT for `user_id` (a fresh session each time).
    pub fn user_token(&self, user_id: &str) -> String {
        self.mock.session_token(user_id)
    }

    /// Calls the API as `token`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.api, path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API reachable");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// As the user: profile (if missing), a PDF resume (the user's first, uploaded once: people
    /// reuse theirs, and `RESUME_MAX_FILES` caps how many one keeps), and a queued application
    /// with `questions`.
    pub async fn new_application(&self, user_id: &str, questions: &[&str]) -> String {
        let token = self.user_token(user_id);
        let (status, _) = self
            .call(reqwest::Method::GET, "/api/users/me", &token, None)
            .await;
        if status == 404 {
            let profile = json!({
                "full_name": "Alice Candidate", "email": "alice@example.com", "phone": "+49 30 1234567",
                "location": "Berlin, Germany", "headline": "Backend engineer", "years_experience": 7,
                "skills": ["Rust", "PostgreSQL"], "work_authorization": "EU citizen", "requires_sponsorship": false,
                "salary_expectation": "EUR 85,000", "notice_period_days": 30, "willing_to_relocate": true,
                "remote_preference": "remote", "links": ["https://github.com/alice"]
            });
            let (s, b) = self
                .call(reqwest::Method::POST, "/api/users", &token, Some(profile))
                .await;
            assert_eq!(s, 200, "{b}");
        }
        let (s, listed) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/users/{user_id}/resumes?limit=1"),
                &token,
                None,
            )
            .await;
        assert_eq!(s, 200, "{listed}");
        let mut resume = listed["items"][0].clone();
        if resume.is_null() {
            let uploaded = self
                .http
                .post(format!("{}/api/users/{user_id}/resumes", self.api))
                .query(&[("file_name", "cv.pdf")])
                .bearer_auth(&token)
                .header("content-type", "application/pdf")
                .body(b"%PDF-1.4 Alice's resume".to_vec())
                .send()
                .await
                .expect("upload");
            assert_eq!(uploaded.status(), 201);
            resume = uploaded.json().await.expect("json");
        }
        let (s, app) = self
            .call(
                reqwest::Method::POST,
                "/api/job-applications",
                &token,
                Some(json!({"company": "Acme", "position": "Rust Engineer", "job_url": "https://jobs.example.com/1", "resume_id": resume["id"], "questions": questions, "status": "queued"})),
            )
            .await;
        assert_eq!(s, 201, "{app}");
        app["id"].as_str().expect("id").to_owned()
    }

    /// The application as its owner sees it.
    pub async fn application(&self, user_id: &str, id: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/api/job-applications/{id}"),
            &self.user_token(user_id),
            None,
        )
        .await
        .1
    }

    /// Its audit trail: (actor, action, to_status).
    pub async fn events(&self, user_id: &str, id: &str) -> Vec<(String, String, Option<String>)> {
        let (_, page) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/job-applications/{id}/events?limit=200"),
                &self.user_token(user_id),
                None,
            )
            .await;
        page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|e| {
                        (
                            e["actor"].as_str().unwrap_or_default().to_owned(),
                            e["action"].as_str().unwrap_or_default().to_owned(),
                            e["to_status"].as_str().map(str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (polling every 100 ms, at most `limit`) until every application of `ids` has `status`.
    pub async fn wait_for_status(
        &self,
        user_id: &str,
        ids: &[String],
        status: &str,
        limit: Duration,
    ) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            let mut all = true;
            for id in ids {
                if self.application(user_id, id).await["status"] != status {
                    all = false;
                    break;
                }
            }
            if all {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Machine id of a seeded machine.
    pub fn machine_id(&self, name: &str) -> String {
        self.mock.machine_by_name(name).expect("machine").id
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.outbox);
        let _ = &self.database;
    }
}

/// Bots running in the background until dropped.
#[derive(Debug)]
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Starts `representers` and `appliers` polling every 100 ms.
    pub fn start(representers: &[Arc<Representer>], appliers: &[Arc<Applier>]) -> Self {
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for r in representers {
            tasks.push(tokio::spawn(
                r.clone().run(Duration::from_millis(100), rx.clone()),
            ));
        }
        for a in appliers {
            tasks.push(tokio::spawn(
                a.clone().run(Duration::from_millis(100), rx.clone()),
            ));
        }
        Self { stop, tasks }
    }

    /// Stops them and waits until each has finished what it held.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// `both!(name)` runs `async fn name(backend: jobtracker_api_testing::Backend)` as the tests
/// `name::sqlite` and `name::postgres` (ignored, with the reason, when TEST_POSTGRES_URL is
/// unset). The calling test crate needs `tokio`, `test-postgres` and `jobtracker-api-testing`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(jobtracker_api_testing::Backend::Sqlite).await;
            }
            test_postgres::postgres_test! {
                async fn postgres() {
                    super::$name(jobtracker_api_testing::Backend::Postgres).await;
                }
            }
        }
    };
}
