//! The representer's door, `POST /v1/ask`, on a live stack (mock Clerk, the API, the
//! representer serving on a port): a user only about themselves, a machine only when it is on
//! `REPRESENTER_ALLOWED_MACHINE_IDS`, everyone else 401/403 before any call reaches the API.

use bot_runtime::Bot;
use candidate_representer::Representer;
use e2e::Stack;
use jobtracker_api_testing::Backend;
use serde_json::{Value, json};
use std::sync::Arc;

async fn mint(stack: &Stack, machine: &str, format: &str) -> String {
    let created: Value = reqwest::Client::new()
        .post(format!("{}/m2m_tokens", stack.mock.api_url()))
        .bearer_auth(
            stack
                .mock
                .machine_by_name(machine)
                .expect("machine")
                .secret_key,
        )
        .json(&json!({ "token_format": format }))
        .send()
        .await
        .expect("mock")
        .json()
        .await
        .expect("json");
    created["token"].as_str().expect("token").to_owned()
}

/// Serves `rep`'s router on a free port; returns its base URL.
async fn serve(rep: Arc<Representer>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, rep.router()).await;
    });
    format!("http://{addr}")
}

async fn ask(base: &str, token: Option<&str>, user_id: &str) -> (u16, Value, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/v1/ask"))
        .json(&json!({"user_id": user_id, "question": "What is your phone number?"}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("representer reachable");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, r.json().await.unwrap_or(Value::Null), content_type)
}

/// How many requests the API has served for a user's profile (its own `/metrics`).
async fn profile_reads(stack: &Stack) -> u64 {
    let text = reqwest::get(format!("{}/metrics", stack.api_metrics))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| {
            l.starts_with("http_requests_total{") && l.contains("route=\"/api/users/{user_id}\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_admits_a_user_about_themselves_and_allow_listed_machines_only() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let users = stack.mock.users();
    let (alice, bob) = (users[0].id.clone(), users[1].id.clone());
    // Both candidates have profiles with a phone number.
    stack.new_application(&alice, &[]).await;
    stack.new_application(&bob, &[]).await;
    let rep_id = stack.machine_id("CandidateRepresenter.Bot");
    // A brand-new machine with no scopes, one scoped to the representer, and one allowed.
    stack.mock.create_machine("Stranger.Bot", &[]);
    stack.mock.create_machine("Scoped.Bot", &[&rep_id]);
    let allowed = stack.mock.create_machine("Reporting.Bot", &[&rep_id]);
    let rep = stack.representer_with(|c| c.allowed_machine_ids = vec![allowed.id.clone()]);
    let base = serve(rep).await;

    let before = profile_reads(&stack).await;
    let alice_token = stack.user_token(&alice);
    let refused: Vec<(&str, Option<String>, &str, u16)> = vec![
        ("no token", None, &bob, 401),
        ("a malformed token", Some("not-a-token".into()), &bob, 401),
        (
            "an unknown opaque token",
            Some("mt_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345".into()),
            &bob,
            401,
        ),
        ("another user", Some(alice_token.clone()), &bob, 403),
        // Receiver binding: a JWT not scoped to the representer is refused as a credential.
        (
            "a new machine's JWT (no scopes)",
            Some(mint(&stack, "Stranger.Bot", "jwt").await),
            &bob,
            401,
        ),
        (
            "a new machine's opaque token (not scoped to the representer)",
            Some(mint(&stack, "Stranger.Bot", "opaque").await),
            &bob,
            401,
        ),
        (
            "a machine scoped to the representer but not allowed",
            Some(mint(&stack, "Scoped.Bot", "opaque").await),
            &bob,
            403,
        ),
        (
            "a machine scoped to the representer but not allowed (JWT)",
            Some(mint(&stack, "Scoped.Bot", "jwt").await),
            &bob,
            403,
        ),
        (
            "the API's own machine (JWT, not scoped to the representer)",
            Some(mint(&stack, "JobTracker.API", "jwt").await),
            &bob,
            401,
        ),
        (
            "the applier (JWT, scoped to the API only)",
            Some(mint(&stack, "JobApplier.Bot", "jwt").await),
            &alice,
            401,
        ),
    ];
    for (who, token, about, expected) in &refused {
        let (status, body, content_type) = ask(&base, token.as_deref(), about).await;
        assert_eq!(status, *expected, "{who}: {body}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{who}"
        );
        assert!(
            body.get("answer").is_none() && !body.to_string().contains("555"),
            "{who} learned something: {body}"
        );
        if let Some(t) = token {
            assert!(
                !body.to_string().contains(t.as_str()),
                "{who}: token echoed"
            );
        }
    }
    assert_eq!(
        profile_reads(&stack).await,
        before,
        "no refused caller reached the API"
    );

    // An admitted caller with a bad body: 422, and still no API call.
    let bad = reqwest::Client::new()
        .post(format!("{base}/v1/ask"))
        .bearer_auth(&alice_token)
        .body("{\"user_id\": 7}")
        .send()
        .await
        .expect("representer");
    assert_eq!(bad.status(), 422);
    assert_eq!(profile_reads(&stack).await, before);

    // A user about themselves, and the allow-listed machine about anyone (opaque and JWT).
    let (status, body, _) = ask(&base, Some(&alice_token), &alice).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answer"], "+49 30 1234567");
    for format in ["opaque", "jwt"] {
        let token = mint(&stack, "Reporting.Bot", format).await;
        let (status, body, _) = ask(&base, Some(&token), &bob).await;
        assert_eq!(status, 200, "allowed machine ({format}): {body}");
    }
    assert_eq!(profile_reads(&stack).await, before + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_no_machine_may_ask() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    stack.new_application(&stack.alice, &[]).await;
    let rep_id = stack.machine_id("CandidateRepresenter.Bot");
    stack.mock.create_machine("Scoped.Bot", &[&rep_id]);
    let rep = stack.representer(|_| {});
    let base = serve(rep).await;
    // Valid tokens scoped to the representer admit no machine; the representer's own JWT is
    // scoped to the API, not to itself, so it is not even a credential here.
    for (machine, format, expected) in [
        ("Scoped.Bot", "opaque", 403),
        ("Scoped.Bot", "jwt", 403),
        ("CandidateRepresenter.Bot", "jwt", 401),
    ] {
        let token = mint(&stack, machine, format).await;
        let (status, body, _) = ask(&base, Some(&token), &stack.alice).await;
        assert_eq!(status, expected, "{machine} ({format}): {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_public_keys_users_are_not_trusted() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    stack.new_application(&stack.alice, &[]).await;
    let rep = stack.representer_with(|c| c.jwt.clerk_jwks_url = None);
    let base = serve(rep).await;
    let (status, body, _) = ask(&base, Some(&stack.user_token(&stack.alice)), &stack.alice).await;
    // The missing key is the operator's to fix (a WARN at start says so); the caller's token
    // is simply of a type this representer cannot accept: 401, never a 500 per request.
    assert_eq!(
        status, 401,
        "a session cannot be verified without CLERK_JWT_KEY or CLERK_JWKS_URL: {body}"
    );
    assert_eq!(body["detail"], "token-type-not-accepted");
    assert!(body.get("answer").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_minted_for_another_origin_is_refused() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let base = serve(stack.representer(|_| {})).await;
    let foreign = stack.mock.session_token_with(&stack.alice, |_, c| {
        c["azp"] = serde_json::json!("https://elsewhere.example");
    });
    let (status, body, _) = ask(&base, Some(&foreign), &stack.alice).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["detail"], "token-invalid-authorized-parties");
}
