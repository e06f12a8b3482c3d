//! JWT decoding and claim checks. Half the inputs are raw tokens; the other half are a header
//! and a payload (JSON, split at the first NUL byte) that the target signs with the verifier's
//! own key, so the claim checks behind the signature are reachable. Any token accepted must
//! satisfy every rule, re-checked independently.
#![no_main]

use jobtracker_fuzz::{check_accepted, world};
use libfuzzer_sys::fuzz_target;
use m2m_core::VerifyError;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let w = world();
    let token = if mode & 1 == 0 {
        match std::str::from_utf8(rest) {
            Ok(t) => t.to_owned(),
            Err(_) => return,
        }
    } else {
        let Some(split) = rest.iter().position(|&b| b == 0) else {
            return;
        };
        let (Ok(header), Ok(payload)) = (
            serde_json::from_slice::<Value>(&rest[..split]),
            serde_json::from_slice::<Value>(&rest[split + 1..]),
        ) else {
            return;
        };
        w.key.sign(&header, &payload)
    };
    match w.rt.block_on(w.verifier.verify_token(&token)) {
        Ok(p) => check_accepted(&token, &p),
        Err(e) => assert!(
            matches!(e, VerifyError::Malformed(_) | VerifyError::Invalid(_)),
            "{e:?}"
        ),
    }
});
