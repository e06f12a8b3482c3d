//! Token lifecycles through the whole system: JWT format, static tokens, expiry mid-run,
//! revocation, unmapped machines, Clerk and API outages.

use std::time::Duration;

use bot_runtime::Bot;
use clerk_mock::Endpoint;
use e2e::{Running, Stack};
use jobtracker_api_testing::Backend;
use jobtracker_client::ClientError;
use m2m_core::BearerToken;
use m2m_core::settings::TokenFormat;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn mint(stack: &Stack, machine: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/m2m_tokens", stack.mock.api_url()))
        .bearer_auth(
            stack
                .mock
                .machine_by_name(machine)
                .expect("machine")
                .secret_key,
        )
        .json(&body)
        .send()
        .await
        .expect("mock")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_format_tokens_need_no_verify_calls() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let id = stack
        .new_application(&stack.alice, &["What is your notice period?"])
        .await;
    let rep = stack.representer(|c| c.token.m2m_token_format = TokenFormat::Jwt);
    let applier = stack.applier(|c| c.common.token.m2m_token_format = TokenFormat::Jwt);
    let bots = Running::start(&[rep], &[applier]);
    assert!(
        stack
            .wait_for_status(&stack.alice, &[id], "submitted", WAIT)
            .await
    );
    bots.stop().await;
    assert_eq!(
        stack.mock.calls(Endpoint::VerifyToken),
        0,
        "JWTs are verified locally"
    );
    assert_eq!(stack.mock.calls(Endpoint::CreateToken), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_created_static_tokens_mint_nothing() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let year = json!({"seconds_until_expiration": 365 * 86_400});
    let (rep_token, applier_token) = (
        mint(&stack, "CandidateRepresenter.Bot", year.clone()).await,
        mint(&stack, "JobApplier.Bot", year).await,
    );
    stack.mock.reset_calls();
    let id = stack
        .new_application(&stack.alice, &["Where are you located?"])
        .await;
    let rep = stack.representer(|c| {
        c.clerk.clerk_machine_secret_key = None;
        c.token.clerk_m2m_token = rep_token["token"].as_str().map(BearerToken::new);
    });
    let applier = stack.applier(|c| {
        c.common.clerk.clerk_machine_secret_key = None;
        c.common.token.clerk_m2m_token = applier_token["token"].as_str().map(BearerToken::new);
    });
    let bots = Running::start(&[rep], &[applier]);
    assert!(
        stack
            .wait_for_status(&stack.alice, &[id], "submitted", WAIT)
            .await
    );
    bots.stop().await;
    assert_eq!(stack.mock.calls(Endpoint::CreateToken), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_are_refreshed_mid_run() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let short = |c: &mut bot_runtime::BotArgs| {
        c.token.m2m_token_lifetime_seconds = Some(4);
        c.token.m2m_token_refresh_buffer_seconds = Some(2);
    };
    let rep = stack.representer(short);
    let applier = stack.applier(|c| short(&mut c.common));
    let bots = Running::start(&[rep], std::slice::from_ref(&applier));
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            stack
                .new_application(&stack.alice, &["What is your email address?"])
                .await,
        );
        tokio::time::sleep(Duration::from_millis(1800)).await;
    }
    assert!(
        stack
            .wait_for_status(&stack.alice, &ids, "submitted", WAIT)
            .await,
        "work continued across refreshes"
    );
    bots.stop().await;
    assert!(
        stack.mock.calls(Endpoint::CreateToken) >= 4,
        "each bot refreshed: {} creates",
        stack.mock.calls(Endpoint::CreateToken)
    );
    assert_eq!(applier.counters().get("submitted"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_rejected_then_replaced() {
    // Verify every request at Clerk so the revocation takes effect at once.
    let Some(stack) = Stack::start_with(Backend::Sqlite, |c| {
        c.verifier.m2m_verify_cache_ttl_seconds = 0
    })
    .await
    else {
        return;
    };
    let applier = stack.applier(|_| {});
    let first = stack.new_application(&stack.alice, &[]).await;
    assert!(applier.run_once().await.expect("first"));
    let applier_id = stack.machine_id("JobApplier.Bot");
    let token_ids = stack.mock.token_ids(&applier_id);
    assert_eq!(token_ids.len(), 1);
    assert!(stack.mock.revoke_token(&token_ids[0], Some("compromised")));
    let second = stack.new_application(&stack.alice, &[]).await;
    assert!(
        applier
            .run_once()
            .await
            .expect("second, after a 401 and a new token")
    );
    assert_eq!(stack.mock.token_ids(&applier_id).len(), 2, "re-minted once");
    assert!(
        stack
            .wait_for_status(&stack.alice, &[first, second], "submitted", WAIT)
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_without_a_role_is_forbidden() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let api = stack.machine_id("JobTracker.API");
    let rogue = stack.mock.create_machine("Rogue.Bot", &[&api]);
    let rep = stack
        .representer(|c| c.clerk.clerk_machine_secret_key = Some(rogue.secret_key.clone().into()));
    match rep.run_once().await {
        Err(ClientError::Forbidden(p)) => assert!(p.detail.contains(&rogue.id)),
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_continues_through_a_clerk_outage() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let first = stack
        .new_application(&stack.alice, &["What is your phone number?"])
        .await;
    let (rep, applier) = (stack.representer(|_| {}), stack.applier(|_| {}));
    let bots = Running::start(&[rep], &[applier]);
    assert!(
        stack
            .wait_for_status(&stack.alice, &[first], "submitted", WAIT)
            .await
    );
    // Clerk goes down: bots keep their cached tokens, the API its cached verifications and JWKS.
    stack.mock.set_outage(Some(503));
    let during = stack
        .new_application(&stack.alice, &["Are you willing to relocate?"])
        .await;
    assert!(
        stack
            .wait_for_status(&stack.alice, &[during], "submitted", WAIT)
            .await,
        "nothing stopped during the outage"
    );
    stack.mock.set_outage(None);
    bots.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_down_during_a_refresh_keeps_the_old_token_until_it_expires() {
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let applier = stack.applier(|c| {
        c.common.token.m2m_token_lifetime_seconds = Some(8);
        c.common.token.m2m_token_refresh_buffer_seconds = Some(6);
    });
    let first = stack.new_application(&stack.alice, &[]).await;
    assert!(applier.run_once().await.expect("first"));
    tokio::time::sleep(Duration::from_secs(3)).await; // inside the refresh window now
    stack.mock.set_outage(Some(503));
    let second = stack.new_application(&stack.alice, &[]).await;
    assert!(
        applier.run_once().await.expect("the old token still works"),
        "refresh failed, old token served"
    );
    assert_eq!(
        stack
            .mock
            .token_ids(&stack.machine_id("JobApplier.Bot"))
            .len(),
        1,
        "no new token could be made"
    );
    tokio::time::sleep(Duration::from_secs(6)).await; // the old token has expired
    let third = stack.new_application(&stack.alice, &[]).await;
    assert!(
        applier.run_once().await.is_err(),
        "no valid token left: an error, not a silent success"
    );
    stack.mock.set_outage(None);
    assert!(applier.run_once().await.expect("recovers with a new token"));
    assert!(
        stack
            .wait_for_status(&stack.alice, &[first, second, third], "submitted", WAIT)
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_back_off_while_the_api_is_down_and_resume() {
    let Some(mut stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let id = stack
        .new_application(&stack.alice, &["What is your email address?"])
        .await;
    stack.stop_api().await;
    let (rep, applier) = (stack.representer(|_| {}), stack.applier(|_| {}));
    let bots = Running::start(&[rep], std::slice::from_ref(&applier));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(applier.counters().get("claimed"), 0);
    stack.start_api().await;
    assert!(
        stack
            .wait_for_status(&stack.alice, &[id], "submitted", Duration::from_secs(90))
            .await,
        "work resumed by itself"
    );
    bots.stop().await;
}
