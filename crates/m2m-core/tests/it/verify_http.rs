//! The axum extractor: header parsing and RFC 6750 / RFC 9457 answers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use clerk_mock::Endpoint;
use m2m_core::AuthRejection;
use m2m_core::auth_axum::{RequireUser, require_machine};
use m2m_core::{Principal, Verifier};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::verify::{Fixture, fixture};

fn app(verifier: Arc<Verifier>, applier: String) -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|p: Principal| async move { Json(json!({"actor": p.actor()})) }),
        )
        .route(
            "/me",
            get(|RequireUser(u): RequireUser| async move { Json(json!({"user": u.user_id})) }),
        )
        .route(
            "/applier-only",
            get(move |p: Principal| {
                let applier = applier.clone();
                async move {
                    require_machine(&p, &[applier.as_str()])
                        .map(|m| Json(json!({"machine": m.machine_id})))
                }
            }),
        )
        .with_state(verifier)
}

struct Answer {
    status: StatusCode,
    www: Option<String>,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: Value,
}

async fn get_with(f: &Fixture, path: &str, auth: Option<HeaderValue>) -> Answer {
    let verifier = Arc::new(f.verifier_clone());
    let applier = f
        .mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .id;
    let mut req = Request::builder().uri(path);
    if let Some(v) = auth {
        req = req.header(header::AUTHORIZATION, v);
    }
    let resp = app(verifier, applier)
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let h = |n: header::HeaderName| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    };
    let (status, www, content_type, retry_after) = (
        resp.status(),
        h(header::WWW_AUTHENTICATE),
        h(header::CONTENT_TYPE),
        h(header::RETRY_AFTER),
    );
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    Answer {
        status,
        www,
        content_type,
        retry_after,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn bearer(value: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_str(value).expect("header value"))
}

impl Fixture {
    /// A verifier over the same mock and clock (the fixture's own is not clonable).
    pub fn verifier_clone(&self) -> Verifier {
        self.verifier_clone_with(|_| {})
    }

    /// The same, with `edit` applied to the settings.
    pub fn verifier_clone_with(
        &self,
        edit: impl FnOnce(&mut m2m_core::VerifierConfig),
    ) -> Verifier {
        let mut cfg = crate::verify::config(&self.mock);
        edit(&mut cfg);
        cfg.build(
            &crate::support::client(&self.mock.api_url(), &self.clock),
            Arc::new(self.clock.clone()),
        )
    }
}

#[tokio::test]
async fn no_header_is_401_with_a_bare_bearer_challenge() {
    let f = fixture().await;
    let a = get_with(&f, "/whoami", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.www.as_deref(), Some("Bearer"));
    assert_eq!(a.content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(a.body["status"], 401);
    assert_eq!(a.body["title"], "Unauthorized");
}

#[tokio::test]
async fn header_parsing_rules() {
    let f = fixture().await;
    let token = f.mock.session_token(&f.user);
    for (value, ok) in [
        (format!("Bearer {token}"), true),
        (format!("bearer {token}"), true),
        (format!("BEARER {token}"), true),
        (format!("Bearer    {token}   "), true),
        (format!("Basic {token}"), false),
        (token.clone(), false),
        ("Bearer ".to_owned(), false),
        ("Bearer".to_owned(), false),
        (format!("Bearer {token} extra"), false),
        (format!("Bearer {}", "a".repeat(9000)), false),
    ] {
        let a = get_with(&f, "/whoami", bearer(&value)).await;
        assert_eq!(
            a.status == StatusCode::OK,
            ok,
            "{:.40}… → {}",
            value,
            a.status
        );
        if !ok {
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
            assert!(
                a.www
                    .as_deref()
                    .is_some_and(|w| w.starts_with("Bearer error=\"invalid_token\"")),
                "{:?}",
                a.www
            );
        }
    }
    let non_ascii = HeaderValue::from_bytes(b"Bearer \xe2\x82\xactoken").expect("opaque bytes");
    assert_eq!(
        get_with(&f, "/whoami", Some(non_ascii)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 0);
}

#[tokio::test]
async fn rejections_name_the_rule_and_never_echo_the_token() {
    let f = fixture().await;
    let expired = f
        .mock
        .session_token_with(&f.user, |_, c| c["exp"] = json!(1));
    let a = get_with(&f, "/whoami", bearer(&format!("Bearer {expired}"))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.www.as_deref(),
        Some("Bearer error=\"invalid_token\", error_description=\"token-expired\"")
    );
    assert_eq!(a.body["detail"], "token-expired");
    let text = a.body.to_string();
    for part in expired.split('.') {
        assert!(!text.contains(part) && !a.www.clone().unwrap_or_default().contains(part));
    }
}

#[tokio::test]
async fn users_and_machines_are_told_apart() {
    let f = fixture().await;
    let user = f.mock.session_token(&f.user);
    let a = get_with(&f, "/whoami", bearer(&format!("Bearer {user}"))).await;
    assert_eq!(a.body["actor"], format!("user:{}", f.user));
    assert_eq!(
        get_with(&f, "/me", bearer(&format!("Bearer {user}")))
            .await
            .status,
        StatusCode::OK
    );

    let key = f
        .mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .secret_key;
    let minted: Value = reqwest::Client::new()
        .post(format!("{}/m2m_tokens", f.mock.api_url()))
        .bearer_auth(key)
        .json(&json!({}))
        .send()
        .await
        .expect("mock")
        .json()
        .await
        .expect("json");
    let machine = format!("Bearer {}", minted["token"].as_str().expect("t"));
    assert_eq!(
        get_with(&f, "/whoami", bearer(&machine)).await.body["actor"],
        format!("machine:{}", minted["subject"].as_str().expect("s"))
    );
    let forbidden = get_with(&f, "/me", bearer(&machine)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(
        get_with(&f, "/applier-only", bearer(&machine)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_with(&f, "/applier-only", bearer(&format!("Bearer {user}")))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // An authenticated machine not on the allow-list is refused, never trusted.
    let rep_key = f
        .mock
        .machine_by_name("CandidateRepresenter.Bot")
        .expect("rep")
        .secret_key;
    let rep: Value = reqwest::Client::new()
        .post(format!("{}/m2m_tokens", f.mock.api_url()))
        .bearer_auth(rep_key)
        .json(&json!({}))
        .send()
        .await
        .expect("mock")
        .json()
        .await
        .expect("json");
    assert_eq!(
        get_with(
            &f,
            "/applier-only",
            bearer(&format!("Bearer {}", rep["token"].as_str().expect("t")))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn clerk_down_is_503_with_retry_after() {
    let f = fixture().await;
    f.mock.set_outage(Some(503));
    let a = get_with(
        &f,
        "/whoami",
        bearer("Bearer mt_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        a.retry_after
            .as_deref()
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1))
    );
    assert_eq!(a.content_type.as_deref(), Some("application/problem+json"));
}

#[test]
fn misconfiguration_is_a_500_that_blames_no_caller() {
    use axum::response::IntoResponse;
    let r = AuthRejection::Verify(m2m_core::VerifyError::Misconfigured("key rejected".into()))
        .into_response();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
}
