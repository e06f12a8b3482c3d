//! Authorization header parsing and token classification: no input panics, the parsed token
//! obeys RFC 6750's b64token grammar, and classification agrees with the token's own shape.
#![no_main]

use jobtracker_fuzz::{check_accepted, parts, world};
use libfuzzer_sys::fuzz_target;
use m2m_core::VerifyError;
use m2m_core::dangerous::{MAX_HEADER_LEN, TokenKind, bearer_token, classify, is_opaque_m2m};

/// Whether the token's own bytes say M2M: a machine subject or the M2M category.
fn looks_m2m(token: &str) -> bool {
    let (h, p) = parts(token).expect("classified as a JWT");
    let machine = p
        .get("sub")
        .and_then(|s| s.as_str())
        .is_some_and(|s| s.starts_with("mch_"));
    machine || h.get("cat").and_then(|c| c.as_str()) == Some("cl_B7d4PD333AAA")
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = bearer_token(Some(data)) else {
        // Rejected headers must still be rejected by the full path, without panicking.
        let w = world();
        assert!(w.rt.block_on(w.verifier.verify_header(Some(data))).is_err());
        return;
    };
    assert!(data.len() <= MAX_HEADER_LEN);
    assert!(!token.is_empty());
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()
        || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')));
    match classify(token) {
        Ok(TokenKind::OpaqueM2m) => assert!(is_opaque_m2m(token)),
        Ok(TokenKind::M2mJwt(_)) => assert!(looks_m2m(token)),
        Ok(TokenKind::SessionJwt(_)) => assert!(!looks_m2m(token)),
        Err(e) => assert!(matches!(
            e,
            VerifyError::Malformed(_) | VerifyError::Invalid(_)
        )),
    }
    let w = world();
    match w.rt.block_on(w.verifier.verify_header(Some(data))) {
        Ok(p) => check_accepted(token, &p),
        // With a PEM key and no opaque verification, nothing may need the network or blame us.
        Err(e) => assert!(
            matches!(e, VerifyError::Malformed(_) | VerifyError::Invalid(_)),
            "{e:?}"
        ),
    }
});
