//! #20's rules, each enforced by the statement that writes: refused writes are 409 (or 422),
//! change nothing and leave no event.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::TestApp;

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

fn qid(app: &Value, i: usize) -> String {
    app["questions"][i]["id"].as_str().expect("q").to_owned()
}

/// The application's version and number of events: a refused write changes neither.
async fn footprint(app: &TestApp, app_id: &str) -> (Value, usize) {
    let a = app
        .get(
            &format!("/api/job-applications/{app_id}"),
            &app.machine("JobApplier.Bot"),
        )
        .await;
    (a.body["version"].clone(), app.events(app_id).await.len())
}

async fn submission_ref_and_lease_id_belong_to_the_applier(app: &TestApp) {
    let a = app.application(&app.alice, &[], "saved").await;
    let app_id = id(&a);
    let alice = app.user(&app.alice);
    let before = footprint(app, &app_id).await;
    for (body, field) in [
        (
            json!({"status": "queued", "submission_ref": "outbox:forged"}),
            "submission_ref",
        ),
        (
            json!({"status": "queued", "lease_id": "lease_000000000000000000000000"}),
            "lease_id",
        ),
        (
            json!({"status": "withdrawn", "submission_ref": "x"}),
            "submission_ref",
        ),
    ] {
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/job-applications/{app_id}/status"),
                Some(&alice),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.body["field"], field, "{body}");
    }
    assert_eq!(footprint(app, &app_id).await, before, "nothing was written");
    let after = app
        .get(&format!("/api/job-applications/{app_id}"), &alice)
        .await;
    assert_eq!(after.body["submission_ref"], Value::Null);
    assert_eq!(after.body["status"], "saved");
}
both!(submission_ref_and_lease_id_belong_to_the_applier);

async fn a_users_review_hold_survives_the_representer(app: &TestApp) {
    let a = app
        .application(&app.bob, &["What is your phone number?"], "queued")
        .await;
    let (app_id, q) = (id(&a), qid(&a, 0));
    let bob = app.user(&app.bob);
    let rep = app.machine("CandidateRepresenter.Bot");
    let applier = app.machine("JobApplier.Bot");
    let held = app
        .answer(
            &bob,
            &app_id,
            &q,
            json!({"needs_review": true, "review_reason": "I will answer this myself"}),
        )
        .await;
    assert_eq!(held.status, 200, "{}", held.body);
    assert_eq!(
        held.body["questions"][0]["review_requested_by"],
        format!("user:{}", app.bob)
    );
    let before = footprint(app, &app_id).await;
    for body in [
        json!({"answer": "+1 555 0100"}),
        json!({"needs_review": true, "review_reason": "not in profile"}),
    ] {
        let r = app.answer(&rep, &app_id, &q, body.clone()).await;
        assert_eq!(r.status, 409, "representer {body}: {}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .expect("detail")
                .contains("themselves"),
            "{}",
            r.body
        );
    }
    assert_eq!(footprint(app, &app_id).await, before, "nothing was written");
    let q_now = &app
        .get(&format!("/api/job-applications/{app_id}"), &bob)
        .await
        .body["questions"][0];
    assert_eq!(q_now["needs_review"], true, "the hold survives");
    assert_eq!(q_now["answer"], Value::Null);
    assert_eq!(app.claim(&applier, 60).await.status, 204, "not claimable");
    // The question is the user's until they answer it; then it is ready.
    let answered = app
        .answer(&bob, &app_id, &q, json!({"answer": "ask me by email"}))
        .await;
    assert_eq!(answered.status, 200);
    assert_eq!(answered.body["questions"][0]["needs_review"], false);
    assert_eq!(
        answered.body["questions"][0]["review_requested_by"],
        Value::Null
    );
    assert_eq!(
        app.answer(&rep, &app_id, &q, json!({"answer": "+1 555 0100"}))
            .await
            .status,
        409,
        "and a user's answer is never overwritten"
    );
    assert_eq!(app.claim(&applier, 60).await.status, 200);
}
both!(a_users_review_hold_survives_the_representer);

async fn the_applier_cannot_submit_an_application_that_stopped_being_ready(app: &TestApp) {
    let a = app
        .application(&app.alice, &["Years of Rust?"], "queued")
        .await;
    let (app_id, q) = (id(&a), qid(&a, 0));
    let alice = app.user(&app.alice);
    let applier = app.machine("JobApplier.Bot");
    assert_eq!(
        app.answer(&alice, &app_id, &q, json!({"answer": "7"}))
            .await
            .status,
        200
    );
    let claimed = app.claim(&applier, 60).await;
    assert_eq!(claimed.status, 200);
    let lease = claimed.body["lease_id"].as_str().expect("lease").to_owned();
    // During the claim the user takes the question back for review.
    assert_eq!(
        app.answer(&alice, &app_id, &q, json!({"needs_review": true}))
            .await
            .status,
        200
    );
    let before = footprint(app, &app_id).await;
    let refused = app.submit(&applier, &app_id, &lease).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body["detail"]
            .as_str()
            .expect("detail")
            .contains("no longer ready"),
        "{}",
        refused.body
    );
    assert_eq!(footprint(app, &app_id).await, before, "nothing was written");
    // Ready again (the user answered): the same live claim submits.
    assert_eq!(
        app.answer(&alice, &app_id, &q, json!({"answer": "8"}))
            .await
            .status,
        200
    );
    let done = app.submit(&applier, &app_id, &lease).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["submission_ref"], format!("outbox:{app_id}"));
    // Answers are frozen once it left saved/queued, for everyone.
    let rep = app.machine("CandidateRepresenter.Bot");
    let after = footprint(app, &app_id).await;
    for token in [&alice, &rep] {
        let r = app.answer(token, &app_id, &q, json!({"answer": "9"})).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .expect("detail")
                .contains("frozen")
        );
    }
    assert_eq!(footprint(app, &app_id).await, after);
    let events = app.events(&app_id).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "status_changed")
            .count(),
        1
    );
}
both!(the_applier_cannot_submit_an_application_that_stopped_being_ready);

async fn bot_answers_wait_for_a_live_claim_to_end(app: &TestApp) {
    let a = app
        .application(&app.alice, &["Years of Rust?"], "queued")
        .await;
    let (app_id, q) = (id(&a), qid(&a, 0));
    let rep = app.machine("CandidateRepresenter.Bot");
    let applier = app.machine("JobApplier.Bot");
    assert_eq!(
        app.answer(&rep, &app_id, &q, json!({"answer": "7 years"}))
            .await
            .status,
        200
    );
    assert_eq!(app.claim(&applier, 10).await.status, 200);
    let before = footprint(app, &app_id).await;
    let r = app
        .answer(&rep, &app_id, &q, json!({"answer": "8 years"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(footprint(app, &app_id).await, before);
    // The lease lapses: the application is no longer being submitted.
    app.advance(Duration::from_secs(11));
    let rep = app.machine("CandidateRepresenter.Bot");
    assert_eq!(
        app.answer(&rep, &app_id, &q, json!({"answer": "8 years"}))
            .await
            .status,
        200
    );
}
both!(bot_answers_wait_for_a_live_claim_to_end);

async fn a_lapsed_claim_taken_over_cannot_submit(app: &TestApp) {
    let a = app.application(&app.alice, &[], "queued").await;
    let app_id = id(&a);
    // Two instances of the applier: the same machine, two tokens.
    let first = app.machine("JobApplier.Bot");
    let second = app.machine("JobApplier.Bot");
    assert_ne!(first, second);
    let one = app.claim(&first, 10).await;
    assert_eq!(one.status, 200);
    let lease_one = one.body["lease_id"].as_str().expect("lease").to_owned();
    app.advance(Duration::from_secs(11));
    let two = app.claim(&second, 60).await;
    assert_eq!(two.status, 200, "the lapsed claim is taken over");
    assert_eq!(two.body["attempts"], 2);
    let lease_two = two.body["lease_id"].as_str().expect("lease").to_owned();
    assert_ne!(lease_one, lease_two);
    let late = app.submit(&first, &app_id, &lease_one).await;
    assert_eq!(
        late.status, 409,
        "the first claimant's late submit: {}",
        late.body
    );
    assert!(
        late.body["detail"]
            .as_str()
            .expect("detail")
            .contains("superseded"),
        "{}",
        late.body
    );
    let renew = app
        .call(
            Method::PUT,
            &format!("/api/job-applications/{app_id}/lease"),
            Some(&first),
            Some(json!({"lease_id": lease_one})),
        )
        .await;
    assert_eq!(renew.status, 409);
    let release = app
        .call(
            Method::DELETE,
            &format!("/api/job-applications/{app_id}/lease"),
            Some(&first),
            Some(json!({"lease_id": lease_one})),
        )
        .await;
    assert_eq!(release.status, 409);
    let done = app.submit(&second, &app_id, &lease_two).await;
    assert_eq!(
        done.status, 200,
        "the second claimant's submit: {}",
        done.body
    );
    let actions: Vec<Value> = app
        .events(&app_id)
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(
        actions,
        ["created", "claimed", "claimed", "status_changed"],
        "the refused writes left no event"
    );
}
both!(a_lapsed_claim_taken_over_cannot_submit);

async fn impersonation_is_audited_with_both_identities(app: &TestApp) {
    app.profile(&app.alice).await;
    let admin = "user_2SupportAdmin000000000000";
    let token = app.mock.impersonation_token(&app.alice, admin);
    let me = app.get("/api/whoami", &token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["user_id"], app.alice.as_str());
    assert_eq!(me.body["actor"], admin);
    let created = app
        .post(
            "/api/job-applications",
            &token,
            json!({"company": "Acme", "position": "P", "questions": ["Sponsorship?"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let (app_id, q) = (id(&created.body), qid(&created.body, 0));
    let answered = app
        .answer(&token, &app_id, &q, json!({"answer": "No"}))
        .await;
    let both_ids = format!("user:{} (act:{admin})", app.alice);
    assert_eq!(answered.body["questions"][0]["answered_by"], both_ids);
    let actors: Vec<Value> = app
        .events(&app_id)
        .await
        .iter()
        .map(|e| e["actor"].clone())
        .collect();
    assert_eq!(actors, [both_ids.clone(), both_ids.clone()]);
    // Still the user's answer: no bot overwrites it.
    let rep = app.machine("CandidateRepresenter.Bot");
    assert_eq!(
        app.answer(&rep, &app_id, &q, json!({"answer": "Yes"}))
            .await
            .status,
        409
    );
    // An act claim without a usable subject is still recorded as impersonation.
    let odd = app.mock.session_token_with(&app.alice, |_, c| {
        c["act"] = json!({"sub": "x\" onload=alert(1)"});
    });
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/job-applications/{app_id}/status"),
            Some(&odd),
            Some(json!({"status": "queued"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let last = app.events(&app_id).await.pop().expect("event");
    assert_eq!(last["actor"], format!("user:{} (act:unknown)", app.alice));
}
both!(impersonation_is_audited_with_both_identities);

async fn claim_and_lease_bodies_are_checked(app: &TestApp) {
    let a = app.application(&app.alice, &[], "queued").await;
    let app_id = id(&a);
    let applier = app.machine("JobApplier.Bot");
    let forged = app
        .post(
            "/api/job-applications/claim",
            &applier,
            json!({"lease_id": "lease_000000000000000000000000"}),
        )
        .await;
    assert_eq!(forged.status, 422, "a claim takes no lease_id");
    assert_eq!(forged.body["field"], "lease_id");
    let huge = "x".repeat(70 * 1024);
    let big = app
        .send(
            app.http
                .post(format!("{}/api/job-applications/claim", app.base))
                .bearer_auth(&applier)
                .header("content-type", "application/json")
                .body(format!("{{\"pad\": \"{huge}\"}}")),
        )
        .await;
    assert_eq!(big.status, 413);
    assert_eq!(
        big.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(
        app.post("/api/job-applications/claim", &applier, json!("{"))
            .await
            .status,
        422
    );
    let claimed = app.claim(&applier, 60).await;
    assert_eq!(claimed.status, 200, "nothing above claimed it");
    let lease = claimed.body["lease_id"].as_str().expect("lease").to_owned();
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/job-applications/{app_id}/status"),
            Some(&applier),
            Some(json!({"status": "failed", "reason": "x", "submission_ref": "y", "lease_id": lease})),
        )
        .await;
    assert_eq!(r.status, 422, "submission_ref goes with submitted only");
    assert_eq!(r.body["field"], "submission_ref");
    let actions: Vec<Value> = app
        .events(&app_id)
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, ["created", "claimed"]);
}
both!(claim_and_lease_bodies_are_checked);

/// The user's own-data rules compare Clerk user ids: a session whose subject is not one
/// (`user_…`) is refused outright, before any rule or query (it was looked up as a user id
/// before, and a profile could have been stored under it).
async fn a_session_whose_subject_is_not_a_user_id_is_refused(app: &TestApp) {
    let odd = app.mock.session_token_with(&app.alice, |_, c| {
        c["sub"] = json!("usr-1/../admin");
    });
    for (method, path, body) in [
        (Method::GET, "/api/users/me", None),
        (Method::GET, "/api/job-applications", None),
        (
            Method::POST,
            "/api/users",
            Some(json!({"full_name": "Mallory", "email": "m@example.com"})),
        ),
    ] {
        let r = app.call(method, path, Some(&odd), body).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(
            r.body["detail"],
            "the session's subject is not a Clerk user id"
        );
    }
}
both!(a_session_whose_subject_is_not_a_user_id_is_refused);
