//! The state machine, claims, leases, answers, concurrency and the audit trail.

use std::collections::HashSet;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::TestApp;

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn patch_status(
    app: &TestApp,
    token: &str,
    app_id: &str,
    body: Value,
) -> crate::helpers::Answer {
    app.call(
        Method::PATCH,
        &format!("/api/job-applications/{app_id}/status"),
        Some(token),
        Some(body),
    )
    .await
}

async fn the_user_transition_table(app: &TestApp) {
    let alice = app.user(&app.alice);
    let a = app.application(&app.alice, &[], "saved").await;
    let app_id = id(&a);
    for (to, expected) in [
        ("submitted", 409),
        ("offer", 409),
        ("queued", 200),
        ("saved", 200),
        ("withdrawn", 200),
        ("queued", 409),
    ] {
        let r = patch_status(app, &alice, &app_id, json!({"status": to})).await;
        assert_eq!(r.status, expected, "saved/queued path → {to}: {}", r.body);
    }
    // Numbers are accepted; unknown names and numbers are rejected clearly.
    let b = id(&app.application(&app.alice, &[], "saved").await);
    assert_eq!(
        patch_status(app, &alice, &b, json!({"status": 1}))
            .await
            .body["status"],
        "queued"
    );
    let bad = patch_status(app, &alice, &b, json!({"status": "hired"})).await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body["detail"]
            .as_str()
            .expect("detail")
            .contains("unknown status")
    );
    assert_eq!(
        patch_status(app, &alice, &b, json!({"status": 9}))
            .await
            .status,
        422
    );
    assert_eq!(
        patch_status(
            app,
            &alice,
            &b,
            json!({"status": "saved", "expected_version": 99})
        )
        .await
        .status,
        409
    );
}
both!(the_user_transition_table);

async fn the_applier_submits_only_its_own_live_claim(app: &TestApp) {
    let a = app.application(&app.alice, &[], "queued").await;
    let app_id = id(&a);
    let applier = app.machine("JobApplier.Bot");
    let claimed = app
        .post(
            "/api/job-applications/claim",
            &applier,
            json!({"lease_seconds": 60}),
        )
        .await;
    assert_eq!(claimed.status, 200, "{}", claimed.body);
    assert_eq!(id(&claimed.body), app_id);
    assert!(
        claimed.body["claimed_by"]
            .as_str()
            .expect("claimed")
            .starts_with("machine:mch_")
    );
    assert_eq!(claimed.body["attempts"], 1);
    let lease = claimed.body["lease_id"]
        .as_str()
        .expect("a claim carries its lease_id")
        .to_owned();
    assert!(lease.starts_with("lease_"), "{lease}");
    assert_eq!(
        app.get(&format!("/api/job-applications/{app_id}"), &applier)
            .await
            .body
            .get("lease_id"),
        None,
        "the fencing token is handed to the claimant only"
    );
    assert_eq!(
        app.post("/api/job-applications/claim", &applier, json!({}))
            .await
            .status,
        204,
        "nothing else is ready"
    );
    assert_eq!(
        patch_status(app, &applier, &app_id, json!({"status": "failed"}))
            .await
            .status,
        422,
        "failed needs a reason"
    );
    let unfenced = patch_status(
        app,
        &applier,
        &app_id,
        json!({"status": "submitted", "submission_ref": "outbox:abc"}),
    )
    .await;
    assert_eq!(unfenced.status, 409, "no lease_id: {}", unfenced.body);
    assert_eq!(
        patch_status(
            app,
            &applier,
            &app_id,
            json!({"status": "submitted", "lease_id": "not a lease"})
        )
        .await
        .body["field"],
        "lease_id"
    );
    let done = patch_status(
        app,
        &applier,
        &app_id,
        json!({"status": "submitted", "submission_ref": "outbox:abc", "lease_id": lease}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "submitted");
    assert_eq!(done.body["submission_ref"], "outbox:abc");
    assert_eq!(done.body["claimed_by"], Value::Null);
    assert_eq!(
        patch_status(
            app,
            &applier,
            &app_id,
            json!({"status": "failed", "reason": "x", "lease_id": lease})
        )
        .await
        .status,
        409,
        "submitted is final for the applier"
    );
    let alice = app.user(&app.alice);
    assert_eq!(
        patch_status(app, &alice, &app_id, json!({"status": "interviewing"}))
            .await
            .status,
        200
    );

    let actions = app.event_actions(&app_id).await;
    let applier_id = app.mock.machine_by_name("JobApplier.Bot").expect("m").id;
    assert_eq!(
        actions,
        vec![
            (format!("user:{}", app.alice), "created".to_owned()),
            (format!("machine:{applier_id}"), "claimed".to_owned()),
            (format!("machine:{applier_id}"), "status_changed".to_owned()),
            (format!("user:{}", app.alice), "status_changed".to_owned()),
        ]
    );
}
both!(the_applier_submits_only_its_own_live_claim);

async fn only_ready_applications_are_claimed(app: &TestApp) {
    let a = app
        .application(&app.alice, &["Years of Rust?", "Sponsorship?"], "queued")
        .await;
    let app_id = id(&a);
    let applier = app.machine("JobApplier.Bot");
    let rep = app.machine("CandidateRepresenter.Bot");
    assert_eq!(
        app.post("/api/job-applications/claim", &applier, json!({}))
            .await
            .status,
        204,
        "questions unanswered"
    );
    let q = |i: usize| a["questions"][i]["id"].as_str().expect("q").to_owned();
    let answer = |qid: String, body: Value| {
        let (app, rep, app_id) = (app, rep.clone(), app_id.clone());
        async move {
            app.call(
                Method::PUT,
                &format!("/api/job-applications/{app_id}/questions/{qid}/answer"),
                Some(&rep),
                Some(body),
            )
            .await
        }
    };
    assert_eq!(answer(q(0), json!({"answer": "7 years"})).await.status, 200);
    let flagged = answer(
        q(1),
        json!({"needs_review": true, "review_reason": "not in profile"}),
    )
    .await;
    assert_eq!(flagged.status, 200);
    assert_eq!(flagged.body["questions"][1]["needs_review"], true);
    assert_eq!(flagged.body["questions"][1]["answer"], Value::Null);
    assert_eq!(
        app.post("/api/job-applications/claim", &applier, json!({}))
            .await
            .status,
        204,
        "a question awaits review"
    );
    let unanswered = app.get("/api/questions?unanswered=true", &rep).await;
    assert_eq!(
        unanswered.body["items"].as_array().expect("items").len(),
        0,
        "flagged questions are not offered again"
    );
    let alice = app.user(&app.alice);
    let by_user = app
        .call(
            Method::PUT,
            &format!("/api/job-applications/{app_id}/questions/{}/answer", q(1)),
            Some(&alice),
            Some(json!({"answer": "No"})),
        )
        .await;
    assert_eq!(by_user.status, 200);
    assert_eq!(
        by_user.body["questions"][1]["answered_by"],
        format!("user:{}", app.alice)
    );
    assert_eq!(
        answer(q(1), json!({"answer": "Yes"})).await.status,
        409,
        "a user's answer is never overwritten by a bot"
    );
    assert_eq!(
        app.post("/api/job-applications/claim", &applier, json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        answer(q(0), json!({"answer": "8 years"})).await.status,
        409,
        "frozen while being submitted"
    );
    assert_eq!(
        answer(q(0), json!({"answer": "x", "needs_review": true}))
            .await
            .status,
        422
    );
    assert_eq!(answer(q(0), json!({})).await.status, 422);
}
both!(only_ready_applications_are_claimed);

async fn an_expired_lease_can_be_claimed_again(app: &TestApp) {
    let a = app.application(&app.alice, &[], "queued").await;
    let app_id = id(&a);
    let first = app.machine("JobApplier.Bot");
    let claimed = app.claim(&first, 10).await;
    assert_eq!(claimed.status, 200);
    let first_lease = claimed.body["lease_id"].as_str().expect("lease").to_owned();
    assert_eq!(
        app.post("/api/job-applications/claim", &first, json!({}))
            .await
            .status,
        204
    );
    // Time passes: the lease lapses, and a lapsed lease is not renewed.
    app.advance(std::time::Duration::from_secs(11));
    let lease_path = format!("/api/job-applications/{app_id}/lease");
    assert_eq!(
        app.call(
            Method::PUT,
            &lease_path,
            Some(&first),
            Some(json!({"lease_seconds": 60, "lease_id": first_lease}))
        )
        .await
        .status,
        409,
        "renewing a lapsed lease"
    );
    let again = app.claim(&first, 300).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["attempts"], 2);
    let lease = again.body["lease_id"].as_str().expect("lease").to_owned();
    assert_ne!(lease, first_lease, "every claim gets a new lease_id");
    for (body, expected) in [
        (json!({"lease_seconds": 120}), 409),
        (json!({"lease_seconds": 120, "lease_id": first_lease}), 409),
        (json!({"lease_seconds": 120, "lease_id": "lease_x"}), 422),
        (json!({"lease_seconds": 5, "lease_id": lease}), 422),
        (json!({"lease_seconds": 120, "lease_id": lease}), 200),
    ] {
        let r = app
            .call(Method::PUT, &lease_path, Some(&first), Some(body.clone()))
            .await;
        assert_eq!(r.status, expected, "renew {body}: {}", r.body);
    }
    for (body, expected) in [
        (None, 409),
        (Some(json!({"lease_id": first_lease})), 409),
        (Some(json!({"lease_id": lease, "extra": 1})), 422),
        (Some(json!({"lease_id": lease})), 204),
        (Some(json!({"lease_id": lease})), 409),
    ] {
        let r = app
            .call(Method::DELETE, &lease_path, Some(&first), body.clone())
            .await;
        assert_eq!(r.status, expected, "release {body:?}: {}", r.body);
    }
    let actions: Vec<String> = app
        .event_actions(&app_id)
        .await
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        actions,
        [
            "created",
            "claimed",
            "claimed",
            "lease_renewed",
            "lease_released"
        ],
        "refused lease writes leave no event"
    );
    assert_eq!(
        app.post("/api/job-applications/claim", &first, json!({}))
            .await
            .status,
        200,
        "released work is claimable at once"
    );
}
both!(an_expired_lease_can_be_claimed_again);

async fn twenty_concurrent_claims_on_ten_ready_applications(app: &TestApp) {
    let mut ids = HashSet::new();
    for _ in 0..10 {
        ids.insert(id(&app.application(&app.alice, &[], "queued").await));
    }
    let applier = Arc::new(app.machine("JobApplier.Bot"));
    let base = app.base.clone();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (token, base, http) = (applier.clone(), base.clone(), app.http.clone());
            tokio::spawn(async move {
                let r = http
                    .post(format!("{base}/api/job-applications/claim"))
                    .bearer_auth(token.as_str())
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("send");
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                (status, body["id"].as_str().map(str::to_owned))
            })
        })
        .collect();
    let mut claimed = Vec::new();
    let mut empty = 0;
    for t in tasks {
        match t.await.expect("join") {
            (200, Some(id)) => claimed.push(id),
            (204, None) => empty += 1,
            other => panic!("unexpected claim answer {other:?}"),
        }
    }
    assert_eq!(claimed.len(), 10, "each ready application claimed");
    assert_eq!(empty, 10);
    assert_eq!(
        claimed.iter().cloned().collect::<HashSet<_>>(),
        ids,
        "each exactly once"
    );
}
both!(twenty_concurrent_claims_on_ten_ready_applications);

async fn concurrent_status_changes_lose_no_update(app: &TestApp) {
    let a = app.application(&app.alice, &[], "queued").await;
    let app_id = id(&a);
    let alice = Arc::new(app.user(&app.alice));
    let targets = [
        "saved",
        "withdrawn",
        "saved",
        "withdrawn",
        "saved",
        "withdrawn",
        "saved",
        "withdrawn",
    ];
    let tasks: Vec<_> = targets
        .iter()
        .map(|to| {
            let (token, base, http, app_id, to) = (
                alice.clone(),
                app.base.clone(),
                app.http.clone(),
                app_id.clone(),
                to.to_string(),
            );
            tokio::spawn(async move {
                let r = http
                    .patch(format!("{base}/api/job-applications/{app_id}/status"))
                    .bearer_auth(token.as_str())
                    .json(&json!({"status": to}))
                    .send()
                    .await
                    .expect("send");
                (r.status().as_u16(), to)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (status, to) = t.await.expect("join");
        match status {
            200 => winners.push(to),
            409 => {}
            other => panic!("unexpected {other}"),
        }
    }
    let final_state = app
        .get(&format!("/api/job-applications/{app_id}"), &alice)
        .await
        .body;
    let changes: Vec<_> = app
        .event_actions(&app_id)
        .await
        .into_iter()
        .filter(|(_, a)| a == "status_changed")
        .collect();
    assert_eq!(
        changes.len(),
        winners.len(),
        "one event per successful change"
    );
    assert_eq!(
        final_state["version"],
        1 + winners.len() as i64,
        "every success bumped the version once"
    );
    // Valid sequences only: queued → saved, queued → withdrawn, or queued → saved → withdrawn.
    // (Winners are in join order, not commit order.)
    winners.sort();
    let expected_final = if winners.iter().any(|w| w == "withdrawn") {
        "withdrawn"
    } else {
        "saved"
    };
    assert!(matches!(winners.len(), 1 | 2), "{winners:?}");
    if winners.len() == 2 {
        assert_eq!(winners, ["saved", "withdrawn"]);
    }
    assert_eq!(final_state["status"], expected_final);
}
both!(concurrent_status_changes_lose_no_update);

async fn lists_page_with_cursors(app: &TestApp) {
    app.profile(&app.alice).await;
    let alice = app.user(&app.alice);
    let mut created = Vec::new();
    for i in 0..5 {
        // 0 to 4 questions each: a page's questions are fetched together and must land on
        // their own application, in order.
        let questions: Vec<String> = (0..i).map(|j| format!("C{i} q{j}?")).collect();
        let r = app
            .post(
                "/api/job-applications",
                &alice,
                json!({"company": format!("C{i}"), "position": "P", "questions": questions}),
            )
            .await;
        created.push(id(&r.body));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/job-applications?limit=2&cursor={c}"),
            None => "/api/job-applications?limit=2".to_owned(),
        };
        let page = app.get(&path, &alice).await.body;
        for item in page["items"].as_array().expect("items") {
            let company = item["company"].as_str().expect("company");
            let texts: Vec<&str> = item["questions"]
                .as_array()
                .expect("questions")
                .iter()
                .map(|q| q["text"].as_str().expect("text"))
                .collect();
            let count: usize = company[1..].parse().expect("C<i>");
            let expected: Vec<String> = (0..count).map(|j| format!("{company} q{j}?")).collect();
            assert_eq!(texts, expected, "{item}");
        }
        seen.extend(page["items"].as_array().expect("items").iter().map(id));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created);
    let filtered = app
        .get("/api/job-applications?status=queued", &alice)
        .await
        .body;
    assert_eq!(filtered["items"].as_array().expect("items").len(), 0);
    let by_number = app.get("/api/job-applications?status=0", &alice).await.body;
    assert_eq!(by_number["items"].as_array().expect("items").len(), 5);
    assert_eq!(
        app.get("/api/job-applications?status=nope", &alice)
            .await
            .status,
        422
    );
    assert_eq!(
        app.get("/api/job-applications?limit=0", &alice)
            .await
            .status,
        422
    );
    assert_eq!(
        app.get("/api/job-applications?cursor=../etc", &alice)
            .await
            .status,
        422
    );
    let rep = app.machine("CandidateRepresenter.Bot");
    let qs = app
        .get("/api/questions?unanswered=true&limit=3", &rep)
        .await
        .body;
    assert_eq!(qs["items"].as_array().expect("items").len(), 3);
    assert_eq!(qs["items"][0]["user_id"], app.alice.as_str());
    assert!(qs["next_cursor"].is_string());
}
both!(lists_page_with_cursors);
