use std::time::Duration;

use clerk_mock::{ClerkMock, Endpoint};
use m2m_core::clock::ManualClock;
use m2m_core::settings::MintSettings;
use m2m_core::{AuthedClient, BearerToken, TokenSource};
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{client, minted};

/// The downstream API: accepts only tokens the mock still considers valid for the API machine.
struct AcceptsOnly(String);

impl Respond for AcceptsOnly {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth == format!("Bearer {}", self.0) {
            ResponseTemplate::new(200)
        } else {
            ResponseTemplate::new(401)
        }
    }
}

async fn setup() -> (ClerkMock, MockServer, AuthedClient, ManualClock) {
    let mock = ClerkMock::start_demo().await;
    let key = mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .secret_key;
    let clock = ManualClock::new();
    let source = minted(
        client(&mock.api_url(), &clock),
        &key,
        MintSettings::default(),
        &clock,
    );
    let api = MockServer::start().await;
    (
        mock,
        api,
        AuthedClient::new(reqwest::Client::new(), TokenSource::Minted(source)),
        clock,
    )
}

#[tokio::test]
async fn a_401_replaces_that_token_and_retries_once() {
    let (mock, api, authed, _) = setup().await;
    let old = authed.tokens().token().await.expect("token").expect("some");
    // The API now only accepts a token that does not exist yet: the next one the mock mints.
    Mock::given(method("POST"))
        .and(path("/things"))
        .respond_with(move |req: &Request| {
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if auth.ends_with(old.expose()) {
                ResponseTemplate::new(401)
            } else {
                ResponseTemplate::new(201)
            }
        })
        .expect(2)
        .mount(&api)
        .await;
    let url = format!("{}/things", api.uri());
    let response = authed
        .send(|http| http.post(&url).json(&serde_json::json!({"a": 1})))
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    assert_eq!(
        mock.calls(Endpoint::CreateToken),
        2,
        "one mint at start, one after the 401"
    );
    let requests = api.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 2);
    assert_ne!(
        requests[0].headers.get("authorization"),
        requests[1].headers.get("authorization")
    );
    assert_eq!(
        requests[1].body, br#"{"a":1}"#,
        "the body was rebuilt for the retry"
    );
}

#[tokio::test]
async fn a_second_401_is_returned_not_looped() {
    let (mock, api, authed, _) = setup().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&api)
        .await;
    let url = api.uri();
    let response = authed.send(|http| http.get(&url)).await.expect("sent");
    assert_eq!(response.status(), 401);
    assert_eq!(mock.calls(Endpoint::CreateToken), 2);
}

#[tokio::test]
async fn other_statuses_are_passed_through_without_retry() {
    let (_mock, api, authed, _) = setup().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403))
        .expect(1)
        .mount(&api)
        .await;
    let url = api.uri();
    assert_eq!(
        authed
            .send(|http| http.get(&url))
            .await
            .expect("sent")
            .status(),
        403
    );
}

#[tokio::test]
async fn a_revoked_token_is_replaced_end_to_end() {
    let (mock, api, authed, _) = setup().await;
    let first = authed.tokens().token().await.expect("t").expect("some");
    let id = mock.token_id_of(first.expose()).expect("stored");
    // The API verifies every request at the mock with its own key.
    let api_key = mock
        .machine_by_name("JobTracker.API")
        .expect("api")
        .secret_key;
    let verifier = m2m_core::clerk::ClerkClient::new(mock.api_url()).expect("client");
    let handle = tokio::runtime::Handle::current();
    Mock::given(method("GET"))
        .respond_with(move |req: &Request| {
            let token = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim_start_matches("Bearer ")
                .to_owned();
            let (verifier, key) = (
                verifier.clone(),
                secrecy::SecretString::from(api_key.clone()),
            );
            let ok = std::thread::scope(|s| {
                s.spawn(|| {
                    handle.block_on(async { verifier.verify_m2m_token(&key, &token).await.is_ok() })
                })
                .join()
                .unwrap_or(false)
            });
            ResponseTemplate::new(if ok { 200 } else { 401 })
        })
        .mount(&api)
        .await;
    let url = api.uri();
    assert_eq!(
        authed
            .send(|http| http.get(&url))
            .await
            .expect("sent")
            .status(),
        200
    );
    assert!(mock.revoke_token(&id, Some("compromised")));
    assert_eq!(
        authed
            .send(|http| http.get(&url))
            .await
            .expect("sent")
            .status(),
        200,
        "re-minted after the 401"
    );
    assert_eq!(mock.calls(Endpoint::CreateToken), 2);
}

#[tokio::test]
async fn a_static_token_is_sent_as_is_and_a_401_is_not_retried() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer mt_precreated"))
        .respond_with(AcceptsOnly("nothing".into()))
        .expect(1)
        .mount(&api)
        .await;
    let authed = AuthedClient::new(
        reqwest::Client::new(),
        TokenSource::Static(BearerToken::new("mt_precreated")),
    );
    let url = api.uri();
    assert_eq!(
        authed
            .send(|http| http.get(&url))
            .await
            .expect("sent")
            .status(),
        401
    );
}

#[tokio::test]
async fn disabled_auth_sends_no_authorization_header() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&api)
        .await;
    let authed = AuthedClient::new(reqwest::Client::new(), TokenSource::Disabled);
    let url = api.uri();
    assert_eq!(
        authed
            .send(|http| http.get(&url))
            .await
            .expect("sent")
            .status(),
        200
    );
}

#[tokio::test]
async fn no_token_means_no_request() {
    let mock = ClerkMock::start_demo().await;
    mock.set_outage(Some(503));
    let clock = ManualClock::new();
    let source = minted(
        client(&mock.api_url(), &clock),
        "ak_any",
        MintSettings {
            lifetime: Duration::from_secs(60),
            refresh_buffer: Duration::from_secs(10),
            ..Default::default()
        },
        &clock,
    );
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&api)
        .await;
    let authed = AuthedClient::new(reqwest::Client::new(), TokenSource::Minted(source));
    let url = api.uri();
    assert!(authed.send(|http| http.get(&url)).await.is_err());
}
