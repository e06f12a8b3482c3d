//! Shared pieces of the benchmarks.

use std::time::Duration;

/// Percentile `p` (0–100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`), 0 where unavailable.
pub fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One line describing the machine.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or_default().trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kib| format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem} RAM")
}

/// Mints distinct session tokens as the demo mock would, signing directly with its key (no HTTP,
/// no session kept in the mock), from any thread.
#[derive(Debug, Clone)]
pub struct SessionMinter {
    key: clerk_mock::SigningKey,
    header: serde_json::Value,
    claims: serde_json::Value,
}

impl SessionMinter {
    /// Tokens like `mock`'s session tokens for its first user, valid for `lifetime_secs`.
    ///
    /// # Panics
    /// If `mock` was not started from the demo seed (whose fixed key this signs with).
    pub fn new(mock: &clerk_mock::ClerkMock, lifetime_secs: i64) -> Self {
        let pem = clerk_mock::Seed::demo()
            .instance
            .signing_key_pem
            .expect("the demo seed has a fixed key");
        let key = clerk_mock::SigningKey::from_pkcs8_pem(&pem).expect("demo key");
        assert_eq!(
            key.public_key_pem(),
            mock.public_key_pem(),
            "the mock signs with the demo key"
        );
        let mut parts = None;
        mock.session_token_with(&mock.users()[0].id.clone(), |h, c| {
            c["exp"] = serde_json::json!(c["iat"].as_i64().unwrap_or(0) + lifetime_secs);
            parts = Some((h.clone(), c.clone()));
        });
        let (header, claims) = parts.expect("the mock built a token");
        Self {
            key,
            header,
            claims,
        }
    }

    /// Token number `i` (each `i` gives another token: its `jti` differs).
    pub fn mint(&self, i: usize) -> String {
        let mut claims = self.claims.clone();
        claims["jti"] = serde_json::json!(format!("bench{i:010}"));
        self.key.sign(&self.header, &claims)
    }

    /// A session token of another user, shaped as the mock's (and Clerk's): `sub` and `sid` as
    /// given, issued at `iat` (Unix seconds), `nbf` ten seconds before, `exp` = `iat` +
    /// `lifetime_secs`, and `jti`.
    pub fn mint_session(
        &self,
        user_id: &str,
        session_id: &str,
        iat: i64,
        lifetime_secs: i64,
        jti: &str,
    ) -> String {
        let mut claims = self.claims.clone();
        claims["sub"] = serde_json::json!(user_id);
        claims["sid"] = serde_json::json!(session_id);
        claims["iat"] = serde_json::json!(iat);
        claims["nbf"] = serde_json::json!(iat - 10);
        claims["exp"] = serde_json::json!(iat + lifetime_secs);
        claims["jti"] = serde_json::json!(jti);
        self.key.sign(&self.header, &claims)
    }

    /// Tokens `0..n`, minted on every core.
    pub fn mint_many(&self, n: usize) -> Vec<String> {
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let chunk = n.div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let range = (t * chunk).min(n)..((t + 1) * chunk).min(n);
                    s.spawn(move || range.map(|i| self.mint(i)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("minting thread"))
                .collect()
        })
    }
}

/// aws-lc-rs's own RS256 verification with the mock's key, parsed once: the raw signature cost
/// the JWT verification is compared with. Returns the key, `token`'s signed part and its
/// signature bytes.
///
/// # Panics
/// If `token` is not a JWT.
pub fn raw_rsa_verifier(
    mock: &clerk_mock::ClerkMock,
    token: &str,
) -> (aws_lc_rs::signature::ParsedPublicKey, String, Vec<u8>) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwk = mock.instance_jwk();
    let component = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().expect("jwk component"))
            .expect("base64url")
    };
    let (n, e) = (component("n"), component("e"));
    let key = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
        .expect("RSA key");
    let (message, signature) = token.rsplit_once('.').expect("a JWT");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    (key, message.to_owned(), signature)
}

/// CPU time the calling thread has run, from `/proc/thread-self/schedstat` (kept by the
/// scheduler, exact to a tick, a few ms); `None` where unavailable. On a shared machine, rates
/// per CPU-second of the measuring thread do not count the time it spent preempted.
pub fn thread_cpu_time() -> Option<Duration> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()
        .map(Duration::from_nanos)
}

/// Runs `f` and returns how long it took: the thread's CPU time where available, else wall time.
pub fn cpu_timed(f: impl FnOnce()) -> Duration {
    let (cpu, wall) = (thread_cpu_time(), std::time::Instant::now());
    f();
    match (cpu, thread_cpu_time()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => wall.elapsed(),
    }
}

/// CPU time of the whole process so far: every live thread's, from `/proc/self/task/*/schedstat`.
pub fn process_cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}
