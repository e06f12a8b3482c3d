//! The database: SQLite (embedded default) or Postgres, chosen by `DATABASE_URL`, through sqlx's
//! `Any` driver with portable SQL. The few statements that must differ (the claim query) are
//! chosen by [`Backend`].

use service_kit::StartupError;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use m2m_core::clock::{self, Clock};
use rand::Rng;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Executor, Transaction};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (file or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The pool, its backend and the clock that leases are measured with.
#[derive(Debug, Clone)]
pub struct Db {
    /// The pool.
    pub pool: AnyPool,
    /// The backend.
    pub backend: Backend,
    /// "Now" for leases and timestamps (the system clock unless a test injects one).
    pub clock: Arc<dyn Clock>,
    /// Application status changes, counted as they commit (served at `/metrics`).
    pub transitions: crate::metrics::Transitions,
    readiness: Arc<Readiness>,
}

/// The last readiness answer: `/readyz` needs no authentication, so a flood of it must not take
/// the pool's connections from everyone else. The database is asked at most once per
/// [`READINESS_FRESH`], by one request at a time; the others wait for that answer (holding no
/// connection) and share it.
#[derive(Debug, Default)]
struct Readiness {
    last: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
    asked: std::sync::atomic::AtomicU64,
}

/// How long a readiness answer stands: well under a load balancer's or kubelet's check period
/// (1-5 s), so a database outage still turns the replica unready within one check.
pub const READINESS_FRESH: Duration = Duration::from_secs(1);

impl Db {
    /// Connects and runs the migrations. `sqlite://path?mode=rwc` creates the file (and its
    /// directory) on first run.
    pub async fn connect(url: &str) -> Result<Self, StartupError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err("DATABASE_URL must start with sqlite: or postgres://".into());
        };
        if backend == Backend::Sqlite {
            prepare_sqlite_file(url)?;
        }
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| format!("DATABASE_URL is invalid: {e}"))?
            // The same per-request WARN for a slow statement: debug, as above.
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(5))
            // sqlx warns per request when a connection is slow to come; under a flood that is a
            // line per request a client sends. The stall shows as 503s (logged, rate-limited);
            // `RUST_LOG=sqlx=debug` brings these back.
            .acquire_slow_level(log::LevelFilter::Debug)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; writers wait for each other.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| format!("database migration failed: {e}"))?;
        Ok(Self {
            pool,
            backend,
            clock: clock::system(),
            transitions: Default::default(),
            readiness: Default::default(),
        })
    }

    /// The same database measuring time with `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Unix milliseconds now, on this database's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.unix_now().as_millis() as i64
    }

    /// A transaction for a change: on SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so its reads and writes see one state and cannot interleave with another
    /// writer's; on Postgres, lock the rows a rule reads with `SELECT … FOR UPDATE` first.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Whether the database answers, asked at most once per [`READINESS_FRESH`] however many
    /// callers ask: an unauthenticated flood of `/readyz` shares one answer and takes no pool
    /// connection from users.
    pub async fn ready(&self) -> bool {
        let mut last = self.readiness.last.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < READINESS_FRESH
        {
            return ok;
        }
        self.readiness
            .asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ok = sqlx::query("SELECT 1").execute(&self.pool).await.is_ok();
        *last = Some((std::time::Instant::now(), ok));
        ok
    }

    /// How many times [`ready`](Self::ready) has asked the database.
    pub fn readiness_checks(&self) -> u64 {
        self.readiness
            .asked
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Creates the SQLite file (and missing folders) owner-only before SQLite opens it: the database
/// holds personal data, and SQLite gives its `-wal` and `-shm` files the database file's mode.
/// Folders it creates are 0700, the file 0600; an existing file others can read draws a warning
/// (it is the operator's, so its mode is left as it is).
fn prepare_sqlite_file(url: &str) -> Result<(), String> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    let path = std::path::Path::new(path);
    if !query.split('&').any(|p| p == "mode=rwc") {
        // Without mode=rwc SQLite opens an existing file only (nothing to create, not even its
        // folder); SQLite's own error for a missing one names neither the file nor the fix.
        if !path.exists() {
            return Err(format!(
                "DATABASE_URL: the SQLite file {} does not exist: add `?mode=rwc` to the URL to \
                 create it on first start (sqlite://{}?mode=rwc), or create the file",
                path.display(),
                path.display()
            ));
        }
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| format!("DATABASE_URL: cannot create {}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(path) {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format!("{mode:04o}"),
                        "the database file holds personal data and others can read it: chmod 600 it (and its -wal and -shm files)"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(format!(
            "DATABASE_URL: cannot create {}: {e}",
            path.display()
        )),
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A new id: `prefix_` + 12 hex of milliseconds + 6 hex of a process sequence + 6 random hex.
/// Ids sort by creation time, which is what cursor pagination relies on.
pub fn new_id(prefix: &str) -> String {
    let tail = id_tail();
    let mut id = String::with_capacity(prefix.len() + 1 + tail.len());
    id.push_str(prefix);
    id.push('_');
    // ASCII hex digits only.
    id.push_str(std::str::from_utf8(&tail).unwrap_or_default());
    id
}

/// What follows `prefix_` in a [`new_id`]: 24 lowercase hex digits, on the stack.
pub fn id_tail() -> [u8; 24] {
    let seq = u64::from(SEQ.fetch_add(1, Ordering::Relaxed) & 0xff_ffff);
    let rnd: u64 = rand::rng().random_range(0..0x100_0000);
    let ms = (now_ms() as u64) & 0xffff_ffff_ffff;
    let mut out = [0u8; 24];
    let mut at = 0;
    for (value, digits) in [(ms, 12), (seq, 6), (rnd, 6)] {
        for d in (0..digits).rev() {
            out[at] = b"0123456789abcdef"[((value >> (4 * d)) & 0xf) as usize];
            at += 1;
        }
    }
    out
}

/// RFC 3339 (UTC, milliseconds) from Unix ms.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_392_000_000), "2026-11-23T00:00:00.000Z");
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = new_id("x");
        let b = new_id("x");
        assert!(a < b, "{a} {b}");
        assert_eq!(a.len(), 2 + 24);
    }

    #[test]
    fn an_id_is_its_millisecond_sequence_and_random_part_in_hex() {
        let before = now_ms();
        let id = new_id("req");
        let after = now_ms();
        let hex = id.strip_prefix("req_").expect("prefix");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
        let ms = i64::from_str_radix(&hex[..12], 16).expect("hex");
        assert!(
            (before..=after).contains(&ms),
            "{ms} not in {before}..={after}"
        );
        let seq = |id: &str| u32::from_str_radix(&id[16..22], 16).expect("hex");
        let next = new_id("req");
        // Other tests take ids in parallel: later, not necessarily next.
        assert!(seq(&next) > seq(&id), "{id} then {next}");
    }
}

#[cfg(all(test, unix))]
mod file_mode_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn a_new_sqlite_database_and_its_wal_are_owner_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data");
        let file = dir.join("jobtracker.db");
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .expect("connects");
        sqlx::query("SELECT count(*) FROM users")
            .fetch_one(&db.pool)
            .await
            .expect("migrated");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        let wal = dir.join("jobtracker.db-wal");
        assert!(wal.exists(), "WAL mode is on");
        assert_eq!(mode(&wal), 0o600);
        assert_eq!(mode(&dir.join("jobtracker.db-shm")), 0o600);
    }

    #[test]
    fn without_mode_rwc_nothing_is_created() {
        let root = tempfile::tempdir().expect("tempdir");
        let file = root.path().join("data").join("absent.db");
        let err = prepare_sqlite_file(&format!("sqlite://{}", file.display()))
            .expect_err("a missing file without mode=rwc is refused");
        assert!(!file.exists() && !root.path().join("data").exists());
        // The variable, the path and the fix, instead of SQLite's "unable to open database file".
        for needle in ["DATABASE_URL", &file.display().to_string(), "?mode=rwc"] {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
        std::fs::create_dir(root.path().join("data")).expect("mkdir");
        std::fs::write(&file, b"").expect("create");
        prepare_sqlite_file(&format!("sqlite://{}", file.display())).expect("an existing file");
        prepare_sqlite_file("sqlite::memory:").expect("ok");
    }
}
