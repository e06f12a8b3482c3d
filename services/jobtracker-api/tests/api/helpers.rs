use clerk_mock::ClerkMock;
use jobtracker_api::{Config, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub use jobtracker_api_testing::Backend;
use jobtracker_api_testing::{OffsetClock, TestDatabase};

/// Runs a scenario on both backends: `both!(name);` makes `name::sqlite` and `name::postgres`
/// (ignored, with the reason, when TEST_POSTGRES_URL is unset); `both!(name, |c| …)` edits the
/// API's config first.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) =
                    $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await
                {
                    super::$name(&app).await;
                }
            }
            test_postgres::postgres_test! {
                async fn postgres() {
                    if let Some(app) =
                        $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await
                    {
                        super::$name(&app).await;
                    }
                }
            }
        }
    };
    ($name:ident, $edit:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let backend = $crate::helpers::Backend::Sqlite;
                if let Some(app) = $crate::helpers::spawn_app_with(backend, $edit).await {
                    super::$name(&app).await;
                }
            }
            test_postgres::postgres_test! {
                async fn postgres() {
                    let backend = $crate::helpers::Backend::Postgres;
                    if let Some(app) = $crate::helpers::spawn_app_with(backend, $edit).await {
                        super::$name(&app).await;
                    }
                }
            }
        }
    };
}

pub struct TestApp {
    pub base: String,
    /// The metrics listener (`METRICS_BIND`).
    pub metrics: String,
    pub mock: ClerkMock,
    pub http: reqwest::Client,
    pub alice: String,
    pub bob: String,
    pub db: jobtracker_api::db::Db,
    /// The API's clock (the system clock until a test moves it).
    pub clock: OffsetClock,
    _database: TestDatabase,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub fn config(mock: &ClerkMock, database_url: &str) -> Config {
    let base = jobtracker_api_testing::mock_config(mock, database_url);
    Config {
        resume_max_bytes: 64 * 1024,
        // Tests mint a new bot token for almost every call, all from 127.0.0.1: one client's
        // share of the Clerk-miss budget (10) would refuse them. The tests of the share set it
        // back (`per_client_share_as_shipped`).
        verifier: m2m_core::config::VerifierArgs {
            m2m_verify_miss_per_client_burst: base.verifier.m2m_verify_miss_burst,
            m2m_verify_miss_per_client_per_second: base.verifier.m2m_verify_miss_per_second,
            ..base.verifier.clone()
        },
        ..base
    }
}

/// An opaque M2M token Clerk never issued (`mt_` + 32 upper-case letters, a real one's shape).
pub fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let tail: String = (0..32)
        .map(|_| rng.random_range(b'A'..=b'Z') as char)
        .collect();
    format!("mt_{tail}")
}

/// The per-client share of the Clerk-miss budget as the binaries ship it (undoing [`config`]'s).
pub fn per_client_share_as_shipped(c: &mut Config) {
    let shipped = m2m_core::settings::MissBudget::PER_CLIENT;
    c.verifier.m2m_verify_miss_per_client_burst = shipped.burst;
    c.verifier.m2m_verify_miss_per_client_per_second = shipped.per_second;
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, edit: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let clock = OffsetClock::new();
    spawn(backend, edit, std::sync::Arc::new(clock.clone()), clock).await
}

/// As [`spawn_app_with`], with the clock the API runs on (`TestApp::advance` then moves only
/// the mock's clock).
pub async fn spawn_app_clocked(
    backend: Backend,
    edit: impl FnOnce(&mut Config),
    clock: std::sync::Arc<dyn m2m_core::clock::Clock>,
) -> Option<TestApp> {
    spawn(backend, edit, clock, OffsetClock::new()).await
}

async fn spawn(
    backend: Backend,
    edit: impl FnOnce(&mut Config),
    api_clock: std::sync::Arc<dyn m2m_core::clock::Clock>,
    clock: OffsetClock,
) -> Option<TestApp> {
    let database = TestDatabase::create(backend).await?;
    let mock = ClerkMock::start_demo().await;
    let mut cfg = config(&mock, &database.url);
    edit(&mut cfg);
    let app = Server::build_with_clock(&cfg, api_clock)
        .await
        .expect("the API starts");
    let base = format!("http://{}", app.local_addr());
    let metrics = format!("http://{}", app.metrics_addr());
    let db = app.db().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let users = mock.users();
    Some(TestApp {
        base,
        metrics,
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        alice: users[0].id.clone(),
        bob: users[1].id.clone(),
        mock,
        db,
        clock,
        _database: database,
        _shutdown: tx,
    })
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl TestApp {
    /// Time passes for the API and for Clerk alike: leases lapse, tokens minted from now on
    /// carry the new time.
    pub fn advance(&self, by: std::time::Duration) {
        self.clock.advance(by);
        self.mock.advance_clock(by);
    }

    /// `POST /api/job-applications/claim` with `lease_seconds`.
    pub async fn claim(&self, token: &str, lease_seconds: u32) -> Answer {
        self.post(
            "/api/job-applications/claim",
            token,
            json!({ "lease_seconds": lease_seconds }),
        )
        .await
    }

    /// The applier's `PATCH …/status` → `submitted`, presenting `lease_id`.
    pub async fn submit(&self, token: &str, app_id: &str, lease_id: &str) -> Answer {
        self.call(
            Method::PATCH,
            &format!("/api/job-applications/{app_id}/status"),
            Some(token),
            Some(json!({"status": "submitted", "submission_ref": format!("outbox:{app_id}"), "lease_id": lease_id})),
        )
        .await
    }

    /// `PUT …/questions/{qid}/answer`.
    pub async fn answer(&self, token: &str, app_id: &str, qid: &str, body: Value) -> Answer {
        self.call(
            Method::PUT,
            &format!("/api/job-applications/{app_id}/questions/{qid}/answer"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// The audit trail in order: (actor, action, to_status, detail).
    pub async fn events(&self, app_id: &str) -> Vec<Value> {
        let a = self
            .get(
                &format!("/api/job-applications/{app_id}/events?limit=200"),
                &self.machine("JobApplier.Bot"),
            )
            .await;
        a.body["items"].as_array().expect("items").clone()
    }

    pub fn user(&self, user_id: &str) -> String {
        self.mock.session_token(user_id)
    }

    /// A fresh opaque M2M token of a seeded (or created) machine.
    pub fn machine(&self, name: &str) -> String {
        self.machine_token(name, json!({}))
    }

    pub fn machine_token(&self, name: &str, body: Value) -> String {
        let id = self.mock.machine_by_name(name).expect("machine").id;
        let created = self.mock.mint(&id, &body);
        created["token"].as_str().expect("token").to_owned()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// `GET /metrics` on the metrics listener.
    pub async fn scrape(&self) -> Answer {
        self.send(self.http.get(format!("{}/metrics", self.metrics)))
            .await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("API reachable");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body").to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            bytes,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn profile(&self, user_id: &str) -> Value {
        let body = json!({
            "full_name": "Alice Candidate", "email": "alice@example.com", "phone": "+49 30 1234567",
            "location": "Berlin, Germany", "headline": "Backend engineer", "years_experience": 7,
            "skills": ["Rust", "PostgreSQL"], "work_authorization": "EU citizen", "requires_sponsorship": false,
            "salary_expectation": "EUR 85,000", "notice_period_days": 30, "willing_to_relocate": true,
            "remote_preference": "remote", "links": ["https://github.com/alice"]
        });
        let a = self.post("/api/users", &self.user(user_id), body).await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
    }

    pub async fn upload(
        &self,
        user_id: &str,
        token: &str,
        file_name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Answer {
        let req = self
            .http
            .post(format!("{}/api/users/{user_id}/resumes", self.base))
            .query(&[("file_name", file_name)])
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(bytes);
        self.send(req).await
    }

    /// A profile, a resume and an application with `questions`, in `status`.
    pub async fn application(&self, user_id: &str, questions: &[&str], status: &str) -> Value {
        self.profile(user_id).await;
        let token = self.user(user_id);
        let resume = self
            .upload(
                user_id,
                &token,
                "cv.pdf",
                "application/pdf",
                b"%PDF-1.4 resume".to_vec(),
            )
            .await;
        assert_eq!(resume.status, 201, "{}", resume.body);
        let a = self
            .post(
                "/api/job-applications",
                &token,
                json!({"company": "Acme", "position": "Rust Engineer", "job_url": "https://jobs.example.com/1",
                       "resume_id": resume.body["id"], "questions": questions, "status": status}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.body
    }

    pub async fn event_actions(&self, app_id: &str) -> Vec<(String, String)> {
        let a = self
            .get(
                &format!("/api/job-applications/{app_id}/events?limit=200"),
                &self.machine("JobApplier.Bot"),
            )
            .await;
        a.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| {
                (
                    e["actor"].as_str().unwrap_or_default().to_owned(),
                    e["action"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}
