//! devstack's API: the settings the tests' API starts from (`jobtracker_api_testing::mock_config`),
//! on devstack's own addresses and database, reaching the mock through its public front door.

use clap::Parser;
use secrecy::ExposeSecret;

fn options(args: &[&str]) -> devstack::Options {
    let mut argv = vec!["devstack", "--clerk-mock-bind", "127.0.0.1:0"];
    argv.extend_from_slice(args);
    devstack::Options::try_parse_from(argv).expect("options")
}

async fn front_door(o: &devstack::Options) -> clerk_mock_service::MockService {
    let config = clerk_mock_service::Config::try_parse_from([
        "clerk-mock",
        "--bind",
        o.clerk_mock_bind.as_str(),
    ])
    .expect("mock settings");
    clerk_mock_service::start(&config)
        .await
        .expect("the mock starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_gets_the_tests_mock_settings_on_devstacks_addresses() {
    let o = options(&[
        "--api-bind",
        "127.0.0.1:5999",
        "--api-metrics-bind",
        "127.0.0.1:9999",
        "--data-dir",
        "/tmp/devstack-data/",
    ]);
    let service = front_door(&o).await;
    let config = devstack::api_config(&o, &service).expect("settings");
    let tests = jobtracker_api_testing::mock_config(
        service.mock(),
        "sqlite:///tmp/devstack-data/jobtracker.db?mode=rwc",
    );
    assert_eq!(config.bind.to_string(), "127.0.0.1:5999");
    assert_eq!(config.metrics_bind.to_string(), "127.0.0.1:9999");
    assert_eq!(
        config.database_url.expose_secret(),
        tests.database_url.expose_secret()
    );
    // Through the public port, like any other client; never wiremock's private one.
    assert_eq!(config.clerk.clerk_api_base_url, service.api_url());
    assert_ne!(config.clerk.clerk_api_base_url, service.mock().api_url());
    // Everything else is what the tests run with.
    assert_eq!(
        format!("{:?}", config.verifier),
        format!("{:?}", tests.verifier)
    );
    assert_eq!(
        config.roles().expect("roles"),
        tests.roles().expect("roles")
    );
    assert_eq!(config.resume_max_bytes, tests.resume_max_bytes);
    service.stop().await.expect("the mock stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_url_replaces_the_sqlite_file_under_the_data_dir() {
    let o = options(&["--database-url", "postgres://u:p@db/jobtracker"]);
    let service = front_door(&o).await;
    let config = devstack::api_config(&o, &service).expect("settings");
    assert_eq!(
        config.database_url.expose_secret(),
        "postgres://u:p@db/jobtracker"
    );
    service.stop().await.expect("the mock stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_api_address_is_refused_naming_its_variable() {
    for (flag, variable) in [
        ("--api-bind", "JOBTRACKER_BIND"),
        ("--api-metrics-bind", "API_METRICS_BIND"),
    ] {
        let o = options(&[flag, "localhost:5000"]);
        let service = front_door(&o).await;
        let err = devstack::api_config(&o, &service).expect_err("not an address");
        assert!(err.starts_with(&format!("{variable}: ")), "{err}");
        service.stop().await.expect("the mock stops");
    }
}
