//! Shared set-up of the fuzz targets: one verifier with a fixed key and a fixed clock, so that
//! valid tokens are reachable and every run is reproducible.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clerk_mock::SigningKey;
use m2m_core::clerk::ClerkClient;
use m2m_core::clock::{Clock, SleepFuture};
use m2m_core::settings::{JwtPolicy, KeySource, OpaqueCacheSettings};
use m2m_core::{Verifier, VerifierConfig};
use serde_json::Value;

/// The fixed "now" of every target, Unix seconds (the seed corpora's tokens are minted for it).
pub const NOW: u64 = 1_800_000_000;
/// The only `azp` accepted.
pub const AZP: &str = "https://app.example";
/// The only `iss` accepted.
pub const ISSUER: &str = "https://clerk.example";
/// The receiver's machine id.
pub const RECEIVER: &str = "mch_2Receiver000000000000000";

/// A clock stopped at [`NOW`].
#[derive(Debug)]
pub struct FixedClock(Instant);

impl Clock for FixedClock {
    fn now(&self) -> Instant {
        self.0
    }
    fn unix_now(&self) -> Duration {
        Duration::from_secs(NOW)
    }
    fn sleep(&self, _: Duration) -> SleepFuture {
        Box::pin(async {})
    }
}

/// Everything a target needs, built once per process.
pub struct World {
    /// Runs the verifier's futures (none of which touches the network).
    pub rt: tokio::runtime::Runtime,
    /// PEM key, authorized party, issuer and receiver set; no opaque verification (no network).
    pub verifier: Verifier,
    /// Signs what the fuzzer builds.
    pub key: SigningKey,
}

/// The process's world.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let pem = clerk_mock::Seed::demo()
            .instance
            .signing_key_pem
            .expect("the demo seed has a fixed key");
        let key = SigningKey::from_pkcs8_pem(&pem).expect("demo key");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cfg = VerifierConfig {
            api_base_url: "http://127.0.0.1:9".into(),
            machine_key_file: None,
            verify_key: None,
            key_source: Some(KeySource::from_pem(&key.public_key_pem()).expect("pem")),
            policy: JwtPolicy {
                authorized_parties: vec![AZP.into()],
                issuer: Some(ISSUER.into()),
                receiver: None,
            },
            cache: OpaqueCacheSettings::default(),
            machine_id: Some(RECEIVER.into()),
            jwks: Default::default(),
            jwt_cache: Default::default(),
        };
        let verifier = rt.block_on(async {
            let client = ClerkClient::new("http://127.0.0.1:9").expect("client");
            cfg.build(&client, Arc::new(FixedClock(Instant::now())))
        });
        World { rt, verifier, key }
    })
}

/// The decoded header and payload of a compact JWT, if it is one.
pub fn parts(token: &str) -> Option<(Value, Value)> {
    let mut it = token.split('.');
    let decode = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    };
    let h = decode(it.next()?)?;
    let p = decode(it.next()?)?;
    Some((h, p))
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

/// Panics unless a token the verifier accepted satisfies every rule, re-checked here
/// independently from the token's own bytes.
pub fn check_accepted(token: &str, principal: &m2m_core::Principal) {
    let (header, claims) = parts(token).expect("an accepted token is a JWT");
    let now = NOW as f64;
    assert!(
        matches!(
            header.get("alg").and_then(Value::as_str),
            Some("RS256" | "RS384" | "RS512")
        ),
        "accepted alg {:?}",
        header.get("alg")
    );
    assert!(
        matches!(header.get("typ"), None | Some(Value::String(_))),
        "typ"
    );
    if let Some(t) = header.get("typ") {
        assert_eq!(t, "JWT", "accepted typ");
    }
    let exp = num(claims.get("exp")).expect("accepted without a numeric exp");
    assert!(
        exp * 1000.0 > now * 1000.0 - 5000.0,
        "accepted an expired token"
    );
    for c in ["nbf", "iat"] {
        if let Some(v) = claims.get(c) {
            let v = v.as_f64().expect("accepted a non-numeric nbf/iat");
            assert!(v * 1000.0 <= now * 1000.0 + 5000.0, "accepted a future {c}");
        }
    }
    assert_eq!(
        claims.get("iss").and_then(Value::as_str),
        Some(ISSUER),
        "iss"
    );
    let sub = claims.get("sub").and_then(Value::as_str).expect("sub");
    match principal {
        m2m_core::Principal::User(u) => {
            assert!(!sub.starts_with("mch_"), "a machine accepted as a user");
            assert_eq!(u.user_id, sub);
            assert_eq!(claims.get("azp").and_then(Value::as_str), Some(AZP), "azp");
            assert!(
                !matches!(
                    header.get("cat").and_then(Value::as_str),
                    Some("cl_B7d4PD333AAA" | "cl_B7d4PD222AAA")
                ),
                "an M2M or template token accepted as a session"
            );
            assert_ne!(claims.get("sts").and_then(Value::as_str), Some("pending"));
            assert!(!u.session_id.is_empty(), "sid");
        }
        m2m_core::Principal::Machine(m) => {
            assert!(
                sub.starts_with("mch_"),
                "a non-machine accepted as a machine"
            );
            assert_eq!(m.machine_id, sub);
            let names = |v: Option<&Value>| -> Vec<String> {
                match v {
                    Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                    _ => Vec::new(),
                }
            };
            assert!(
                names(claims.get("scopes")).iter().any(|s| s == RECEIVER),
                "an M2M token not scoped to the receiver was accepted"
            );
        }
    }
}
