//! What a client can make the API log: a bounded amount, whatever it sends. Refusals (401, 403,
//! 404, 413, 422, a spent verification budget's 503) write no line per request; an
//! `x-request-id` is kept only when short and plain, otherwise replaced by the API's own.

use futures::StreamExt;
use reqwest::Method;
use service_kit::{LogArgs, LogFormat};
use test_support::logs::LogCapture;

use crate::helpers::{Backend, TestApp, random_token, spawn_app, spawn_app_with};

/// What the API logs at `info` in the pretty format (the one a client's text could forge fields
/// in), captured from this thread until the guard drops.
fn capture_logs() -> (LogCapture, tracing::dispatcher::DefaultGuard) {
    let capture = LogCapture::default();
    let log = LogArgs {
        filter: "info".into(),
        log_format: LogFormat::Pretty,
    };
    let guard = tracing::dispatcher::set_default(&service_kit::subscriber(&log, capture.clone()));
    (capture, guard)
}

/// `x-request-id`s no client should get into a log line or back in an answer.
fn hostile_ids() -> Vec<Vec<u8>> {
    vec![
        vec![b'a'; 64 * 1024],
        vec![b'b'; 65],
        b"abc\xffdef".to_vec(),
        b"x machine_id=mch_admin".to_vec(),
        b"x\" machine_id=mch_admin".to_vec(),
    ]
}

/// One refused request of kind `i % 6`, carrying `request_id`: the status it got.
async fn refused(app: &TestApp, i: usize, request_id: &[u8], tokens: &Tokens) -> u16 {
    let id = reqwest::header::HeaderValue::from_bytes(request_id).expect("header value");
    let url = |path: &str| format!("{}{path}", app.base);
    let req = match i % 6 {
        // No token: 401.
        0 => app.http.get(url("/api/whoami")),
        // A token Clerk never issued: 401 within the budget, 503 once it is spent.
        1 | 2 => app.http.get(url("/api/whoami")).bearer_auth(random_token()),
        // No such route: 404.
        3 => app.http.get(url(&format!("/nope/{i}"))),
        // Another user's profile: 403 (or 404).
        4 => app
            .http
            .get(url(&format!("/api/users/{}", app.bob)))
            .bearer_auth(&tokens.alice),
        // A body over the limit: 413.
        _ => app
            .http
            .post(url("/api/users"))
            .bearer_auth(&tokens.alice)
            .header("content-type", "application/json")
            .body(vec![b' '; 70 * 1024]),
    };
    let answer = req.header("x-request-id", id).send().await.expect("API");
    let status = answer.status().as_u16();
    let _ = answer.bytes().await;
    status
}

struct Tokens {
    alice: String,
}

/// The spray, in one thread: the log capture (a thread's default subscriber) sees every line the
/// API writes while serving it.
#[tokio::test]
async fn a_spray_of_refused_requests_grows_the_log_by_a_bounded_number_of_bytes() {
    let (capture, _logging) = capture_logs();
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let tokens = Tokens {
        alice: app.user(&app.alice),
    };
    app.profile(&app.alice).await;
    app.profile(&app.bob).await;
    let ids = hostile_ids();
    // Warm-up: the verification budget (50 misses) is spent, so its once-a-minute line is out.
    let warm: Vec<u16> = futures::stream::iter(0..120)
        .map(|i| refused(&app, 1, &ids[i % ids.len()], &tokens))
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(warm.contains(&503), "the budget was not spent: {warm:?}");
    let before = capture.len();
    let statuses: Vec<u16> = futures::stream::iter(0..1_200)
        .map(|i| refused(&app, i, &ids[i % ids.len()], &tokens))
        .buffer_unordered(8)
        .collect()
        .await;
    let grown = capture.len() - before;
    for expected in [401, 404, 413, 503] {
        assert!(
            statuses.contains(&expected),
            "no {expected} in {statuses:?}"
        );
    }
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s, 401 | 403 | 404 | 413 | 503)),
        "{statuses:?}"
    );
    let text = capture.text();
    // A few lines at most (a once-a-minute budget line), never one per request.
    assert!(
        grown <= 4 * 1024,
        "1,200 refused requests grew the log by {grown} bytes:\n{}",
        &text[before..text.len().min(before + 4000)]
    );
    for line in text.lines() {
        assert!(line.len() <= 2 * 1024, "a line of {} bytes", line.len());
    }
    assert!(
        !text.contains("mch_admin"),
        "a client's request id was logged"
    );
    assert!(
        !text.contains(&"b".repeat(65)),
        "a long request id was logged"
    );
}

/// A good `x-request-id` is kept and echoed; a long one, one with a 0xFF byte or with spaces is
/// replaced by the API's own (`req_…`), in the answer as in the logs.
async fn request_ids_are_kept_only_when_short_and_plain(app: &TestApp) {
    let send = |id: Vec<u8>| {
        let req = app.http.get(format!("{}/healthz", app.base)).header(
            "x-request-id",
            reqwest::header::HeaderValue::from_bytes(&id).expect("header value"),
        );
        async move {
            let answer = req.send().await.expect("API");
            assert_eq!(answer.status(), 200);
            answer
                .headers()
                .get_all("x-request-id")
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect::<Vec<_>>()
        }
    };
    for good in [&b"client-7f3a:9.b_C"[..], &[b'z'; 64]] {
        assert_eq!(send(good.to_vec()).await, vec![good.to_vec()]);
    }
    for bad in hostile_ids() {
        let echoed = send(bad.clone()).await;
        assert_eq!(echoed.len(), 1, "{echoed:?}");
        assert!(
            echoed[0] != bad,
            "a hostile id ({} bytes) was echoed",
            bad.len()
        );
        assert!(
            echoed[0].starts_with(b"req_"),
            "{:?}",
            String::from_utf8_lossy(&echoed[0])
        );
        assert!(service_kit::request_id::is_acceptable(&echoed[0]));
    }
    // None sent: one of ours.
    let none = app
        .call(Method::GET, "/healthz", None, None)
        .await
        .headers
        .get("x-request-id")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    assert!(none.starts_with(b"req_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids() {
    if let Some(app) = spawn_app(Backend::Sqlite).await {
        request_ids_are_kept_only_when_short_and_plain(&app).await;
    }
}

/// With this service's own key refused by Clerk (a revoked or mistyped CLERK_MACHINE_SECRET_KEY),
/// every opaque token fails the same way: the operator sees it, a few lines a minute with a
/// count, not one line per request a client sends.
#[tokio::test]
async fn a_rejected_own_key_is_logged_a_few_times_not_per_request() {
    let (capture, _logging) = capture_logs();
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.clerk.clerk_machine_secret_key =
            Some("ak_this_key_was_revoked_at_clerk_000000000000".into());
        // Every request reaches Clerk: no budget refusal hides the path under test.
        c.verifier.m2m_verify_miss_burst = 10_000;
        c.verifier.m2m_verify_miss_per_client_burst = 10_000;
    })
    .await
    else {
        return;
    };
    let before = capture.len();
    let statuses: Vec<u16> = futures::stream::iter(0..300)
        .map(|_| async {
            let answer = app
                .http
                .get(format!("{}/api/whoami", app.base))
                .bearer_auth(random_token())
                .send()
                .await
                .expect("API");
            answer.status().as_u16()
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 500), "{statuses:?}");
    let text = capture.text();
    let lines = text[before..]
        .lines()
        .filter(|l| l.contains("CLERK_MACHINE_SECRET_KEY"))
        .count();
    assert!(
        (1..=12).contains(&lines),
        "300 requests wrote {lines} lines about the key:\n{}",
        &text[before..text.len().min(before + 4000)]
    );
    assert!(
        !text.contains("ak_this_key_was_revoked"),
        "the key was logged"
    );
}
