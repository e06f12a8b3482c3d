//! Each bot's loop end to end, and the full pipeline.

use std::collections::HashSet;
use std::time::Duration;

use bot_runtime::Bot;
use clerk_mock::Endpoint;
use e2e::{Running, Stack};
use jobtracker_api_testing::Backend;
use reqwest::Method;
use serde_json::{Value, json};

use e2e::both;

const WAIT: Duration = Duration::from_secs(30);

async fn full_pipeline(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let alice = stack.alice.clone();
    let id = stack
        .new_application(
            &alice,
            &[
                "How many years of Rust experience do you have?",
                "Will you require visa sponsorship?",
                "What are your salary expectations?",
            ],
        )
        .await;
    let (rep, applier) = (stack.representer(|_| {}), stack.applier(|_| {}));
    let bots = Running::start(std::slice::from_ref(&rep), std::slice::from_ref(&applier));
    assert!(
        stack
            .wait_for_status(&alice, std::slice::from_ref(&id), "submitted", WAIT)
            .await,
        "the pipeline completes"
    );
    bots.stop().await;

    let app = stack.application(&alice, &id).await;
    assert_eq!(app["submission_ref"], format!("outbox:{id}"));
    let answers: Vec<&str> = app["questions"]
        .as_array()
        .expect("questions")
        .iter()
        .map(|q| q["answer"].as_str().expect("answered"))
        .collect();
    assert!(
        answers[0].contains("7 years") && answers[0].contains("Rust"),
        "{answers:?}"
    );
    assert!(answers[1].starts_with("No"));
    assert!(answers[2].contains("EUR 85,000"));

    let packet: Value = serde_json::from_slice(
        &std::fs::read(stack.outbox.join(&id).join("packet.json")).expect("packet"),
    )
    .expect("json");
    assert_eq!(packet["application_id"], id.as_str());
    assert_eq!(packet["candidate"]["id"], alice.as_str());
    assert_eq!(packet["answers"].as_array().expect("answers").len(), 3);
    let resume = std::fs::read(stack.outbox.join(&id).join("resume.pdf")).expect("resume file");
    assert_eq!(resume, b"%PDF-1.4 Alice's resume");

    let events = stack.events(&alice, &id).await;
    let actors: HashSet<&str> = events.iter().map(|(a, _, _)| a.as_str()).collect();
    for actor in [
        format!("user:{alice}"),
        format!("machine:{}", stack.machine_id("CandidateRepresenter.Bot")),
        format!("machine:{}", stack.machine_id("JobApplier.Bot")),
    ] {
        assert!(
            actors.contains(actor.as_str()),
            "{actor} missing from {events:?}"
        );
    }
    assert_eq!(
        events
            .iter()
            .filter(|(_, a, to)| a == "status_changed" && to.as_deref() == Some("submitted"))
            .count(),
        1
    );

    // Clerk calls: one token per bot for the whole run; the API verified each token once.
    assert_eq!(
        stack.mock.calls(Endpoint::CreateToken),
        2,
        "one create per bot per lifetime"
    );
    assert_eq!(
        stack.mock.calls(Endpoint::VerifyToken),
        2,
        "verify calls bounded by distinct tokens, not requests"
    );
    assert_eq!(applier.counters().get("submitted"), 1);
    assert_eq!(rep.counters().get("questions_answered"), 3);
}
both!(full_pipeline);

async fn ungrounded_questions_wait_for_a_person(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let alice = stack.alice.clone();
    let id = stack
        .new_application(
            &alice,
            &[
                "What is your notice period?",
                "What is your favourite colour?",
            ],
        )
        .await;
    let (rep, applier) = (stack.representer(|_| {}), stack.applier(|_| {}));
    let bots = Running::start(std::slice::from_ref(&rep), std::slice::from_ref(&applier));
    let started = std::time::Instant::now();
    while rep.counters().get("questions_flagged") == 0 && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let app = stack.application(&alice, &id).await;
    assert_eq!(
        app["status"], "queued",
        "not submitted while a question awaits review"
    );
    assert_eq!(app["questions"][1]["needs_review"], true);
    assert_eq!(
        app["questions"][1]["answer"],
        Value::Null,
        "nothing invented"
    );
    assert!(
        app["questions"][1]["review_reason"]
            .as_str()
            .expect("reason")
            .contains("no rule")
    );
    let qid = app["questions"][1]["id"].as_str().expect("qid");
    let (s, _) = stack
        .call(
            Method::PUT,
            &format!("/api/job-applications/{id}/questions/{qid}/answer"),
            &stack.user_token(&alice),
            Some(json!({"answer": "Teal"})),
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        stack
            .wait_for_status(&alice, std::slice::from_ref(&id), "submitted", WAIT)
            .await
    );
    bots.stop().await;
}
both!(ungrounded_questions_wait_for_a_person);

async fn three_appliers_submit_fifty_applications_exactly_once(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let alice = stack.alice.clone();
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(stack.new_application(&alice, &[]).await);
    }
    let appliers = [
        stack.applier(|_| {}),
        stack.applier(|_| {}),
        stack.applier(|_| {}),
    ];
    let bots = Running::start(&[], &appliers);
    assert!(
        stack
            .wait_for_status(&alice, &ids, "submitted", Duration::from_secs(60))
            .await,
        "all 50 submitted"
    );
    bots.stop().await;
    let total: u64 = appliers.iter().map(|a| a.counters().get("submitted")).sum();
    assert_eq!(
        total, 50,
        "each application submitted by exactly one applier"
    );
    assert!(
        appliers
            .iter()
            .filter(|a| a.counters().get("submitted") > 0)
            .count()
            >= 2,
        "the work was shared"
    );
    let published = std::fs::read_dir(&stack.outbox)
        .expect("outbox")
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(published, 50);
    for id in &ids {
        let events = stack.events(&alice, id).await;
        assert_eq!(
            events.iter().filter(|(_, a, _)| a == "claimed").count(),
            1,
            "{id} claimed once"
        );
        assert_eq!(
            events
                .iter()
                .filter(|(_, a, to)| a == "status_changed" && to.as_deref() == Some("submitted"))
                .count(),
            1
        );
    }
}
both!(three_appliers_submit_fifty_applications_exactly_once);

async fn a_crash_after_submitting_never_submits_twice(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let alice = stack.alice.clone();
    let id = stack.new_application(&alice, &[]).await;
    // A previous applier published the packet, then died before recording it.
    let submitter = job_applier::submit::Submitter::Outbox(stack.outbox.clone());
    submitter
        .submit(
            &id,
            json!({"application_id": id, "note": "first attempt"}),
            None,
        )
        .await
        .expect("published");
    let applier = stack.applier(|_| {});
    assert!(applier.run_once().await.expect("claims"));
    assert_eq!(applier.counters().get("resubmissions_avoided"), 1);
    let packet: Value = serde_json::from_slice(
        &std::fs::read(stack.outbox.join(&id).join("packet.json")).expect("packet"),
    )
    .expect("json");
    assert_eq!(
        packet["note"], "first attempt",
        "the earlier submission stands untouched"
    );
    assert_eq!(stack.application(&alice, &id).await["status"], "submitted");
}
both!(a_crash_after_submitting_never_submits_twice);

async fn the_last_failed_attempt_marks_the_application_failed_with_a_reason(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let alice = stack.alice.clone();
    let id = stack.new_application(&alice, &[]).await;
    let applier = stack.applier(|c| c.max_attempts = 1);
    let (s, _) = stack
        .call(
            Method::PATCH,
            &format!("/api/job-applications/{id}/status"),
            &stack.user_token(&alice),
            Some(json!({"status": "saved"})),
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        !applier.run_once().await.expect("nothing ready"),
        "saved applications are not claimed"
    );
    let (s, _) = stack
        .call(
            Method::PATCH,
            &format!("/api/job-applications/{id}/status"),
            &stack.user_token(&alice),
            Some(json!({"status": "queued"})),
        )
        .await;
    assert_eq!(s, 200);
    let webhook_down = stack.applier(|c| {
        c.submit_url = Some("http://127.0.0.1:9/unreachable".into());
        c.max_attempts = 1;
    });
    assert!(webhook_down.run_once().await.expect("claims"));
    let app = stack.application(&alice, &id).await;
    assert_eq!(
        app["status"], "failed",
        "after the last attempt it is failed, with a reason"
    );
    assert!(
        app["reason"]
            .as_str()
            .expect("reason")
            .contains("webhook unreachable")
    );
    let _ = applier;
}
both!(the_last_failed_attempt_marks_the_application_failed_with_a_reason);
