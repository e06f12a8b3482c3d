//! The rules under concurrency, on both databases: repeated trials of racing requests, after
//! which the audit trail must show no write that a rule forbids at that point.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::TestApp;

const TRIALS: usize = 5;
const RACERS: usize = 40;
const QUESTIONS: [&str; 4] = ["Q one?", "Q two?", "Q three?", "Q four?"];

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// A queued application whose questions `answerer` answered: ready.
async fn ready_application(app: &TestApp, answerer: &str) -> Value {
    let a = app.application(&app.alice, &QUESTIONS, "queued").await;
    let app_id = id(&a);
    for q in a["questions"].as_array().expect("questions") {
        let r = app
            .answer(answerer, &app_id, &id(q), json!({"answer": "first"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    a
}

fn position(events: &[Value], pred: impl Fn(&Value) -> bool) -> Option<usize> {
    events.iter().position(pred)
}

async fn answers_racing_submit(app: &TestApp) {
    let alice = app.user(&app.alice);
    let applier = app.machine("JobApplier.Bot");
    let mut landed_after = 0;
    let mut refused_total = 0;
    for trial in 0..TRIALS {
        let a = ready_application(app, &alice).await;
        let app_id = id(&a);
        let claimed = app.claim(&applier, 60).await;
        assert_eq!(claimed.status, 200, "trial {trial}: {}", claimed.body);
        assert_eq!(id(&claimed.body), app_id);
        let lease = claimed.body["lease_id"].as_str().expect("lease").to_owned();
        let qids: Vec<String> = a["questions"]
            .as_array()
            .expect("q")
            .iter()
            .map(id)
            .collect();
        let answers = (0..RACERS).map(|i| {
            let (alice, app_id, qid) =
                (alice.clone(), app_id.clone(), qids[i % qids.len()].clone());
            async move {
                app.answer(
                    &alice,
                    &app_id,
                    &qid,
                    json!({"answer": format!("racer {i}")}),
                )
                .await
                .status
                .as_u16()
            }
        });
        let submit = async { app.submit(&applier, &app_id, &lease).await.status.as_u16() };
        let (statuses, submitted) = tokio::join!(join_all(answers), submit);
        assert_eq!(submitted, 200, "trial {trial}: answers keep it ready");
        assert!(
            statuses.iter().all(|s| matches!(s, 200 | 409)),
            "trial {trial}: {statuses:?}"
        );
        let accepted = statuses.iter().filter(|s| **s == 200).count();
        refused_total += RACERS - accepted;

        let events = app.events(&app_id).await;
        let submitted_at =
            position(&events, |e| e["to_status"] == "submitted").expect("a submitted event");
        let answered: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e["action"] == "answered")
            .map(|(i, _)| i)
            .collect();
        landed_after += answered.iter().filter(|i| **i > submitted_at).count();
        assert_eq!(
            answered.len(),
            QUESTIONS.len() + accepted,
            "trial {trial}: one event per accepted answer, none for a refused one"
        );
        // The rows agree with the trail: nothing answered later than the submission.
        let at = events[submitted_at]["at"].as_str().expect("at").to_owned();
        let final_app = app
            .get(&format!("/api/job-applications/{app_id}"), &alice)
            .await
            .body;
        assert_eq!(final_app["status"], "submitted");
        for q in final_app["questions"].as_array().expect("q") {
            assert!(
                q["answered_at"].as_str().expect("answered_at") <= at.as_str(),
                "trial {trial}: {q} answered after the submission at {at}"
            );
        }
    }
    assert_eq!(landed_after, 0, "answers committed after the submission");
    eprintln!(
        "answers_racing_submit ({:?}): {TRIALS} trials x {RACERS} answers: {refused_total} refused after the submission, 0 landed after it",
        app.db.backend
    );
}
both!(answers_racing_submit);

async fn bot_answers_racing_claim(app: &TestApp) {
    let rep = app.machine("CandidateRepresenter.Bot");
    let applier = app.machine("JobApplier.Bot");
    let rep_actor = format!(
        "machine:{}",
        app.mock
            .machine_by_name("CandidateRepresenter.Bot")
            .expect("rep")
            .id
    );
    let mut during_claim = 0;
    let mut refused_total = 0;
    for trial in 0..TRIALS {
        let a = ready_application(app, &rep).await;
        let app_id = id(&a);
        let qids: Vec<String> = a["questions"]
            .as_array()
            .expect("q")
            .iter()
            .map(id)
            .collect();
        let answers = (0..RACERS).map(|i| {
            let (rep, app_id, qid) = (rep.clone(), app_id.clone(), qids[i % qids.len()].clone());
            async move {
                app.answer(&rep, &app_id, &qid, json!({"answer": format!("bot {i}")}))
                    .await
                    .status
                    .as_u16()
            }
        });
        // On Postgres a claim passes over a row an answer holds locked (SKIP LOCKED) and
        // answers 204; the applier then polls again, as this does.
        let claim = async {
            loop {
                let r = app.claim(&applier, 60).await;
                if r.status != 204 {
                    break r;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        let (statuses, claimed) = tokio::join!(join_all(answers), claim);
        assert_eq!(claimed.status, 200, "trial {trial}: {}", claimed.body);
        assert_eq!(id(&claimed.body), app_id);
        assert!(
            statuses.iter().all(|s| matches!(s, 200 | 409)),
            "trial {trial}: {statuses:?}"
        );
        let events = app.events(&app_id).await;
        let claimed_at = position(&events, |e| e["action"] == "claimed").expect("claimed");
        during_claim += events[claimed_at..]
            .iter()
            .filter(|e| e["action"] == "answered" && e["actor"] == rep_actor.as_str())
            .count();
        let accepted = statuses.iter().filter(|s| **s == 200).count();
        refused_total += RACERS - accepted;
        assert_eq!(
            events.iter().filter(|e| e["action"] == "answered").count(),
            QUESTIONS.len() + accepted,
            "trial {trial}: one event per accepted answer"
        );
        // Clean up: this trial's application leaves the queue.
        let lease = claimed.body["lease_id"].as_str().expect("lease");
        assert_eq!(app.submit(&applier, &app_id, lease).await.status, 200);
    }
    assert_eq!(during_claim, 0, "bot answers committed during a claim");
    eprintln!(
        "bot_answers_racing_claim ({:?}): {TRIALS} trials x {RACERS} bot answers: {refused_total} refused during the claim, 0 landed during it",
        app.db.backend
    );
}
both!(bot_answers_racing_claim);

async fn two_appliers_race_claim_and_takeover(app: &TestApp) {
    for trial in 0..TRIALS {
        // Minted per trial: the clock moves 11 s each time.
        let alice = app.user(&app.alice);
        let a = ready_application(app, &alice).await;
        let app_id = id(&a);
        // Two instances of the same machine, each with its own token.
        let tokens = [app.machine("JobApplier.Bot"), app.machine("JobApplier.Bot")];
        let race = |lease: u32| {
            join_all(tokens.iter().map(|t| async move {
                let r = app.claim(t, lease).await;
                (
                    r.status.as_u16(),
                    r.body["lease_id"].as_str().map(str::to_owned),
                )
            }))
        };
        let first = race(10).await;
        let winners: Vec<_> = first.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(winners.len(), 1, "trial {trial}: one claim wins: {first:?}");
        assert!(first.iter().any(|(s, _)| *s == 204), "{first:?}");
        let old_lease = winners[0].1.clone().expect("lease");
        let old_holder = first.iter().position(|(s, _)| *s == 200).expect("winner");

        app.advance(Duration::from_secs(11));
        let tokens_now = [app.machine("JobApplier.Bot"), app.machine("JobApplier.Bot")];
        let second = join_all(tokens_now.iter().map(|t| async move {
            let r = app.claim(t, 60).await;
            (
                r.status.as_u16(),
                r.body["lease_id"].as_str().map(str::to_owned),
            )
        }))
        .await;
        let winners: Vec<_> = second.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(
            winners.len(),
            1,
            "trial {trial}: one takeover wins: {second:?}"
        );
        let new_lease = winners[0].1.clone().expect("lease");
        assert_ne!(old_lease, new_lease);

        // Both claimants submit at once: only the current lease lands.
        let (late, current) = tokio::join!(
            app.submit(&tokens_now[old_holder], &app_id, &old_lease),
            app.submit(&tokens_now[1 - old_holder], &app_id, &new_lease),
        );
        assert_eq!(late.status, 409, "trial {trial}: {}", late.body);
        assert_eq!(current.status, 200, "trial {trial}: {}", current.body);
        let actions: Vec<Value> = app
            .events(&app_id)
            .await
            .iter()
            .map(|e| e["action"].clone())
            .filter(|a| a != "answered")
            .collect();
        assert_eq!(
            actions,
            ["created", "claimed", "claimed", "status_changed"],
            "trial {trial}"
        );
    }
}
both!(two_appliers_race_claim_and_takeover);
