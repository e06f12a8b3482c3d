//! Every route for each kind of caller; the OpenAPI document covers the router; ops endpoints.

use std::collections::BTreeSet;

use jobtracker_api::policy::{Action, ROUTES};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::TestApp;

/// (method, path, body, [(caller name, token, expected status)])
type Case<'a> = (Method, String, Option<Value>, Vec<(&'a str, &'a str, u16)>);

async fn access_matrix(app: &TestApp) {
    let created = app
        .application(&app.alice, &["Q one?", "Q two?"], "queued")
        .await;
    app.profile(&app.bob).await;
    let (id, q0, q1) = (
        created["id"].as_str().expect("id"),
        created["questions"][0]["id"].as_str().expect("q"),
        created["questions"][1]["id"].as_str().expect("q"),
    );
    let resume = created["resume_id"].as_str().expect("resume");
    let spare = app
        .upload(
            &app.alice,
            &app.user(&app.alice),
            "spare.txt",
            "text/plain",
            b"spare".to_vec(),
        )
        .await;
    let spare = spare.body["id"].as_str().expect("spare resume").to_owned();
    let alice = app.user(&app.alice);
    let bob = app.user(&app.bob);
    let rep = app.machine("CandidateRepresenter.Bot");
    let applier = app.machine("JobApplier.Bot");
    let api_id = app.mock.machine_by_name("JobTracker.API").expect("api").id;
    app.mock.create_machine("Unmapped.Bot", &[&api_id]);
    let stranger = app.machine("Unmapped.Bot");
    let (a, b) = (app.alice.clone(), app.bob.clone());
    let profile = json!({"full_name": "X", "email": "x@example.com"});

    let cases: Vec<Case> = vec![
        (
            Method::GET,
            "/api/whoami".into(),
            None,
            vec![
                ("alice", &alice, 200),
                ("rep", &rep, 200),
                ("applier", &applier, 200),
            ],
        ),
        (
            Method::POST,
            "/api/users".into(),
            Some(profile.clone()),
            vec![
                ("bob", &bob, 200),
                ("rep", &rep, 403),
                ("applier", &applier, 403),
            ],
        ),
        (
            Method::GET,
            "/api/users/me".into(),
            None,
            vec![
                ("alice", &alice, 200),
                ("rep", &rep, 403),
                ("applier", &applier, 403),
            ],
        ),
        (
            Method::GET,
            format!("/api/users/{a}"),
            None,
            vec![
                ("alice", &alice, 200),
                ("bob", &bob, 403),
                ("rep", &rep, 200),
                ("applier", &applier, 200),
            ],
        ),
        (
            Method::GET,
            format!("/api/users/{a}/resumes"),
            None,
            vec![
                ("alice", &alice, 200),
                ("bob", &bob, 403),
                ("rep", &rep, 200),
                ("applier", &applier, 200),
            ],
        ),
        (
            Method::GET,
            format!("/api/resumes/{resume}/content"),
            None,
            vec![
                ("alice", &alice, 200),
                ("bob", &bob, 404),
                ("rep", &rep, 403),
                ("applier", &applier, 200),
            ],
        ),
        (
            Method::GET,
            "/api/job-applications".into(),
            None,
            vec![
                ("alice", &alice, 200),
                ("bob", &bob, 200),
                ("rep", &rep, 200),
                ("applier", &applier, 200),
            ],
        ),
        (
            Method::GET,
            format!("/api/job-applications/{id}"),
            None,
            vec![
                ("alice", &alice, 200),
                ("bob", &bob, 404),
                ("rep", &rep, 200),
                ("applier", &applier, 200),
            ],
        ),
        (
            Method::GET,
            format!("/api/job-applications/{id}/events"),
            None,
            vec![
                ("alice", &alice, 200),
                ("bob", &bob, 404),
                ("rep", &rep, 200),
                ("applier", &applier, 200),
            ],
        ),
        (
            Method::GET,
            "/api/questions?unanswered=true".into(),
            None,
            vec![
                ("alice", &alice, 200),
                ("bob", &bob, 200),
                ("rep", &rep, 200),
                ("applier", &applier, 403),
            ],
        ),
        (
            Method::PUT,
            format!("/api/job-applications/{id}/questions/{q0}/answer"),
            Some(json!({"answer": "Yes"})),
            vec![
                ("bob", &bob, 404),
                ("applier", &applier, 403),
                ("alice", &alice, 200),
                ("rep", &rep, 409),
            ],
        ),
        (
            Method::PUT,
            format!("/api/job-applications/{id}/questions/{q1}/answer"),
            Some(json!({"answer": "Seven"})),
            vec![("rep", &rep, 200)],
        ),
        (
            Method::PUT,
            format!("/api/job-applications/{id}/lease"),
            Some(json!({})),
            vec![
                ("alice", &alice, 403),
                ("rep", &rep, 403),
                ("applier", &applier, 409),
            ],
        ),
        (
            Method::PATCH,
            format!("/api/job-applications/{id}/status"),
            Some(json!({"status": "submitted"})),
            vec![
                ("bob", &bob, 404),
                ("rep", &rep, 403),
                ("alice", &alice, 403),
                ("applier", &applier, 409),
            ],
        ),
        (
            Method::POST,
            "/api/job-applications/claim".into(),
            None,
            vec![
                ("alice", &alice, 403),
                ("rep", &rep, 403),
                ("applier", &applier, 200),
            ],
        ),
        (
            Method::DELETE,
            format!("/api/job-applications/{id}/lease"),
            None,
            vec![
                ("alice", &alice, 403),
                ("rep", &rep, 403),
                ("applier without its lease_id", &applier, 409),
            ],
        ),
        (
            Method::PATCH,
            format!("/api/job-applications/{id}/status"),
            Some(json!({"status": "saved"})),
            vec![("alice", &alice, 200)],
        ),
        (
            Method::POST,
            format!("/api/users/{a}/resumes?file_name=cv.txt"),
            None,
            vec![
                ("bob", &bob, 403),
                ("rep", &rep, 403),
                ("applier", &applier, 403),
            ],
        ),
        (
            Method::DELETE,
            format!("/api/users/{a}/resumes/{spare}"),
            None,
            vec![
                ("bob", &bob, 403),
                ("rep", &rep, 403),
                ("applier", &applier, 403),
                ("alice", &alice, 204),
                ("alice again", &alice, 404),
            ],
        ),
        (
            Method::DELETE,
            format!("/api/users/{a}/resumes/{resume}"),
            None,
            vec![("alice, whose application uses it", &alice, 409)],
        ),
        (
            Method::POST,
            "/api/job-applications".into(),
            Some(json!({"company": "B", "position": "P"})),
            vec![
                ("bob", &bob, 201),
                ("rep", &rep, 403),
                ("applier", &applier, 403),
            ],
        ),
    ];
    for (method, path, body, expectations) in cases {
        for (who, token, expected) in expectations {
            let answer = app
                .call(method.clone(), &path, Some(token), body.clone())
                .await;
            assert_eq!(
                answer.status.as_u16(),
                expected,
                "{who} {method} {path}: {}",
                answer.body
            );
            if expected >= 400 {
                assert_eq!(
                    answer
                        .headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok()),
                    Some("application/problem+json"),
                    "{who} {method} {path}"
                );
            }
        }
        // Nobody without a token, and no machine without a role, gets anything.
        assert_eq!(
            app.call(method.clone(), &path, None, body.clone())
                .await
                .status,
            401,
            "anonymous {method} {path}"
        );
        let s = app
            .call(method.clone(), &path, Some(&stranger), body.clone())
            .await;
        if path == "/api/whoami" {
            assert_eq!(s.status, 200, "whoami shows a machine with no role itself");
            assert_eq!(s.body["role"], Value::Null);
        } else {
            assert_eq!(s.status, 403, "unmapped machine {method} {path}");
        }
    }
    let own = app.get("/api/job-applications", &bob).await;
    assert!(
        own.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["user_id"] == b.as_str()),
        "users see only their own"
    );
}
both!(access_matrix);

async fn whoami_shapes(app: &TestApp) {
    let u = app.get("/api/whoami", &app.user(&app.alice)).await.body;
    assert_eq!(u["kind"], "user");
    assert_eq!(u["user_id"], app.alice.as_str());
    assert!(u["session_id"].as_str().expect("sid").starts_with("sess_"));
    let m = app
        .get("/api/whoami", &app.machine("JobApplier.Bot"))
        .await
        .body;
    assert_eq!(m["kind"], "machine");
    assert_eq!(
        m["machine_id"],
        app.mock.machine_by_name("JobApplier.Bot").expect("m").id
    );
    assert_eq!(m["role"], "job-applier");
    assert!(m["token_id"].as_str().expect("tid").starts_with("mt_"));
    assert_eq!(
        m["scopes"],
        json!([app.mock.machine_by_name("JobTracker.API").expect("api").id])
    );
    let jwt = app.machine_token("CandidateRepresenter.Bot", json!({"token_format": "jwt"}));
    assert_eq!(
        app.get("/api/whoami", &jwt).await.body["role"],
        "candidate-representer"
    );
}
both!(whoami_shapes);

async fn openapi_covers_the_router(app: &TestApp) {
    let doc = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    let paths = doc["paths"].as_object().expect("paths");
    for contract in [
        "/healthz",
        "/readyz",
        "/api/whoami",
        "/api/users",
        "/api/users/me",
        "/api/users/{user_id}",
        "/api/users/{user_id}/resumes",
        "/api/users/{user_id}/resumes/{resume_id}",
        "/api/resumes/{resume_id}/content",
        "/api/job-applications",
        "/api/job-applications/{id}",
        "/api/job-applications/{id}/events",
        "/api/job-applications/{id}/status",
        "/api/job-applications/claim",
        "/api/questions",
        "/api/job-applications/{id}/questions/{qid}/answer",
    ] {
        assert!(
            paths.contains_key(contract),
            "{contract} is missing from the OpenAPI document"
        );
    }
    // /metrics is on the metrics listener only: not documented, not served here.
    assert!(!paths.contains_key("/metrics"));
    assert_eq!(
        app.call(Method::GET, "/metrics", None, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.scrape().await.status, StatusCode::OK);
    // Every documented operation is routed (no 404/405), and every /api one needs a token.
    for (path, item) in paths {
        for method in item.as_object().expect("item").keys() {
            let concrete = path
                .replace("{user_id}", &app.alice)
                .replace("{resume_id}", "res_000000000000000000000000")
                .replace("{qid}", "q_000000000000000000000000")
                .replace("{id}", "app_000000000000000000000000");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let a = app.call(m, &concrete, None, None).await;
            assert!(
                a.status != StatusCode::NOT_FOUND && a.status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            if path.starts_with("/api/") {
                assert_eq!(a.status, 401, "{method} {path} without a token");
                assert!(
                    item[method]["security"].is_array(),
                    "{method} {path} documents no security"
                );
            }
        }
    }
}
both!(openapi_covers_the_router);

/// The statuses an operation must list, derived from the route table and the operation's shape:
/// every `/api` route authenticates (401; 503 when Clerk or the database is down) and refuses
/// (403) except `whoami`; ids in the path are validated (422) and looked up (404); a JSON body
/// can be malformed (400), too large (413), the wrong type (415, when required) or invalid
/// (422); the state-changing routes with rules (and the resume quota) answer 409.
fn expected_errors(method: &str, path: &str, action: Action, op: &Value) -> BTreeSet<u16> {
    let mut out = BTreeSet::from([401, 503]);
    if action != Action::Whoami {
        out.insert(403);
    }
    if path.contains('{') {
        out.insert(422); // ids in the path are validated
    }
    if ["{id}", "{resume_id}", "{qid}"]
        .iter()
        .any(|p| path.contains(p))
    {
        out.insert(404);
    }
    if let Some(body) = op.get("requestBody") {
        if body["content"].get("application/json").is_some() {
            out.extend([400, 413, 422]);
            if body["required"] == true {
                out.insert(415);
            }
        } else {
            // Raw uploads: size, type and name.
            out.extend([413, 415, 422]);
        }
    }
    if matches!(
        action,
        Action::UpdateStatus
            | Action::ManageLease
            | Action::AnswerQuestion
            | Action::UploadResume
            | Action::DeleteResume
    ) {
        out.insert(409);
    }
    if method == "get" && !path.contains('{') && op.get("parameters").is_some() {
        out.insert(422); // query parameters
    }
    // Routes that look a user's profile up.
    if matches!(
        (method, path),
        ("get", "/api/users/me")
            | ("get", "/api/users/{user_id}")
            | ("post", "/api/job-applications")
            | ("post", "/api/users/{user_id}/resumes")
    ) {
        out.insert(404);
    }
    out
}

async fn openapi_lists_every_status_the_route_table_implies(app: &TestApp) {
    let doc = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            if path.starts_with("/api/") {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, table, "the document and the route table differ");

    let api_id = app.mock.machine_by_name("JobTracker.API").expect("api").id;
    app.mock.create_machine("NoRole.Bot", &[&api_id]);
    let stranger = app.machine("NoRole.Bot");
    for (method, path, action) in ROUTES {
        let op = &doc["paths"][path][method];
        let listed: BTreeSet<u16> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(|k| k.parse().expect("numeric status"))
            .collect();
        let errors: BTreeSet<u16> = listed.iter().copied().filter(|s| *s >= 400).collect();
        assert_eq!(
            errors,
            expected_errors(method, path, *action, op),
            "{method} {path}: the listed error statuses"
        );
        assert!(
            listed.iter().any(|s| (200..300).contains(s)),
            "{method} {path} lists no success"
        );
        for status in &errors {
            let r = &op["responses"][status.to_string()];
            assert!(
                r["content"].get("application/problem+json").is_some(),
                "{method} {path} {status} is not problem+json"
            );
        }
        // What the route really answers a machine with no role is listed.
        let concrete = path
            .replace("{user_id}", &app.alice)
            .replace("{resume_id}", "res_000000000000000000000000")
            .replace("{qid}", "q_000000000000000000000000")
            .replace("{id}", "app_000000000000000000000000");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let a = app.call(m, &concrete, Some(&stranger), None).await;
        assert!(
            listed.contains(&a.status.as_u16()),
            "{method} {path} answered {} to a machine with no role, which it does not list",
            a.status
        );
    }
    // The whole point of #20's item 7: 403 everywhere but whoami.
    for (method, path, _) in ROUTES {
        let has_403 = doc["paths"][path][method]["responses"].get("403").is_some();
        assert_eq!(has_403, *path != "/api/whoami", "{method} {path}");
    }
}
both!(openapi_lists_every_status_the_route_table_implies);

async fn swagger_ui_is_served_offline(app: &TestApp) {
    // docs/api.md names the route /swagger: it redirects to the UI's folder (reqwest follows it).
    assert_eq!(
        app.call(Method::GET, "/swagger", None, None).await.status,
        200
    );
    let page = app.call(Method::GET, "/swagger/", None, None).await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.bytes);
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "no asset is loaded from another host"
    );
    let init = app
        .call(Method::GET, "/swagger/swagger-initializer.js", None, None)
        .await;
    assert_eq!(init.status, 200);
    assert!(String::from_utf8_lossy(&init.bytes).contains("/openapi.json"));
}
both!(swagger_ui_is_served_offline);

async fn every_response_carries_the_browser_protections(app: &TestApp) {
    for (path, token) in [
        ("/swagger/", None),
        ("/swagger/swagger-initializer.js", None),
        ("/openapi.json", None),
        ("/api/whoami", Some(app.alice.as_str())),
        ("/api/whoami", None),
        ("/no-such-route", None),
    ] {
        let reply = app.call(Method::GET, path, token, None).await;
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_owned()
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
}
both!(every_response_carries_the_browser_protections);

async fn made_up_methods_do_not_grow_metrics(app: &TestApp) {
    // Warm the label set with what a normal client produces.
    app.call(Method::GET, "/healthz", None, None).await;
    let before = app.scrape().await.bytes.len();
    for i in 0..301 {
        let method = Method::from_bytes(format!("MADEUP{i}").as_bytes()).expect("token");
        app.call(method, "/healthz", None, None).await;
    }
    let after = app.scrape().await.bytes.len();
    assert!(
        after < before + 20 * 1024,
        "/metrics grew from {before} to {after} bytes"
    );
    let text = String::from_utf8_lossy(&app.scrape().await.bytes).into_owned();
    assert!(
        !text.contains("MADEUP"),
        "a client-made method became a label"
    );
    assert!(text.contains("method=\"other\""), "{text}");
}
both!(made_up_methods_do_not_grow_metrics);

async fn ops_endpoints(app: &TestApp) {
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.status,
        200
    );
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None).await.status,
        200
    );
    let token = app.machine("JobApplier.Bot");
    for _ in 0..3 {
        app.get("/api/whoami", &token).await;
    }
    let a = app.scrape().await;
    let text = String::from_utf8_lossy(&a.bytes);
    assert!(
        text.contains("http_requests_total{method=\"GET\",route=\"/api/whoami\",status=\"200\"} 3"),
        "{text}"
    );
    assert!(text.contains("m2m_verify_cache_hits_total 2"), "{text}");
    assert!(text.contains("m2m_verify_cache_misses_total 1"), "{text}");
    assert!(
        text.contains("clerk_calls_total{operation=\"verify\",outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("clerk_calls_total{operation=\"jwks\",outcome=\"ok\"} 1"),
        "{text}"
    );
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert!(health.headers.get("x-request-id").is_some());
}
both!(ops_endpoints);

async fn clerk_outage_is_503_not_401(app: &TestApp) {
    app.mock.set_outage(Some(503));
    let token = "mt_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let a = app.get("/api/whoami", token).await;
    assert_eq!(a.status, 503);
    assert!(a.headers.get("retry-after").is_some());
}
both!(clerk_outage_is_503_not_401);

/// The attack that motivated receiver binding, through the real router: the applier's scope to
/// the API is removed, then it mints tokens of both formats; both are refused, and a JWT minted
/// after the scope is restored is accepted again.
async fn tokens_not_scoped_to_the_api_are_refused_in_both_formats(app: &TestApp) {
    let api = app.mock.machine_by_name("JobTracker.API").expect("api").id;
    let applier = app.mock.machine_by_name("JobApplier.Bot").expect("bot").id;
    let scope_url = format!("{}/machines/{applier}/scopes", app.mock.api_url());
    let removed = app
        .http
        .delete(format!("{scope_url}/{api}"))
        .bearer_auth(app.mock.instance_secret_key())
        .send()
        .await
        .expect("mock");
    assert_eq!(removed.status(), StatusCode::OK);
    for (format, reason) in [
        ("opaque", "token-not-found"),
        ("jwt", "token-not-scoped-to-receiver"),
    ] {
        let token = app.machine_token("JobApplier.Bot", json!({ "token_format": format }));
        let a = app.get("/api/whoami", &token).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{format}");
        assert_eq!(a.body["detail"], reason, "{format}");
        assert!(
            !String::from_utf8_lossy(&a.bytes).contains(&token),
            "{format}: the token is echoed"
        );
    }
    let added = app
        .http
        .post(&scope_url)
        .bearer_auth(app.mock.instance_secret_key())
        .json(&json!({ "to_machine_id": api }))
        .send()
        .await
        .expect("mock");
    assert_eq!(added.status(), StatusCode::OK);
    let jwt = app.machine_token("JobApplier.Bot", json!({ "token_format": "jwt" }));
    let a = app.get("/api/whoami", &jwt).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["role"], "job-applier");
}
both!(tokens_not_scoped_to_the_api_are_refused_in_both_formats);

/// `/metrics` parses as Prometheus text (prometheus-parse, every line understood) and carries
/// every family docs/operations.md lists: requests by route template, latency, Clerk calls,
/// the verification caches, refused authentications and status transitions.
async fn metrics_parse_and_carry_every_family(app: &TestApp) {
    use test_support::metrics::Metrics;
    let alice = app.user(&app.alice);
    // Two reads of one session JWT: a miss, then a hit of the JWT cache.
    for _ in 0..2 {
        assert_eq!(app.get("/api/whoami", &alice).await.status, 200);
    }
    // A machine's opaque token: one Clerk verification, then the cache.
    let bot = app.machine("JobApplier.Bot");
    for _ in 0..2 {
        assert_eq!(app.get("/api/whoami", &bot).await.status, 200);
    }
    // Refused: no token; a token that does not exist at Clerk.
    assert_eq!(
        app.call(Method::GET, "/api/whoami", None, None)
            .await
            .status,
        401
    );
    let unknown = format!("mt_{}", "0".repeat(32));
    assert_eq!(app.get("/api/whoami", &unknown).await.status, 401);
    // Created (none → saved), then queued.
    let created = app.application(&app.alice, &[], "saved").await;
    let id = created["id"].as_str().expect("id");
    let queued = app
        .call(
            Method::PATCH,
            &format!("/api/job-applications/{id}/status"),
            Some(&alice),
            Some(serde_json::json!({"status": "queued"})),
        )
        .await;
    assert_eq!(queued.status, 200, "{}", queued.body);

    let answer = app.scrape().await;
    assert_eq!(
        answer.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let m = Metrics::parse(&String::from_utf8_lossy(&answer.bytes));
    let text = &m.text;
    for (family, kind) in [
        ("http_requests_total", "counter"),
        ("http_request_duration_seconds", "histogram"),
        ("clerk_calls_total", "counter"),
        ("auth_failures_total", "counter"),
        ("application_transitions_total", "counter"),
        ("m2m_verify_cache_hits_total", "counter"),
        ("m2m_verify_cache_misses_total", "counter"),
        ("m2m_verify_cache_evictions_total", "counter"),
        ("m2m_jwt_cache_hits_total", "counter"),
        ("m2m_jwt_cache_misses_total", "counter"),
        ("m2m_jwt_cache_evictions_total", "counter"),
        ("m2m_jwt_cache_entries", "gauge"),
    ] {
        assert!(m.declares(family, kind), "no {kind} {family}:\n{text}");
    }
    let whoami = [("method", "GET"), ("route", "/api/whoami")];
    assert_eq!(
        m.value(
            "http_requests_total",
            &[whoami[0], whoami[1], ("status", "200")]
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        m.value(
            "http_requests_total",
            &[whoami[0], whoami[1], ("status", "401")]
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        m.sample(
            "http_requests_total",
            &[("route", "/api/job-applications/{id}/status")]
        )
        .is_some(),
        "route templates, not paths:\n{text}"
    );
    assert!(!text.contains(id), "an id became a label:\n{text}");
    match &m
        .sample("http_request_duration_seconds", &whoami)
        .map(|s| &s.value)
    {
        Some(prometheus_parse::Value::Histogram(b)) => {
            assert_eq!(b.last().map(|b| b.count), Some(6.0), "{text}")
        }
        other => panic!("no latency histogram: {other:?}\n{text}"),
    }
    assert_eq!(
        m.value("m2m_verify_cache_misses_total", &[]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        m.value("m2m_verify_cache_hits_total", &[]),
        Some(1.0),
        "{text}"
    );
    // Each helper call mints a session JWT of its own: at least the second whoami hit.
    assert!(
        m.value("m2m_jwt_cache_misses_total", &[]) >= Some(1.0),
        "{text}"
    );
    assert!(
        m.value("m2m_jwt_cache_hits_total", &[]) >= Some(1.0),
        "{text}"
    );
    assert_eq!(
        m.value(
            "clerk_calls_total",
            &[("operation", "verify"), ("outcome", "ok")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m.value(
            "clerk_calls_total",
            &[("operation", "verify"), ("outcome", "not_found")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m.value(
            "auth_failures_total",
            &[("kind", "missing"), ("reason", "none")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m.value(
            "auth_failures_total",
            &[("kind", "invalid"), ("reason", "token-not-found")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m.value(
            "application_transitions_total",
            &[("from", "none"), ("to", "saved")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m.value(
            "application_transitions_total",
            &[("from", "saved"), ("to", "queued")]
        ),
        Some(1.0),
        "{text}"
    );
}
both!(metrics_parse_and_carry_every_family);
