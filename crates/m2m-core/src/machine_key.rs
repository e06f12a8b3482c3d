//! A machine secret key (`ak_…`) that can change while the service runs: read from the file
//! `CLERK_MACHINE_SECRET_KEY_FILE` names, and read again when that file changes or when Clerk
//! refuses the key in use (docs/m2m-core.md, *Key rotation without restart*).
//!
//! `m2m rotate` (or anyone) replaces the file; Clerk keeps the old key valid for the rotation's
//! `previous_token_ttl`, so a service that notices the new file within that grace period loses
//! no request. Two ways it notices:
//!
//! - before each use, at most every [`MachineKey::CHECK_EVERY`], it compares the file's
//!   metadata (inode, size, modification and change times) with what it last read: one `stat`,
//!   the file is read only when that differs;
//! - when Clerk answers 401/403 to the key, [`MachineKey::refused`] reads the file at once (at
//!   most once per [`MachineKey::FORCED_READ_EVERY`]) and says whether the key changed, so the
//!   caller retries once with the new key, never more.
//!
//! A file that is missing, empty or holds no machine key (e.g. half-written by a tool that does
//! not replace atomically) keeps the current key in use, with a WARN naming the path, never the
//! contents.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use secrecy::{ExposeSecret, SecretString};

use crate::clock::Clock;

/// A machine secret key, fixed or followed in its file. Cheap to clone: clones share the key.
///
/// Its `Debug` shows the file's path and how many times the key changed, never the key.
#[derive(Clone)]
pub struct MachineKey {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<SecretString>,
    file: Option<Watched>,
    reloads: AtomicU64,
}

struct Watched {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    state: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    /// The metadata of the file when its key was last taken (None: not read since start).
    stamp: Option<Stamp>,
    last_check: Option<Instant>,
    last_forced: Option<Instant>,
}

/// What tells a replaced or rewritten file apart without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
    #[cfg(unix)]
    changed: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        // Follows symbolic links: a Kubernetes secret volume swaps a link to a new folder.
        let m = std::fs::metadata(path)?;
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        Ok(Self {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            inode: (m.dev(), m.ino()),
            #[cfg(unix)]
            changed: (m.ctime(), m.ctime_nsec()),
        })
    }
}

impl fmt::Debug for MachineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineKey")
            .field("file", &self.inner.file.as_ref().map(|w| &w.path))
            .field("reloads", &self.reloads())
            .finish_non_exhaustive()
    }
}

impl From<SecretString> for MachineKey {
    fn from(key: SecretString) -> Self {
        Self::fixed(key)
    }
}

impl MachineKey {
    /// How often, at most, the file's metadata is compared before a use of the key.
    pub const CHECK_EVERY: Duration = Duration::from_secs(2);
    /// How often, at most, a refusal by Clerk makes the file be read again regardless of its
    /// metadata (a storm of refusals reads it once per interval, not once per request).
    pub const FORCED_READ_EVERY: Duration = Duration::from_secs(1);

    /// A key that never changes (given directly, e.g. `CLERK_MACHINE_SECRET_KEY`).
    pub fn fixed(key: SecretString) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(key),
                file: None,
                reloads: AtomicU64::new(0),
            }),
        }
    }

    /// The key `initial` (as read from `path` when the settings were read), followed in `path`
    /// from now on: the first use compares the file again, so a change between reading the
    /// settings and starting is not missed.
    pub fn watched(initial: SecretString, path: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(initial),
                file: Some(Watched {
                    path: path.into(),
                    clock,
                    state: Mutex::new(FileState::default()),
                }),
                reloads: AtomicU64::new(0),
            }),
        }
    }

    /// The file the key is followed in, if any.
    pub fn file(&self) -> Option<&Path> {
        self.inner.file.as_ref().map(|w| w.path.as_path())
    }

    /// How many times a changed file replaced the key.
    pub fn reloads(&self) -> u64 {
        self.inner.reloads.load(Ordering::Relaxed)
    }

    /// The key to use now. With a file, at most every [`Self::CHECK_EVERY`] its metadata is
    /// compared with the last read, and a changed file is read.
    pub fn current(&self) -> Arc<SecretString> {
        if let Some(w) = &self.inner.file {
            let now = w.clock.now();
            // Another caller checking right now is as good as checking: do not wait for it.
            if let Ok(mut state) = w.state.try_lock() {
                let due = state
                    .last_check
                    .is_none_or(|t| now.saturating_duration_since(t) >= Self::CHECK_EVERY);
                if due {
                    state.last_check = Some(now);
                    self.reload_if_changed(w, &mut state, false);
                }
            }
        }
        self.inner.current.load_full()
    }

    /// Clerk refused `used` (401/403). Reads the file again (at most once per
    /// [`Self::FORCED_READ_EVERY`]) and returns whether the key in use now differs from `used`:
    /// then the caller may retry once with [`Self::current`]. A fixed key returns false.
    pub fn refused(&self, used: &SecretString) -> bool {
        let Some(w) = &self.inner.file else {
            return false;
        };
        let now = w.clock.now();
        // Blocking is fine here: the lock is only held for a stat and a small read.
        let mut state = w
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = state
            .last_forced
            .is_none_or(|t| now.saturating_duration_since(t) >= Self::FORCED_READ_EVERY);
        if due {
            state.last_forced = Some(now);
            state.last_check = Some(now);
            self.reload_if_changed(w, &mut state, true);
        }
        drop(state);
        self.inner.current.load().expose_secret() != used.expose_secret()
    }

    fn reload_if_changed(&self, w: &Watched, state: &mut FileState, force: bool) {
        let stamp = match Stamp::of(&w.path) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(path = %w.path.display(), error = %e, "cannot read the machine secret key file; still using the key read before");
                return;
            }
        };
        if !force && state.stamp.as_ref() == Some(&stamp) {
            return;
        }
        match read_key(&w.path) {
            Ok(key) => {
                state.stamp = Some(stamp);
                if key.expose_secret() != self.inner.current.load().expose_secret() {
                    self.inner.current.store(Arc::new(key));
                    self.inner.reloads.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(path = %w.path.display(), "machine secret key changed in its file; using the new key");
                }
            }
            Err(reason) => {
                // The stamp is not recorded: the next check reads the file again.
                tracing::warn!(path = %w.path.display(), reason, "the machine secret key file holds no usable key; still using the key read before");
            }
        }
    }
}

/// The key a file holds: its first line, trimmed, an `ak_…` key. At most 64 KiB are read.
pub(crate) fn read_key(path: &Path) -> Result<SecretString, &'static str> {
    const LIMIT: u64 = 64 * 1024;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(LIMIT).read_to_end(&mut bytes))
        .map_err(|_| "cannot read it")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text")?;
    let first = text.trim_start().lines().next().unwrap_or_default().trim();
    if first.is_empty() {
        return Err("the file is empty");
    }
    crate::values::machine_secret_key(first).map_err(|_| "not a machine secret key (ak_…)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn write(path: &Path, text: &str) {
        // As m2m rotate does: a new file renamed over the old one.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, path).expect("rename");
    }

    fn setup() -> (tempfile::TempDir, PathBuf, Arc<ManualClock>, MachineKey) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bot.key");
        write(&path, "ak_first_key_0001\n");
        let clock = Arc::new(ManualClock::new());
        let key = MachineKey::watched(
            SecretString::from("ak_first_key_0001"),
            &path,
            clock.clone(),
        );
        (dir, path, clock, key)
    }

    fn exposed(k: &MachineKey) -> String {
        k.current().expose_secret().to_owned()
    }

    #[test]
    fn a_replaced_file_is_picked_up_at_the_next_check_only() {
        let (_dir, path, clock, key) = setup();
        assert_eq!(exposed(&key), "ak_first_key_0001");
        write(&path, "ak_second_key_0002\n");
        // Within the check interval the file is not looked at.
        assert_eq!(exposed(&key), "ak_first_key_0001");
        clock.advance(MachineKey::CHECK_EVERY);
        assert_eq!(exposed(&key), "ak_second_key_0002");
        assert_eq!(key.reloads(), 1);
    }

    #[test]
    fn a_refusal_reads_the_file_at_once_and_says_whether_the_key_changed() {
        let (_dir, path, clock, key) = setup();
        let first = key.current();
        // Clerk refused the key and the file still holds it: no retry.
        assert!(!key.refused(&first));
        write(&path, "ak_second_key_0002\n");
        clock.advance(MachineKey::FORCED_READ_EVERY);
        assert!(key.refused(&first), "the file changed: retry once");
        assert_eq!(exposed(&key), "ak_second_key_0002");
        // The new key refused too, file unchanged: no second retry.
        clock.advance(MachineKey::FORCED_READ_EVERY);
        assert!(!key.refused(&key.current()));
    }

    #[test]
    fn refusals_read_the_file_at_most_once_per_interval() {
        let (_dir, path, clock, key) = setup();
        let first = key.current();
        assert!(!key.refused(&first));
        write(&path, "ak_second_key_0002\n");
        assert!(!key.refused(&first), "read again too soon");
        clock.advance(MachineKey::FORCED_READ_EVERY);
        assert!(key.refused(&first));
    }

    #[test]
    fn a_broken_or_missing_file_keeps_the_current_key() {
        let (_dir, path, clock, key) = setup();
        for bad in ["", "\n\n", "sk_test_instance_key\n", "not a key\n"] {
            write(&path, bad);
            clock.advance(MachineKey::CHECK_EVERY);
            assert_eq!(exposed(&key), "ak_first_key_0001", "{bad:?}");
        }
        std::fs::remove_file(&path).expect("rm");
        clock.advance(MachineKey::CHECK_EVERY);
        assert_eq!(exposed(&key), "ak_first_key_0001");
        assert!(!key.refused(&key.current()));
        // Fixed afterwards: taken at the next check.
        write(&path, "ak_third_key_0003\n");
        clock.advance(MachineKey::CHECK_EVERY);
        assert_eq!(exposed(&key), "ak_third_key_0003");
    }

    #[test]
    fn a_fixed_key_never_changes_and_debug_shows_no_key() {
        let key = MachineKey::fixed(SecretString::from("ak_fixed_secret_0001"));
        assert!(!key.refused(&key.current()));
        assert!(key.file().is_none());
        let (_dir, _path, _clock, watched) = setup();
        for k in [&key, &watched] {
            let shown = format!("{k:?}");
            assert!(!shown.contains("ak_"), "{shown}");
        }
    }
}
