//! What only tests use: a database of its own per test (removed afterwards) and a clock they
//! can move.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use m2m_core::clock::{Clock, SleepFuture, SystemClock};
use sqlx::Connection;

/// The system clock plus an offset that tests move forward: leases lapse without waiting, while
/// time keeps running (tokens minted meanwhile stay valid).
#[derive(Debug, Clone, Default)]
pub struct OffsetClock {
    offset_ms: Arc<AtomicU64>,
}

impl OffsetClock {
    /// A clock at the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Instant {
        SystemClock.now() + self.offset()
    }

    fn unix_now(&self) -> Duration {
        SystemClock.unix_now() + self.offset()
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        SystemClock.sleep(duration)
    }
}

/// Which database a test runs on: a fresh SQLite file, or a fresh Postgres database on
/// `TEST_POSTGRES_URL`.
pub use jobtracker_api::db::Backend;

/// Drops the Postgres database, or deletes the SQLite files, when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// Pass as `DATABASE_URL`.
    pub url: String,
    admin_url: Option<String>,
    name: String,
}

impl TestDatabase {
    /// A new database. Always `Some`: a Postgres variant that cannot run is `#[ignore]`d at
    /// build time (`test_postgres::postgres_test!`), so one that runs must have its server.
    ///
    /// # Panics
    /// If Postgres is asked for and `TEST_POSTGRES_URL` is unset or unusable: a Postgres test
    /// must not pass silently.
    pub async fn create(backend: Backend) -> Option<Self> {
        let name = format!(
            "jt_test_{}",
            jobtracker_api::db::new_id("db").trim_start_matches("db_")
        );
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir()
                    .join(format!("{name}.db"))
                    .to_string_lossy()
                    .into_owned();
                Some(Self {
                    url: format!("sqlite://{path}?mode=rwc"),
                    admin_url: None,
                    name: path,
                })
            }
            Backend::Postgres => {
                let Some(admin) = std::env::var("TEST_POSTGRES_URL")
                    .ok()
                    .filter(|url| !url.is_empty())
                else {
                    panic!(
                        "TEST_POSTGRES_URL is not set, so this Postgres variant cannot run: set it \
                         (Postgres variants built without it are ignored, not run)"
                    );
                };
                sqlx::any::install_default_drivers();
                let mut conn = match sqlx::AnyConnection::connect(&admin).await {
                    Ok(c) => c,
                    Err(e) => panic!("TEST_POSTGRES_URL is set but unreachable: {e}"),
                };
                let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""));
                if let Err(e) = sqlx::query(create).execute(&mut conn).await {
                    panic!("cannot create a test database: {e}");
                }
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                Some(Self {
                    url: format!("{base}/{name}"),
                    admin_url: Some(admin.clone()),
                    name,
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.admin_url {
            Some(url) => {
                let (url, name) = (url.clone(), self.name.clone());
                // Drop may run inside a runtime; use a thread with its own.
                let _ = std::thread::spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        rt.block_on(async {
                            if let Ok(mut c) = sqlx::AnyConnection::connect(&url).await {
                                let drop = sqlx::AssertSqlSafe(format!(
                                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                                ));
                                let _ = sqlx::query(drop).execute(&mut c).await;
                            }
                        });
                    }
                })
                .join();
            }
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
        }
    }
}
