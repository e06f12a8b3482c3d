//! The service and its caller against clerk-mock, in process: a real Clerk's behaviour, offline.

use std::collections::HashMap;

use clerk_mock::ClerkMock;
use m2m_core::VerifierConfig;
use m2m_core::config::Env;

fn env<const N: usize>(vars: [(&'static str, String); N]) -> Env<'static> {
    let vars = HashMap::from(vars);
    Env::from_fn(move |name| vars.get(name).cloned())
}

/// Starts the service as the seeded `JobTracker.API` machine, allowing `JobApplier.Bot` only.
async fn start(mock: &ClerkMock) -> String {
    let api = mock.machine_by_name("JobTracker.API").expect("seeded");
    let allowed = vec![mock.machine_by_name("JobApplier.Bot").expect("seeded").id];
    // In code, typed: what CLERK_API_BASE_URL, CLERK_MACHINE_SECRET_KEY and CLERK_MACHINE_ID set.
    let config = VerifierConfig::builder()
        .api_base_url(mock.api_url())
        .machine_secret_key(api.secret_key.into())
        .machine_id(api.id)
        .build()
        .expect("settings");
    let app = adopter::app(adopter::verifier(config).expect("verifier"), allowed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// `GET {base}/jobs` as the seeded machine `name`: (status, body).
async fn get_jobs(mock: &ClerkMock, base: &str, name: &str) -> (u16, String) {
    let bot = mock.machine_by_name(name).expect("seeded");
    let vars = [
        ("CLERK_API_BASE_URL", mock.api_url()),
        ("CLERK_MACHINE_SECRET_KEY", bot.secret_key),
    ];
    let sender = adopter::sender(&env(vars)).expect("sender");
    let answer = sender
        .send(|http| http.get(format!("{base}/jobs")))
        .await
        .expect("answer");
    (answer.status().as_u16(), answer.text().await.expect("body"))
}

#[tokio::test]
async fn an_allowed_machine_gets_in_and_others_do_not() {
    let mock = ClerkMock::start_demo().await;
    let base = start(&mock).await;

    let applier = mock.machine_by_name("JobApplier.Bot").expect("seeded").id;
    assert_eq!(
        get_jobs(&mock, &base, "JobApplier.Bot").await,
        (200, format!("machine:{applier}"))
    );
    // Verified, but not a machine this service allows.
    assert_eq!(
        get_jobs(&mock, &base, "CandidateRepresenter.Bot").await.0,
        403
    );
    // No token at all.
    let anonymous = reqwest::get(format!("{base}/jobs")).await.expect("answer");
    assert_eq!(anonymous.status().as_u16(), 401);
}
