//! Secrets in deployment: each secret setting is read from a file (`<NAME>_FILE`, as Docker
//! secrets mount them), never both ways at once, and no configuration prints one.

use std::collections::BTreeMap;

use clap::{CommandFactory, FromArgMatches};
use clerk_mock::ClerkMock;
use serde_json::json;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    path.to_string_lossy().into_owned()
}

fn parse<C: CommandFactory + FromArgMatches>(vars: &BTreeMap<&str, String>) -> Result<C, String> {
    devstack::config_from_env::<C>("test", vars).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_with_only_a_machine_key_file_verifies_opaque_tokens() {
    let mock = ClerkMock::start_demo().await;
    let api = mock.machine_by_name("JobTracker.API").expect("api machine");
    let applier = mock.machine_by_name("JobApplier.Bot").expect("applier");
    let dir = tempfile::tempdir().expect("dir");
    // As Docker writes a secret: the key and a newline.
    let key_file = write(&dir, "api_machine_key", &format!("{}\n", api.secret_key));
    let vars = BTreeMap::from([
        ("JOBTRACKER_BIND", "127.0.0.1:0".to_owned()),
        ("METRICS_BIND", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/jobtracker.db?mode=rwc", dir.path().display()),
        ),
        ("CLERK_API_BASE_URL", mock.api_url()),
        ("CLERK_MACHINE_SECRET_KEY_FILE", key_file.clone()),
        ("CLERK_MACHINE_ID", api.id.clone()),
        ("JOB_APPLIER_MACHINE_ID", applier.id.clone()),
    ]);
    let config: jobtracker_api::Config = parse(&vars).expect("the API's settings");
    assert!(
        config.verifier.clerk_secret_key.is_none(),
        "no instance key"
    );
    let server = jobtracker_api::Server::build(&config)
        .await
        .expect("the API starts");
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));

    let minted = mock.mint(&applier.id, &json!({ "seconds_until_expiration": 600 }));
    let token = minted["token"]
        .as_str()
        .expect("an opaque token")
        .to_owned();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let whoami = |token: String| {
        let http = http.clone();
        let url = format!("{base}/api/whoami");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("the API answers")
        }
    };
    let ok = whoami(token).await;
    assert_eq!(ok.status(), 200, "the applier's opaque token is accepted");
    let body: serde_json::Value = ok.json().await.expect("json");
    assert!(body.to_string().contains(&applier.id), "{body}");
    // The key is what verifies: a token Clerk does not know is refused.
    let refused = whoami("mt_0123456789abcdef0123456789abcdef".to_owned()).await;
    assert_eq!(refused.status(), 401);

    let _ = stop.send(());
    let _ = running.await;

    // The same key both ways is refused at start, naming both variables and neither value.
    let mut both = vars.clone();
    both.insert("CLERK_MACHINE_SECRET_KEY", api.secret_key.clone());
    let err = parse::<jobtracker_api::Config>(&both).expect_err("both set");
    assert!(
        err.contains("CLERK_MACHINE_SECRET_KEY and CLERK_MACHINE_SECRET_KEY_FILE"),
        "{err}"
    );
    assert!(!err.contains(&api.secret_key), "{err}");
    // A file that is not there: one line naming the variable and the path.
    let mut missing = vars;
    missing.insert("CLERK_MACHINE_SECRET_KEY_FILE", format!("{key_file}.gone"));
    let err = parse::<jobtracker_api::Config>(&missing).expect_err("missing file");
    assert!(
        err.contains("CLERK_MACHINE_SECRET_KEY_FILE") && err.contains(".gone"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Values no `Debug` output may contain.
const SECRETS: [(&str, &str, &str); 5] = [
    (
        "CLERK_MACHINE_SECRET_KEY",
        "ak_debug_machine_secret_0001",
        "ak_debug_machine_secret_0001",
    ),
    (
        "CLERK_SECRET_KEY",
        "sk_test_debug_instance_secret_0001",
        "sk_test_debug_instance_secret_0001",
    ),
    (
        "CLERK_M2M_TOKEN",
        "mt_debug_static_token_0001",
        "mt_debug_static_token_0001",
    ),
    (
        "DATABASE_URL",
        "postgres://jobtracker:pw_debug_database_0001@db:5432/jobtracker",
        "pw_debug_database_0001",
    ),
    (
        "APPLIER_SUBMIT_URL",
        "https://hook:pw_debug_webhook_0001@hooks.example/submit?token=tk_debug_webhook_0001",
        "debug_webhook_0001",
    ),
];

fn assert_redacted(what: &str, text: &str) {
    for (var, _, secret) in SECRETS {
        assert!(
            !text.contains(secret),
            "{what}'s Debug prints {var}: {text}"
        );
    }
}

#[test]
fn no_configuration_prints_a_secret_in_debug() {
    let mut vars: BTreeMap<&str, String> = SECRETS
        .iter()
        .map(|(var, value, _)| (*var, (*value).to_owned()))
        .collect();
    vars.insert("CLERK_JWKS_URL", "https://clerk.example/jwks".to_owned());
    vars.insert("CLERK_MACHINE_ID", "mch_2Debug".to_owned());
    let api: jobtracker_api::Config = parse(&vars).expect("api");
    assert_redacted("jobtracker_api::Config", &format!("{api:?}"));
    assert_redacted(
        "VerifierConfig",
        &format!("{:?}", api.verifier().expect("verifier")),
    );
    let representer: candidate_representer::Config = parse(&vars).expect("representer");
    assert_redacted("candidate_representer::Config", &format!("{representer:?}"));
    assert_redacted(
        "M2mClientConfig",
        &format!(
            "{:?}",
            representer
                .common
                .token
                .client_config(&representer.common.clerk)
                .expect("client config")
        ),
    );
    let applier: job_applier::Config = parse(&vars).expect("applier");
    assert!(applier.submit_url.is_some(), "the webhook was read");
    assert_redacted("job_applier::Config", &format!("{applier:?}"));
    let submitter = job_applier::submit::Submitter::webhook(applier.submit_url.expect("url"));
    assert_redacted("Submitter", &format!("{submitter:?}"));
    let devstack: devstack::Options = parse(&vars).expect("devstack");
    assert!(devstack.database_url.is_some(), "the database URL was read");
    assert_redacted("devstack::Options", &format!("{devstack:?}"));
    let mock: clerk_mock_service::Config = parse(&vars).expect("clerk-mock");
    assert_redacted("clerk_mock_service::Config", &format!("{mock:?}"));
    // And as files: the same values read through <NAME>_FILE.
    let dir = tempfile::tempdir().expect("dir");
    let files: BTreeMap<String, String> = SECRETS
        .iter()
        .map(|(var, value, _)| (format!("{var}_FILE"), write(&dir, var, value)))
        .collect();
    let mut from_files: BTreeMap<&str, String> =
        files.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    from_files.insert("CLERK_MACHINE_ID", "mch_2Debug".to_owned());
    let api: jobtracker_api::Config = parse(&from_files).expect("api from files");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&api.database_url),
        SECRETS[3].1
    );
    assert_redacted("jobtracker_api::Config", &format!("{api:?}"));
    let applier: job_applier::Config = parse(&from_files).expect("applier from files");
    assert_redacted("job_applier::Config", &format!("{applier:?}"));
}
