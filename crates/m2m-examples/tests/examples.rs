//! Runs each example's own code against clerk-mock, so the examples cannot rot: an axum service
//! and a tonic service, each built only from the examples, accept a bot's M2M token minted by
//! the mock, refuse a machine they do not allow, and refuse the token once it is revoked.

#![allow(dead_code)] // the examples' `main`s

#[path = "../examples/axum_receiver.rs"]
mod axum_receiver;
#[path = "../examples/grpc_client.rs"]
mod grpc_client;
#[path = "../examples/grpc_server.rs"]
mod grpc_server;
#[path = "../examples/reqwest_sender.rs"]
mod reqwest_sender;
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
