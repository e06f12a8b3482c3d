//! Property tests of the Authorization header and token parsing (a bounded run in CI; raise
//! PROPTEST_CASES for a longer one): no input panics, every bad input is a 401, and nothing that
//! is not shaped like an opaque M2M token ever reaches Clerk's verify endpoint.

use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use clerk_mock::{ClerkMock, Endpoint};
use m2m_core::AuthRejection;
use m2m_core::clock::ManualClock;
use m2m_core::dangerous::is_opaque_m2m;
use m2m_core::{Verifier, VerifyError};
use proptest::prelude::*;

struct World {
    rt: tokio::runtime::Runtime,
    mock: ClerkMock,
    verifier: Verifier,
    session: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (mock, verifier, session) = rt.block_on(async {
            let mock = ClerkMock::start_demo().await;
            let clock = ManualClock::new();
            let cfg = crate::verify::config(&mock);
            let verifier = cfg.build(
                &crate::support::client(&mock.api_url(), &clock),
                Arc::new(clock),
            );
            let user = mock.users()[0].id.clone();
            // Warm the JWKS so a token's kid never needs a fetch mid-property.
            let session = mock.session_token(&user);
            verifier
                .verify_token(&session)
                .await
                .expect("a real session token verifies");
            (mock, verifier, session)
        });
        World {
            rt,
            mock,
            verifier,
            session,
        }
    })
}

/// Verifies `header`; checks the invariants; returns whether it was accepted.
fn check(header: &[u8]) -> bool {
    let w = world();
    let before = w.mock.calls(Endpoint::VerifyToken);
    let result = w.rt.block_on(w.verifier.verify_header(Some(header)));
    let after = w.mock.calls(Endpoint::VerifyToken);
    let token = std::str::from_utf8(header)
        .ok()
        .and_then(|h| m2m_core::dangerous::bearer_token(Some(h.as_bytes())).ok());
    if after > before {
        assert!(
            token.is_some_and(is_opaque_m2m),
            "a Clerk call for a token not shaped like mt_…: {header:?}"
        );
    }
    match result {
        Ok(_) => true,
        Err(e) => {
            assert!(
                matches!(
                    e,
                    VerifyError::Missing | VerifyError::Malformed(_) | VerifyError::Invalid(_)
                ),
                "{e:?} for {header:?}"
            );
            assert_eq!(
                AuthRejection::Verify(e).into_response().status(),
                StatusCode::UNAUTHORIZED
            );
            false
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1500),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_header_bytes_are_rejected_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(!check(&bytes));
    }

    #[test]
    fn bearer_with_token_like_junk_is_rejected(scheme in "(Bearer|bearer|BEARER|Basic|Token| )", sep in "[ \t]{0,3}", token in "[A-Za-z0-9._~+/=\\-]{0,300}") {
        let header = format!("{scheme}{sep}{token}");
        prop_assert!(!check(header.as_bytes()));
    }

    #[test]
    fn jwt_shaped_junk_is_rejected(a in "[A-Za-z0-9_-]{0,120}", b in "[A-Za-z0-9_-]{0,400}", c in "[A-Za-z0-9_-]{0,400}") {
        let header = format!("Bearer {a}.{b}.{c}");
        prop_assert!(!check(header.as_bytes()));
    }

    #[test]
    fn any_change_to_a_valid_session_token_is_rejected(at in any::<prop::sample::Index>(), with in "[A-Za-z0-9_.-]", cut in any::<bool>()) {
        let token = &world().session;
        let i = at.index(token.len());
        let mutated = if cut {
            token[..i].to_owned()
        } else {
            format!("{}{}{}", &token[..i], with, &token[i + 1..])
        };
        prop_assume!(mutated != *token);
        prop_assert!(!check(format!("Bearer {mutated}").as_bytes()), "accepted a modified token");
    }
}

#[test]
fn the_unmodified_token_is_accepted() {
    assert!(
        check(format!("Bearer {}", world().session).as_bytes()),
        "the property tests above must be able to fail"
    );
}
