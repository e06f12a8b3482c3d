//! The tower layer: it answers exactly as the axum extractor does (same statuses, headers and
//! bodies, for every kind of refusal), answers gRPC requests with gRPC statuses, applies
//! per-path requirements, and verifies a request once however many layers it crosses.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use axum::routing::get;
use axum::{Extension, Json, Router};
use clerk_mock::{Endpoint, Seed};
use m2m_core::auth_axum::{RequireMachine, RequireUser, require_machine};
use m2m_core::{AuthLayer, Principal, Require, Verifier};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::verify::{Fixture, fixture, fixture_with};

/// What a client sees of an answer.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

async fn send(app: Router, path: &str, auth: Option<&str>, grpc: bool) -> Seen {
    let mut req = Request::builder().uri(path);
    if let Some(v) = auth {
        req = req.header(header::AUTHORIZATION, v);
    }
    if grpc {
        req = req.header(header::CONTENT_TYPE, "application/grpc+proto");
    }
    let resp = app
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let names = [
        "www-authenticate",
        "content-type",
        "retry-after",
        "grpc-status",
        "grpc-message",
    ];
    let headers = names
        .iter()
        .filter_map(|n| {
            resp.headers()
                .get(*n)
                .map(|v| (n.to_string(), v.to_str().unwrap_or("<bytes>").to_owned()))
        })
        .collect();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    Seen {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn who(p: &Principal) -> Json<Value> {
    Json(json!({ "actor": p.actor() }))
}

/// The routes, guarded by extractors.
fn with_extractors(verifier: Arc<Verifier>, applier: String) -> Router {
    Router::new()
        .route("/any", get(|p: Principal| async move { who(&p) }))
        .route(
            "/users",
            get(|RequireUser(u): RequireUser| async move {
                Json(json!({ "actor": format!("user:{}", u.user_id) }))
            }),
        )
        .route(
            "/machines",
            get(|RequireMachine(m): RequireMachine| async move {
                Json(json!({ "actor": format!("machine:{}", m.machine_id) }))
            }),
        )
        .route(
            "/applier",
            get(move |p: Principal| {
                let applier = applier.clone();
                async move { require_machine(&p, &[applier.as_str()]).map(|_| who(&p)) }
            }),
        )
        .with_state(verifier)
}

/// The same routes, guarded by the layer.
fn with_layer(verifier: Arc<Verifier>, applier: String) -> Router {
    let handler = get(|Extension(p): Extension<Principal>| async move { who(&p) });
    Router::new()
        .route("/any", handler.clone())
        .route("/users", handler.clone())
        .route("/machines", handler.clone())
        .route("/applier", handler)
        .layer(
            AuthLayer::new(verifier)
                .require_for("/users", Require::user())
                .require_for("/machines", Require::machine())
                .require_for("/applier", Require::machine_ids([applier])),
        )
}

fn mint(f: &Fixture, machine: &str) -> String {
    let id = f.mock.machine_by_name(machine).expect("machine").id;
    let created = f.mock.mint(&id, &json!({ "seconds_until_expiration": 60 }));
    format!("Bearer {}", created["token"].as_str().expect("token"))
}

fn applier(f: &Fixture) -> String {
    f.mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .id
}

/// Every kind of answer, through the extractors and through the layer, over HTTP and gRPC.
#[tokio::test]
async fn the_layer_answers_exactly_as_the_extractor_and_grpc_gets_the_matching_status() {
    let f = fixture().await;
    let verifier = Arc::new(f.verifier_clone());
    let user = format!("Bearer {}", f.mock.session_token(&f.user));
    let expired = format!(
        "Bearer {}",
        f.mock
            .session_token_with(&f.user, |_, c| c["exp"] = json!(1))
    );
    let bot = mint(&f, "JobApplier.Bot");
    let other_bot = mint(&f, "CandidateRepresenter.Bot");
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("/any", None),
        ("/any", Some("Basic abc")),
        ("/any", Some("Bearer a b")),
        ("/any", Some(&expired)),
        ("/any", Some("Bearer mt_0123456789ABCDEFGHIJKLMNOPQRSTUV")),
        ("/any", Some(&user)),
        ("/any", Some(&bot)),
        ("/users", Some(&user)),
        ("/users", Some(&bot)),
        ("/machines", Some(&user)),
        ("/machines", Some(&bot)),
        ("/applier", Some(&bot)),
        ("/applier", Some(&other_bot)),
        ("/applier", Some(&user)),
    ];
    let mut statuses = Vec::new();
    for (path, auth) in &cases {
        let a = applier(&f);
        let extracted = send(
            with_extractors(verifier.clone(), a.clone()),
            path,
            *auth,
            false,
        )
        .await;
        let layered = send(with_layer(verifier.clone(), a.clone()), path, *auth, false).await;
        assert_eq!(extracted, layered, "{path} {auth:?}");
        statuses.push(extracted.status);

        let grpc = send(with_layer(verifier.clone(), a), path, *auth, true).await;
        if extracted.status == 200 {
            assert_eq!(grpc.status, 200);
            assert!(
                grpc.headers.iter().all(|(n, _)| n != "grpc-status"),
                "{grpc:?}"
            );
            continue;
        }
        let code = match extracted.status {
            401 => "16",
            403 => "7",
            other => panic!("unexpected status {other}"),
        };
        let header = |seen: &Seen, name: &str| {
            seen.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(grpc.status, 200, "gRPC errors travel in grpc-status");
        assert_eq!(header(&grpc, "grpc-status").as_deref(), Some(code));
        assert_eq!(
            header(&grpc, "content-type").as_deref(),
            Some("application/grpc")
        );
        assert_eq!(
            header(&grpc, "grpc-message").as_deref(),
            extracted.body["detail"].as_str(),
            "{path} {auth:?}"
        );
        assert_eq!(
            header(&grpc, "www-authenticate"),
            header(&extracted, "www-authenticate")
        );
        for part in auth
            .unwrap_or_default()
            .split(['.', ' '])
            .filter(|p| p.len() > 8)
        {
            assert!(
                !format!("{grpc:?}{extracted:?}").contains(part),
                "token echoed"
            );
        }
    }
    assert_eq!(
        statuses,
        [
            401, 401, 401, 401, 401, 200, 200, 200, 403, 403, 200, 200, 403, 403
        ]
    );
}

#[tokio::test]
async fn clerk_down_is_503_with_retry_after_or_grpc_unavailable() {
    let f = fixture().await;
    f.mock.set_outage(Some(503));
    let token = Some("Bearer mt_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
    let verifier = Arc::new(f.verifier_clone());
    let extracted = send(
        with_extractors(verifier.clone(), applier(&f)),
        "/any",
        token,
        false,
    )
    .await;
    let layered = send(
        with_layer(verifier.clone(), applier(&f)),
        "/any",
        token,
        false,
    )
    .await;
    assert_eq!(extracted.status, 503);
    assert_eq!(extracted, layered);
    assert!(
        layered
            .headers
            .iter()
            .any(|(n, v)| n == "retry-after" && v.parse::<u64>().is_ok_and(|s| s >= 1))
    );
    let grpc = send(with_layer(verifier, applier(&f)), "/any", token, true).await;
    assert!(
        grpc.headers.contains(&("grpc-status".into(), "14".into())),
        "{grpc:?}"
    );
    assert!(grpc.headers.iter().any(|(n, _)| n == "retry-after"));
}

#[tokio::test]
async fn path_rules_exact_beats_prefix_longest_prefix_wins_and_public_paths_skip_auth() {
    let f = fixture().await;
    let verifier = Arc::new(f.verifier_clone());
    let user = format!("Bearer {}", f.mock.session_token(&f.user));
    let bot = mint(&f, "JobApplier.Bot");
    let handler = get(|p: Option<Extension<Principal>>| async move {
        Json(json!({ "actor": p.map(|Extension(p)| p.actor()) }))
    });
    let app = Router::new()
        .route("/pkg.Svc/Get", handler.clone())
        .route("/pkg.Svc/Admin/Do", handler.clone())
        .route("/pkg.Svc/Other", handler.clone())
        .route("/grpc.health.v1.Health/Check", handler.clone())
        .route("/elsewhere", handler)
        .layer(
            AuthLayer::new(verifier)
                .require(Require::machine())
                .require_for("/pkg.Svc/", Require::user())
                .require_for("/pkg.Svc/Admin/", Require::machine_ids([applier(&f)]))
                .require_for(
                    "/pkg.Svc/Get",
                    Require::user().or(Require::machine_ids([applier(&f)])),
                )
                .public("/grpc.health.v1.Health/"),
        );
    let status = |path: &'static str, auth: Option<String>| {
        let app = app.clone();
        async move { send(app, path, auth.as_deref(), false).await }
    };
    // Exact rule: user or the applier.
    assert_eq!(status("/pkg.Svc/Get", Some(user.clone())).await.status, 200);
    assert_eq!(status("/pkg.Svc/Get", Some(bot.clone())).await.status, 200);
    // Longest prefix: /pkg.Svc/Admin/ (applier only) over /pkg.Svc/ (users).
    assert_eq!(
        status("/pkg.Svc/Admin/Do", Some(bot.clone())).await.status,
        200
    );
    assert_eq!(
        status("/pkg.Svc/Admin/Do", Some(user.clone())).await.status,
        403
    );
    // Shorter prefix: users only.
    assert_eq!(
        status("/pkg.Svc/Other", Some(user.clone())).await.status,
        200
    );
    let refused = status("/pkg.Svc/Other", Some(bot.clone())).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["detail"], "this route is for users");
    // The default: machines.
    assert_eq!(status("/elsewhere", Some(user)).await.status, 403);
    assert_eq!(status("/elsewhere", Some(bot)).await.status, 200);
    assert_eq!(status("/elsewhere", None).await.status, 401);
    // Public: no credentials needed, and none looked at.
    let open = status("/grpc.health.v1.Health/Check", None).await;
    assert_eq!((open.status, &open.body["actor"]), (200, &Value::Null));
    let open = status("/grpc.health.v1.Health/Check", Some("Bearer junk!".into())).await;
    assert_eq!(open.status, 200);
}

/// An outer layer for any caller and a per-route one with a requirement: one verification.
#[tokio::test]
async fn stacked_layers_and_extractors_verify_once() {
    let f = fixture_with(Seed::demo(), |_, cfg| cfg.cache.ttl = Duration::ZERO).await;
    let verifier = Arc::new(f.verifier_clone_with(|cfg| cfg.cache.ttl = Duration::ZERO));
    let bot = mint(&f, "JobApplier.Bot");
    let bots_only = AuthLayer::new(verifier.clone()).require(Require::machine_ids([applier(&f)]));
    let app = Router::new()
        .route(
            "/jobs",
            get(|p: Principal| async move { who(&p) }).route_layer(bots_only),
        )
        .layer(AuthLayer::new(verifier.clone()))
        .with_state(verifier);
    f.mock.reset_calls();
    let seen = send(app.clone(), "/jobs", Some(&bot), false).await;
    assert_eq!(seen.status, 200);
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 1);
    // Without a cache, a second request is verified again: the principal is per request.
    assert_eq!(send(app, "/jobs", Some(&bot), false).await.status, 200);
    assert_eq!(f.mock.calls(Endpoint::VerifyToken), 2);
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_the_layer() {
    let f = fixture_with(Seed::demo(), |_, cfg| cfg.cache.ttl = Duration::ZERO).await;
    let verifier = Arc::new(f.verifier_clone_with(|cfg| cfg.cache.ttl = Duration::ZERO));
    let id = applier(&f);
    let created = f.mock.mint(&id, &json!({ "seconds_until_expiration": 60 }));
    let bot = format!("Bearer {}", created["token"].as_str().expect("token"));
    let app = with_layer(verifier, id);
    assert_eq!(
        send(app.clone(), "/applier", Some(&bot), true).await.status,
        200
    );
    assert!(
        f.mock
            .revoke_token(created["id"].as_str().expect("id"), None)
    );
    let seen = send(app, "/applier", Some(&bot), true).await;
    assert!(
        seen.headers.contains(&("grpc-status".into(), "16".into())),
        "{seen:?}"
    );
    assert!(
        seen.headers
            .contains(&("grpc-message".into(), "token-not-found".into())),
        "{seen:?}"
    );
}
