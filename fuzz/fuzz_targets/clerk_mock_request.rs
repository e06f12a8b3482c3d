//! clerk-mock's request parsing (routes, query strings, JSON bodies, keys). Input: a method
//! byte, a key byte, the request target up to the first newline, then the body. `$TOKEN`,
//! `$TOKEN_ID` and `$MACHINE` in the target or body are replaced by a token minted just before,
//! its id and a machine id, so the stateful paths (verify, revoke, scopes) are reachable.
#![no_main]

use std::sync::OnceLock;

use clerk_mock::fuzzing::Harness;
use clerk_mock::{Seed, SigningKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const METHODS: [&str; 6] = ["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"];

fn seed() -> &'static (Seed, SigningKey) {
    static SEED: OnceLock<(Seed, SigningKey)> = OnceLock::new();
    SEED.get_or_init(|| {
        let seed = Seed::demo();
        let key =
            SigningKey::from_pkcs8_pem(seed.instance.signing_key_pem.as_deref().expect("pem"))
                .expect("key");
        (seed, key)
    })
}

fn bearer(key: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {key}")) {
        h.insert(http::header::AUTHORIZATION, v);
    }
    h
}

fuzz_target!(|data: &[u8]| {
    let [m, k, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (target, body) = text.split_once('\n').unwrap_or((text, ""));
    let (seed, key) = seed();
    let mut mock = Harness::new(seed, key.clone()).expect("seed");
    let machine_keys = mock.machine_secret_keys();
    let (_, minted) = mock
        .handle("POST", "/m2m_tokens", &bearer(&machine_keys[1]), b"{}")
        .expect("mint");
    let token = minted["token"].as_str().expect("token").to_owned();
    let token_id = minted["id"].as_str().expect("id").to_owned();
    let machine = minted["subject"].as_str().expect("subject").to_owned();
    let fill = |s: &str| {
        s.replace("$TOKEN_ID", &token_id)
            .replace("$TOKEN", &token)
            .replace("$MACHINE", &machine)
    };
    let headers = match k % 6 {
        0 => http::HeaderMap::new(),
        1 => bearer(mock.instance_secret_key()),
        2..=4 => bearer(&machine_keys[usize::from(k % 6 - 2)]),
        _ => {
            let mut h = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_bytes(fill(body).as_bytes()) {
                h.insert(http::header::AUTHORIZATION, v);
            }
            h
        }
    };
    let method = METHODS[usize::from(*m) % METHODS.len()];
    let Some((status, reply)) = mock.handle(method, &fill(target), &headers, fill(body).as_bytes())
    else {
        return;
    };
    assert!((200..600).contains(&status), "status {status}");
    assert!(reply.is_object(), "every answer is a JSON object: {reply}");
    if status >= 400 {
        // Clerk's error shape: {"errors": [{"code", "message", "long_message"}], ...}.
        let errors = reply["errors"].as_array().expect("errors array");
        assert!(!errors.is_empty());
        for e in errors {
            assert!(e["code"].is_string() && e["message"].is_string(), "{reply}");
        }
    } else {
        // The bearer value appears only in a create answer, or where the request itself
        // carried it (a user whose email address contains it is echoed back, as Clerk does).
        let created = method == "POST" && status == 201;
        let echoed = fill(target).contains(&token) || fill(body).contains(&token);
        if !created && !echoed {
            assert!(!reply.to_string().contains(&token), "token leaked: {reply}");
        }
        let _ = reply.get("object").map(Value::as_str);
    }
});
