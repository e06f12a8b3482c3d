//! `BearerMiddleware`: the token on every request of a reqwest-middleware client, and the same
//! 401 rule as `AuthedClient` (invalidate exactly that token, retry once, never loop).

use std::time::Duration;

use clerk_mock::{ClerkMock, Endpoint};
use m2m_core::clock::ManualClock;
use m2m_core::settings::MintSettings;
use m2m_core::{BearerMiddleware, BearerToken, TokenSource};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{client, minted};

fn http(tokens: TokenSource) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(BearerMiddleware::new(tokens))
        .build()
}

fn auth(req: &Request) -> String {
    req.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn minted_source(mock: &ClerkMock, clock: &ManualClock) -> TokenSource {
    let key = mock
        .machine_by_name("JobApplier.Bot")
        .expect("applier")
        .secret_key;
    TokenSource::Minted(minted(
        client(&mock.api_url(), clock),
        &key,
        MintSettings::default(),
        clock,
    ))
}

#[tokio::test]
async fn a_401_replaces_that_token_and_resends_the_body_once() {
    let mock = ClerkMock::start_demo().await;
    let clock = ManualClock::new();
    let tokens = minted_source(&mock, &clock).await;
    let old = tokens.token().await.expect("token").expect("some");
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/things"))
        .and(body_json(serde_json::json!({"a": 1})))
        .respond_with(move |req: &Request| {
            if auth(req) == format!("Bearer {}", old.expose()) {
                ResponseTemplate::new(401)
            } else {
                ResponseTemplate::new(201)
            }
        })
        .expect(2)
        .mount(&api)
        .await;
    let response = http(tokens)
        .post(format!("{}/things", api.uri()))
        .json(&serde_json::json!({"a": 1}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    assert_eq!(mock.calls(Endpoint::CreateToken), 2);
}

#[tokio::test]
async fn a_second_401_is_returned_not_looped() {
    let mock = ClerkMock::start_demo().await;
    let clock = ManualClock::new();
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&api)
        .await;
    let response = http(minted_source(&mock, &clock).await)
        .get(api.uri())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_static_tokens_401_is_not_retried_and_disabled_sends_no_header() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/static"))
        .respond_with(|req: &Request| {
            assert_eq!(auth(req), "Bearer mt_precreated");
            ResponseTemplate::new(401)
        })
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/disabled"))
        .respond_with(|req: &Request| {
            assert!(req.headers.get("authorization").is_none());
            ResponseTemplate::new(401)
        })
        .expect(1)
        .mount(&api)
        .await;
    let precreated = TokenSource::Static(BearerToken::new("mt_precreated"));
    let response = http(precreated)
        .get(format!("{}/static", api.uri()))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
    let response = http(TokenSource::Disabled)
        .get(format!("{}/disabled", api.uri()))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn no_token_means_no_request_and_a_middleware_error() {
    let mock = ClerkMock::start_demo().await;
    mock.set_outage(Some(503));
    let clock = ManualClock::new();
    let tokens = TokenSource::Minted(minted(
        client(&mock.api_url(), &clock),
        "ak_any",
        MintSettings {
            lifetime: Duration::from_secs(60),
            refresh_buffer: Duration::from_secs(10),
            ..Default::default()
        },
        &clock,
    ));
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&api)
        .await;
    let err = http(tokens)
        .get(api.uri())
        .send()
        .await
        .expect_err("no token");
    assert!(
        matches!(err, reqwest_middleware::Error::Middleware(_)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("could not obtain an M2M token"),
        "{err}"
    );
}
