//! Runs each example's own code against clerk-mock, so the examples cannot rot: an axum service
//! and a tonic service, each built only from the examples, accept a bot's M2M token minted by
//! the mock, refuse a machine they do not allow, and refuse the token once it is revoked; the
//! mixed router takes a user's session JWT and a bot's M2M token on the same routes.

#![allow(dead_code)] // the examples' `main`s

#[path = "../examples/axum_receiver.rs"]
mod axum_receiver;
#[path = "../examples/grpc_client.rs"]
mod grpc_client;
#[path = "../examples/grpc_server.rs"]
mod grpc_server;
#[path = "../examples/reqwest_sender.rs"]
mod reqwest_sender;
#[path = "../examples/session_and_m2m.rs"]
mod session_and_m2m;
#[path = "../examples/static_token_sender.rs"]
mod static_token_sender;

use std::collections::HashMap;
use std::sync::Arc;

use clerk_mock::ClerkMock;
use m2m_core::config::Env;
use m2m_core::{BearerToken, TokenSource, Verifier};
use m2m_examples::echo::SayRequest;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const API: &str = "JobTracker.API";
const APPLIER: &str = "JobApplier.Bot";
const REPRESENTER: &str = "CandidateRepresenter.Bot";

fn env(vars: HashMap<&'static str, String>) -> Env<'static> {
    Env::from_fn(move |k| vars.get(k).cloned())
}

/// The receivers' settings: the API machine's key and id. Verdicts are not cached, so a
/// revocation shows at once.
fn receiver(mock: &ClerkMock) -> (Arc<Verifier>, Vec<String>) {
    let api = mock.machine_by_name(API).expect("seeded API machine");
    let vars = HashMap::from([
        ("CLERK_API_BASE_URL", mock.api_url()),
        ("CLERK_MACHINE_SECRET_KEY", api.secret_key),
        ("CLERK_MACHINE_ID", api.id),
        ("M2M_VERIFY_CACHE_TTL_SECONDS", "0".to_owned()),
    ]);
    let verifier = axum_receiver::verifier(&env(vars)).expect("verifier from the environment");
    (verifier, vec![id(mock, APPLIER)])
}

/// A sender's settings: `machine`'s key, so its tokens are minted.
fn sender_env(mock: &ClerkMock, machine: &str) -> Env<'static> {
    let key = mock
        .machine_by_name(machine)
        .expect("seeded bot")
        .secret_key;
    env(HashMap::from([
        ("CLERK_API_BASE_URL", mock.api_url()),
        ("CLERK_MACHINE_SECRET_KEY", key),
    ]))
}

fn id(mock: &ClerkMock, machine: &str) -> String {
    mock.machine_by_name(machine).expect("seeded machine").id
}

/// A token minted by `machine` at the mock: (bearer value, `mt_…` id).
fn mint(mock: &ClerkMock, machine: &str) -> (String, String) {
    let created = mock.mint(
        &id(mock, machine),
        &json!({ "seconds_until_expiration": 3600 }),
    );
    let field = |k: &str| created[k].as_str().expect("created token field").to_owned();
    (field("token"), field("id"))
}

async fn start_axum(mock: &ClerkMock) -> String {
    let (verifier, allowed) = receiver(mock);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, axum_receiver::app(verifier, allowed)).await });
    base
}

async fn start_grpc(mock: &ClerkMock) -> String {
    let (verifier, allowed) = receiver(mock);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(grpc_server::serve(verifier, allowed, listener));
    url
}

#[tokio::test]
async fn the_axum_example_accepts_a_bots_minted_token_and_refuses_it_once_revoked() {
    let mock = ClerkMock::start_demo().await;
    let base = start_axum(&mock).await;

    // reqwest_sender: minted with the applier's key, through reqwest-middleware.
    let tokens = reqwest_sender::tokens(&sender_env(&mock, APPLIER)).expect("token source");
    let http = reqwest_sender::client(tokens);
    let answer = http
        .get(format!("{base}/jobs"))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["caller"], format!("machine:{}", id(&mock, APPLIER)));

    // The same sender after its token is revoked: the 401 makes it mint a new one and retry.
    let minted = mock.token_ids(&id(&mock, APPLIER));
    assert_eq!(minted.len(), 1, "{minted:?}");
    assert!(mock.revoke_token(&minted[0], None));
    let answer = http
        .get(format!("{base}/jobs"))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    assert_eq!(mock.token_ids(&id(&mock, APPLIER)).len(), 2);

    // static_token_sender: a pre-created token is accepted, then refused once revoked.
    let (token, token_id) = mint(&mock, APPLIER);
    let vars = [("CLERK_M2M_TOKEN_JOBTRACKER_API".to_owned(), token)];
    let tokens = static_token_sender::tokens(vars, "jobtracker-api")
        .expect("readable")
        .expect("configured");
    let answer = static_token_sender::get_jobs(tokens.clone(), &base)
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    assert!(mock.revoke_token(&token_id, None));
    let answer = static_token_sender::get_jobs(tokens, &base)
        .await
        .expect("answer");
    assert_eq!(answer.status(), 401);
    assert_eq!(
        answer.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\", error_description=\"token-not-found\""
    );

    // Another bot: authenticated (whoami), but not allowed on /jobs.
    let (token, _) = mint(&mock, REPRESENTER);
    let other = TokenSource::Static(BearerToken::new(token));
    let answer = static_token_sender::get_jobs(other.clone(), &base)
        .await
        .expect("answer");
    assert_eq!(answer.status(), 403);
    let http = reqwest_sender::client(other);
    let answer = http
        .get(format!("{base}/whoami"))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    let answer = reqwest::get(format!("{base}/whoami"))
        .await
        .expect("answer");
    assert_eq!(answer.status(), 401);
}

#[tokio::test]
async fn the_grpc_examples_accept_a_bots_minted_token_and_refuse_it_once_revoked() {
    let mock = ClerkMock::start_demo().await;
    let url = start_grpc(&mock).await;
    let say = || SayRequest {
        text: "hello".into(),
    };

    // grpc_client: minted with the applier's key.
    let tokens = grpc_client::tokens(&sender_env(&mock, APPLIER)).expect("token source");
    let mut echo = grpc_client::client(&url, tokens).expect("client");
    let reply = echo.say(say()).await.expect("accepted").into_inner();
    assert_eq!(reply.text, "hello");
    assert_eq!(reply.caller, format!("machine:{}", id(&mock, APPLIER)));

    // Its token revoked: UNAUTHENTICATED makes the layer mint a new one and send the call again.
    let minted = mock.token_ids(&id(&mock, APPLIER));
    assert_eq!(minted.len(), 1, "{minted:?}");
    assert!(mock.revoke_token(&minted[0], None));
    let reply = echo.say(say()).await.expect("retried with a fresh token");
    assert_eq!(reply.into_inner().text, "hello");
    assert_eq!(mock.token_ids(&id(&mock, APPLIER)).len(), 2);

    // A pre-created token, revoked: UNAUTHENTICATED, and the message names the rule only.
    let (token, token_id) = mint(&mock, APPLIER);
    let mut echo =
        grpc_client::client(&url, TokenSource::Static(BearerToken::new(&token))).expect("client");
    assert!(echo.say(say()).await.is_ok());
    assert!(mock.revoke_token(&token_id, None));
    let status = echo.say(say()).await.expect_err("revoked");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "token-not-found");
    assert!(!format!("{status:?}").contains(&token));

    // Another bot: PERMISSION_DENIED. No token at all: UNAUTHENTICATED.
    let (token, _) = mint(&mock, REPRESENTER);
    let mut echo =
        grpc_client::client(&url, TokenSource::Static(BearerToken::new(token))).expect("client");
    let status = echo.say(say()).await.expect_err("not allowed");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "this machine is not allowed to call this route"
    );
    let mut echo = grpc_client::client(&url, TokenSource::Disabled).expect("client");
    let status = echo.say(say()).await.expect_err("anonymous");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "missing bearer token");
}

/// `GET {base}{path}` with `token` (if any): (status, JSON body or null).
async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.expect("answer");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_mixed_router_takes_session_jwts_and_m2m_tokens_on_the_same_routes() {
    let mock = ClerkMock::start_demo().await;
    let api = mock.machine_by_name(API).expect("seeded API machine");
    let vars = HashMap::from([
        ("CLERK_API_BASE_URL", mock.api_url()),
        ("CLERK_SECRET_KEY", mock.instance_secret_key()),
        ("CLERK_MACHINE_SECRET_KEY", api.secret_key),
        ("CLERK_MACHINE_ID", api.id),
        ("CLERK_AUTHORIZED_PARTIES", mock.authorized_party()),
    ]);
    let verifier = session_and_m2m::verifier(&env(vars)).expect("verifier");
    let app = session_and_m2m::app(verifier, vec![id(&mock, APPLIER)]);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A signed-in user (a seeded one): both routes.
    let user = mock.users().remove(0).id;
    let session = mock.session_token(&user);
    let (status, body) = get(&base, "/me", Some(&session)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], user.as_str());
    assert!(
        body["session_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("sess_")),
        "{body}"
    );
    assert_eq!(
        get(&base, "/jobs", Some(&session)).await,
        (200, json!({ "for": "user", "id": user }))
    );

    // The allowed bot's M2M token: /jobs, not the people-only /me.
    let (token, _) = mint(&mock, APPLIER);
    assert_eq!(
        get(&base, "/jobs", Some(&token)).await,
        (200, json!({ "for": "machine", "id": id(&mock, APPLIER) }))
    );
    assert_eq!(get(&base, "/me", Some(&token)).await.0, 403);

    // Another bot: authenticated, but on neither route's list.
    let (other, _) = mint(&mock, REPRESENTER);
    assert_eq!(get(&base, "/jobs", Some(&other)).await.0, 403);

    // A session JWT minted for another origin, one expired, none at all: 401.
    let foreign = mock.session_token_with(&user, |_, claims| {
        claims["azp"] = json!("https://evil.example");
    });
    assert_eq!(get(&base, "/me", Some(&foreign)).await.0, 401);
    let expired = mock.session_token_with(&user, |_, claims| {
        let iat = claims["iat"].as_i64().expect("iat");
        claims["exp"] = json!(iat - 3600);
    });
    assert_eq!(get(&base, "/jobs", Some(&expired)).await.0, 401);
    assert_eq!(get(&base, "/me", None).await.0, 401);
    // The public route needs nothing.
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("answer");
    assert_eq!(health.status(), 200);
}
