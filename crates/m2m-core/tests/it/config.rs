use std::collections::HashMap;
use std::time::Duration;

use m2m_core::clerk::ClerkClient;
use m2m_core::config::ServiceTokens;
use m2m_core::config::{ClerkArgs, TokenArgs, VerifierArgs};
use m2m_core::config::{ConfigError, Env};
use m2m_core::settings::TokenFormat;
use m2m_core::{M2mClientConfig, TokenSource};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(pairs: &[(&str, &str)], service: Option<&str>) -> Result<M2mClientConfig, ConfigError> {
    let map = env(pairs);
    M2mClientConfig::from_env(&Env::from_fn(|k| map.get(k).cloned()), service)
}

const KEY: (&str, &str) = ("CLERK_MACHINE_SECRET_KEY", "ak_live_secret_value_123");

#[test]
fn defaults_match_the_mirrored_system() {
    let c = load(&[KEY], None).expect("config");
    assert_eq!(c.api_base_url, "https://api.clerk.com/v1");
    assert!(c.enabled);
    assert_eq!(c.mint.lifetime, Duration::from_secs(3600));
    assert_eq!(c.mint.refresh_buffer, Duration::from_secs(300));
    assert_eq!(c.mint.format, TokenFormat::Opaque);
    assert!(c.mint.min_remaining_ttl.is_none());
}

#[test]
fn jwt_tokens_default_to_a_short_lifetime_because_they_cannot_be_revoked() {
    let c = load(&[KEY, ("M2M_TOKEN_FORMAT", "jwt")], None).expect("config");
    assert_eq!(c.mint.format, TokenFormat::Jwt);
    assert_eq!(c.mint.lifetime, Duration::from_secs(300));
    assert_eq!(c.mint.refresh_buffer, Duration::from_secs(60));
    let c = load(
        &[
            KEY,
            ("M2M_TOKEN_FORMAT", "jwt"),
            ("M2M_TOKEN_LIFETIME_SECONDS", "900"),
        ],
        None,
    )
    .expect("config");
    assert_eq!(c.mint.lifetime, Duration::from_secs(900));
    assert_eq!(c.mint.refresh_buffer, Duration::from_secs(60));
}

#[test]
fn malformed_values_name_the_variable_and_never_echo_secrets() {
    for (pairs, var) in [
        (
            vec![KEY, ("M2M_TOKEN_LIFETIME_SECONDS", "1h")],
            "M2M_TOKEN_LIFETIME_SECONDS",
        ),
        (
            vec![KEY, ("M2M_TOKEN_LIFETIME_SECONDS", "0")],
            "M2M_TOKEN_LIFETIME_SECONDS",
        ),
        (
            vec![KEY, ("M2M_TOKEN_REFRESH_BUFFER_SECONDS", "-1")],
            "M2M_TOKEN_REFRESH_BUFFER_SECONDS",
        ),
        (
            vec![KEY, ("M2M_TOKEN_REFRESH_BUFFER_SECONDS", "3600")],
            "M2M_TOKEN_REFRESH_BUFFER_SECONDS",
        ),
        (
            vec![KEY, ("M2M_TOKEN_FORMAT", "paseto")],
            "M2M_TOKEN_FORMAT",
        ),
        (
            vec![KEY, ("M2M_TOKEN_MIN_REMAINING_TTL_SECONDS", "200")],
            "M2M_TOKEN_MIN_REMAINING_TTL_SECONDS",
        ),
        (vec![KEY, ("ENABLE_M2M_AUTH", "maybe")], "ENABLE_M2M_AUTH"),
        (
            vec![KEY, ("CLERK_API_BASE_URL", "api.clerk.com")],
            "CLERK_API_BASE_URL",
        ),
        (
            vec![("CLERK_MACHINE_SECRET_KEY", "sk_live_instance_secret")],
            "CLERK_MACHINE_SECRET_KEY",
        ),
        (
            vec![("CLERK_MACHINE_SECRET_KEY", "hunter2")],
            "CLERK_MACHINE_SECRET_KEY",
        ),
        (vec![], "CLERK_MACHINE_SECRET_KEY"),
    ] {
        let err = load(&pairs, None).expect_err("invalid");
        assert_eq!(err.var, var, "{pairs:?}");
        let text = err.to_string();
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        for secret in [
            "sk_live_instance_secret",
            "hunter2",
            "ak_live_secret_value_123",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

#[test]
fn min_remaining_ttl_must_exceed_the_buffer() {
    let ok = load(&[KEY, ("M2M_TOKEN_MIN_REMAINING_TTL_SECONDS", "600")], None).expect("valid");
    assert_eq!(ok.mint.min_remaining_ttl, Some(Duration::from_secs(600)));
    assert!(
        load(&[KEY, ("M2M_TOKEN_MIN_REMAINING_TTL_SECONDS", "300")], None).is_err(),
        "equal to the buffer"
    );
    assert!(
        load(
            &[KEY, ("M2M_TOKEN_MIN_REMAINING_TTL_SECONDS", "3600")],
            None
        )
        .is_err(),
        "equal to the lifetime"
    );
}

#[tokio::test]
async fn the_source_kind_follows_the_settings() {
    let client = ClerkClient::new("http://127.0.0.1:9").expect("client");
    let clock = m2m_core::clock::system();
    let kind = |c: M2mClientConfig| {
        c.token_source(&client, clock.clone())
            .expect("source")
            .kind()
    };
    assert_eq!(kind(load(&[KEY], None).expect("c")), "minted");
    assert_eq!(
        kind(load(&[KEY, ("CLERK_M2M_TOKEN", "mt_pre")], None).expect("c")),
        "static"
    );
    assert_eq!(
        kind(load(&[("CLERK_M2M_TOKEN", "mt_pre")], None).expect("c")),
        "static",
        "no key needed with a static token"
    );
    assert_eq!(
        kind(load(&[("ENABLE_M2M_AUTH", "false")], None).expect("c")),
        "disabled"
    );

    let per_service = load(
        &[
            ("CLERK_M2M_TOKEN", "mt_default"),
            ("CLERK_M2M_TOKEN_JOB_APPLIER", "mt_applier"),
        ],
        Some("job-applier"),
    )
    .expect("c");
    match per_service
        .token_source(&client, clock.clone())
        .expect("source")
    {
        TokenSource::Static(t) => assert_eq!(t.expose(), "mt_applier"),
        other => panic!("expected static, got {other:?}"),
    }
}

#[test]
fn service_tokens_offer_the_older_packages_operations() {
    let tokens = ServiceTokens::from_vars([
        ("CLERK_M2M_TOKEN_JOB_APPLIER", "mt_a"),
        ("CLERK_M2M_MACHINE_ID_JOB_APPLIER", "mch_applier"),
        ("CLERK_M2M_TOKEN_CANDIDATE_REPRESENTER", "mt_r"),
        ("CLERK_M2M_TOKEN_EMPTY", "  "),
        ("UNRELATED", "x"),
    ])
    .expect("no files");
    assert_eq!(
        tokens.token_for("job-applier").expect("token").expose(),
        "mt_a"
    );
    assert_eq!(
        tokens.token_for("Job Applier").expect("token").expose(),
        "mt_a"
    );
    assert!(tokens.is_configured("candidate_representer"));
    assert!(!tokens.is_configured("empty"), "blank values do not count");
    assert!(!tokens.is_configured("other"));
    assert_eq!(
        tokens.expected_machine_id("JOB_APPLIER"),
        Some("mch_applier")
    );
    assert_eq!(tokens.expected_machine_id("candidate-representer"), None);
    let with_default = ServiceTokens::from_vars([("CLERK_M2M_TOKEN", "mt_d")]).expect("no files");
    assert_eq!(
        with_default
            .token_for("anything")
            .expect("default")
            .expose(),
        "mt_d"
    );
    assert!(!format!("{tokens:?}").contains("mt_a"), "Debug is redacted");
}

#[test]
fn service_tokens_read_a_token_from_the_file_its_file_variable_names() {
    let (_dir, path) = secret_file("mt_applier_from_a_file\n");
    let (_dir2, default) = secret_file("mt_default_from_a_file\n");
    let tokens = ServiceTokens::from_vars([
        ("CLERK_M2M_TOKEN_JOB_APPLIER_FILE", path.as_str()),
        ("CLERK_M2M_TOKEN_FILE", default.as_str()),
        ("CLERK_M2M_TOKEN_CANDIDATE_REPRESENTER", "mt_r"),
    ])
    .expect("readable");
    assert_eq!(
        tokens.token_for("job-applier").expect("token").expose(),
        "mt_applier_from_a_file"
    );
    assert_eq!(
        tokens.token_for("anyone").expect("default").expose(),
        "mt_default_from_a_file"
    );
    assert_eq!(
        tokens.services().collect::<Vec<_>>(),
        ["CANDIDATE_REPRESENTER", "JOB_APPLIER"],
        "the file variable names no service of its own"
    );

    // Both ways at once, or a file that is not there: an error naming the variables only.
    let err = ServiceTokens::from_vars([
        ("CLERK_M2M_TOKEN_JOB_APPLIER", "mt_inline_secret"),
        ("CLERK_M2M_TOKEN_JOB_APPLIER_FILE", path.as_str()),
    ])
    .expect_err("both set");
    assert!(
        err.to_string().contains("CLERK_M2M_TOKEN_JOB_APPLIER_FILE"),
        "{err}"
    );
    assert!(!err.to_string().contains("mt_"), "{err}");
    let err = ServiceTokens::from_vars([("CLERK_M2M_TOKEN_JOB_APPLIER_FILE", "/nonexistent/t")])
        .expect_err("missing file");
    assert_eq!(err.var, "CLERK_M2M_TOKEN_JOB_APPLIER_FILE");
}

#[test]
fn debug_output_of_secret_bearing_types_is_redacted() {
    let c = load(&[KEY, ("CLERK_M2M_TOKEN", "mt_static_secret")], None).expect("config");
    let text = format!("{c:?}");
    assert!(
        !text.contains("ak_live_secret_value_123") && !text.contains("mt_static_secret"),
        "{text}"
    );
    let t = m2m_core::BearerToken::new("mt_visible?");
    assert!(!format!("{t:?}").contains("mt_visible"));
}

fn verifier_config(pairs: &[(&str, &str)]) -> Result<m2m_core::VerifierConfig, ConfigError> {
    let map = env(pairs);
    m2m_core::VerifierConfig::from_env(&Env::from_fn(|k| map.get(k).cloned()))
}

#[test]
fn verifier_config_reads_the_api_variables() {
    let pem = clerk_mock::SigningKey::generate().public_key_pem();
    let c = verifier_config(&[
        ("CLERK_MACHINE_SECRET_KEY", "ak_api"),
        ("CLERK_SECRET_KEY", "sk_test_x"),
        ("CLERK_JWT_KEY", &pem),
        (
            "CLERK_JWKS_URL",
            "https://clerk.example.com/.well-known/jwks.json",
        ),
        (
            "CLERK_AUTHORIZED_PARTIES",
            "https://a.example, http://localhost:5000 ,",
        ),
        ("CLERK_ISSUER", "https://clerk.example.com"),
        ("M2M_VERIFY_CACHE_TTL_SECONDS", "0"),
        ("CLERK_MACHINE_ID", "mch_2JobTrackerApi0000000000000"),
    ])
    .expect("config");
    assert_eq!(
        c.machine_id.as_deref(),
        Some("mch_2JobTrackerApi0000000000000")
    );
    assert_eq!(
        c.policy.receiver.as_deref(),
        Some("mch_2JobTrackerApi0000000000000")
    );
    assert!(
        matches!(c.key_source, Some(m2m_core::settings::KeySource::Pem(_))),
        "the PEM wins: no network"
    );
    assert_eq!(
        c.policy.authorized_parties,
        vec!["https://a.example", "http://localhost:5000"]
    );
    assert_eq!(
        c.policy.issuer.as_deref(),
        Some("https://clerk.example.com")
    );
    assert_eq!(c.cache.ttl, Duration::ZERO);
    assert_eq!(
        c.cache.refresh_ahead,
        Duration::from_secs(10),
        "the default"
    );
    assert_eq!(
        verifier_config(&[
            ("CLERK_SECRET_KEY", "sk_test_x"),
            ("CLERK_JWKS_URL", "https://x.example/jwks")
        ])
        .expect("c")
        .cache
        .ttl,
        Duration::from_secs(60)
    );
    assert!(matches!(
        verifier_config(&[
            ("CLERK_SECRET_KEY", "sk_test_x"),
            ("CLERK_JWKS_URL", "https://x.example/jwks")
        ])
        .expect("c")
        .key_source,
        Some(m2m_core::settings::KeySource::Url(_))
    ));
    assert!(matches!(
        verifier_config(&[("CLERK_SECRET_KEY", "sk_test_x")])
            .expect("c")
            .key_source,
        Some(m2m_core::settings::KeySource::Bapi(_))
    ));
}

#[test]
fn verifier_config_errors_name_the_variable() {
    for (pairs, var) in [
        (vec![], "CLERK_MACHINE_SECRET_KEY"),
        (
            vec![("CLERK_SECRET_KEY", "ak_wrong_kind")],
            "CLERK_SECRET_KEY",
        ),
        (
            vec![("CLERK_MACHINE_SECRET_KEY", "sk_test_wrong_kind")],
            "CLERK_MACHINE_SECRET_KEY",
        ),
        (
            vec![
                ("CLERK_SECRET_KEY", "sk_test_x"),
                ("CLERK_JWT_KEY", "not a pem"),
            ],
            "CLERK_JWT_KEY",
        ),
        (
            vec![
                ("CLERK_SECRET_KEY", "sk_test_x"),
                ("CLERK_JWKS_URL", "nope"),
            ],
            "CLERK_JWKS_URL",
        ),
        (
            vec![
                ("CLERK_SECRET_KEY", "sk_test_x"),
                ("M2M_VERIFY_CACHE_TTL_SECONDS", "1m"),
            ],
            "M2M_VERIFY_CACHE_TTL_SECONDS",
        ),
        (
            vec![
                ("CLERK_SECRET_KEY", "sk_test_x"),
                ("M2M_VERIFY_CACHE_REFRESH_AHEAD_SECONDS", "-1"),
            ],
            "M2M_VERIFY_CACHE_REFRESH_AHEAD_SECONDS",
        ),
        (
            vec![
                ("CLERK_MACHINE_SECRET_KEY", "ak_api"),
                ("CLERK_MACHINE_ID", "ak_api"),
            ],
            "CLERK_MACHINE_ID",
        ),
        (
            vec![
                ("CLERK_MACHINE_SECRET_KEY", "ak_api"),
                ("CLERK_MACHINE_ID", "mch_"),
            ],
            "CLERK_MACHINE_ID",
        ),
        (
            vec![
                ("CLERK_MACHINE_SECRET_KEY", "ak_api"),
                ("CLERK_MACHINE_ID", "mch_2a b"),
            ],
            "CLERK_MACHINE_ID",
        ),
        (
            vec![
                ("CLERK_SECRET_KEY", "sk_test_x"),
                ("M2M_VERIFY_MISS_BURST", "0"),
            ],
            "M2M_VERIFY_MISS_BURST",
        ),
        (
            vec![
                ("CLERK_SECRET_KEY", "sk_test_x"),
                ("M2M_VERIFY_MISS_PER_SECOND", "ten"),
            ],
            "M2M_VERIFY_MISS_PER_SECOND",
        ),
        (
            vec![
                ("CLERK_SECRET_KEY", "sk_test_x"),
                ("CLERK_JWKS_CACHE_TTL_SECONDS", "0"),
            ],
            "CLERK_JWKS_CACHE_TTL_SECONDS",
        ),
        (
            vec![
                ("CLERK_SECRET_KEY", "sk_test_x"),
                ("CLERK_AUTHORIZED_PARTIES", "https://a.example/"),
            ],
            "CLERK_AUTHORIZED_PARTIES",
        ),
        (
            vec![
                ("CLERK_SECRET_KEY", "sk_test_x"),
                ("CLERK_AUTHORIZED_PARTIES", "https://a.example/app"),
            ],
            "CLERK_AUTHORIZED_PARTIES",
        ),
    ] {
        assert_eq!(
            verifier_config(&pairs).expect_err("invalid").var,
            var,
            "{pairs:?}"
        );
    }
}

#[test]
fn verifier_config_reads_the_budget_and_jwks_settings() {
    let defaults = verifier_config(&[("CLERK_SECRET_KEY", "sk_test_x")]).expect("c");
    assert_eq!(
        (
            defaults.cache.budget.burst,
            defaults.cache.budget.per_second
        ),
        (50, 10)
    );
    assert_eq!(defaults.jwks.ttl, Duration::from_secs(300));
    let c = verifier_config(&[
        ("CLERK_SECRET_KEY", "sk_test_x"),
        ("M2M_VERIFY_MISS_BURST", "5"),
        ("M2M_VERIFY_MISS_PER_SECOND", "2"),
        ("CLERK_JWKS_CACHE_TTL_SECONDS", "2"),
    ])
    .expect("c");
    assert_eq!((c.cache.budget.burst, c.cache.budget.per_second), (5, 2));
    assert_eq!(c.jwks.ttl, Duration::from_secs(2));
}

#[test]
fn a_blank_variable_is_unset_as_compose_passes_them() {
    let c = load(
        &[
            KEY,
            ("M2M_TOKEN_LIFETIME_SECONDS", ""),
            ("M2M_TOKEN_REFRESH_BUFFER_SECONDS", "  "),
            ("M2M_TOKEN_MIN_REMAINING_TTL_SECONDS", ""),
            ("ENABLE_M2M_AUTH", ""),
            ("CLERK_API_BASE_URL", ""),
        ],
        None,
    )
    .expect("blank values are defaults");
    assert_eq!(c.mint.lifetime, Duration::from_secs(3600));
    assert_eq!(c.mint.refresh_buffer, Duration::from_secs(300));
    assert!(c.enabled);
    assert_eq!(c.api_base_url, "https://api.clerk.com/v1");
    let v = verifier_config(&[
        ("CLERK_SECRET_KEY", " sk_test_x "),
        ("CLERK_JWT_KEY", ""),
        ("CLERK_ISSUER", " "),
        ("CLERK_AUTHORIZED_PARTIES", ""),
    ])
    .expect("blank values are defaults");
    assert!(matches!(
        v.key_source,
        Some(m2m_core::settings::KeySource::Bapi(_))
    ));
    assert!(v.policy.issuer.is_none() && v.policy.authorized_parties.is_empty());
}

/// The settings groups, as a service flattens them.
#[derive(Debug, clap::Parser)]
struct Service {
    #[command(flatten)]
    clerk: ClerkArgs,
    #[command(flatten)]
    token: TokenArgs,
    #[command(flatten)]
    verifier: VerifierArgs,
}

#[test]
fn the_groups_defaults_are_what_clap_fills_in() {
    let parsed: Service = Env::from_fn(|_| None).parse().expect("defaults parse");
    let defaults = Service {
        clerk: ClerkArgs::default(),
        token: TokenArgs::default(),
        verifier: VerifierArgs::default(),
    };
    assert_eq!(format!("{parsed:?}"), format!("{defaults:?}"));
}

#[test]
fn a_flag_wins_over_its_variable_and_both_are_checked_alike() {
    let vars = env(&[("M2M_VERIFY_MISS_BURST", "0"), ("M2M_TOKEN_FORMAT", "jwt")]);
    let env = Env::from_fn(|k| vars.get(k).cloned());
    let s: Service = env
        .parse_from(["svc", "--m2m-verify-miss-burst=7"])
        .expect("the flag wins");
    assert_eq!(s.verifier.m2m_verify_miss_burst, 7);
    assert_eq!(s.token.m2m_token_format, TokenFormat::Jwt);
    let err = Env::from_fn(|_| None)
        .parse_from::<Service>(["svc", "--m2m-verify-miss-per-second", "0"])
        .expect_err("0 is refused from a flag too");
    assert_eq!(err.var, "M2M_VERIFY_MISS_PER_SECOND");
    let err = Env::from_fn(|_| None)
        .parse_from::<Service>(["svc", "--clerk-secret-key=ak_live_secret_of_a_machine"])
        .expect_err("a machine key is not an instance key");
    assert_eq!(err.var, "CLERK_SECRET_KEY");
    assert!(!err.to_string().contains("ak_live_secret"), "{err}");
}

/// A file holding `text`, kept while the returned guard lives.
fn secret_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("secret");
    std::fs::write(&path, text).expect("write");
    (dir, path.to_string_lossy().into_owned())
}

#[test]
fn a_secret_setting_is_read_from_the_file_its_file_variable_names() {
    // A Docker secret: the first line, trimmed (a trailing newline, a comment line after it).
    let (_dir, path) = secret_file("  ak_from_a_file \nsecond line is ignored\n");
    let c = verifier_config(&[("CLERK_MACHINE_SECRET_KEY_FILE", &path)]).expect("config");
    let key = c.verify_key.expect("the file's key verifies opaque tokens");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&key), "ak_from_a_file");

    let (_dir2, token) = secret_file("mt_pre_created_in_a_file\n");
    let c = load(
        &[("CLERK_M2M_TOKEN_JOB_APPLIER_FILE", &token)],
        Some("job-applier"),
    )
    .expect("a per-service token file");
    assert_eq!(
        c.static_token.expect("token").expose(),
        "mt_pre_created_in_a_file"
    );
    let (_dir3, instance) = secret_file("sk_test_in_a_file");
    let c = verifier_config(&[("CLERK_SECRET_KEY_FILE", &instance)]).expect("config");
    assert!(c.verify_key.is_some() && c.key_source.is_some());
    // A PEM public key file is read whole.
    let pem = clerk_mock::SigningKey::generate().public_key_pem();
    let (_dir4, pem_path) = secret_file(&format!("{pem}\n"));
    let c = verifier_config(&[("CLERK_JWT_KEY_FILE", &pem_path)]).expect("a PEM file");
    assert!(matches!(
        c.key_source,
        Some(m2m_core::settings::KeySource::Pem(_))
    ));
    // The file's value is checked like the variable's, naming the variable, not the value.
    let (_dir5, wrong) = secret_file("sk_test_not_a_machine_key_in_file");
    let err = verifier_config(&[("CLERK_MACHINE_SECRET_KEY_FILE", &wrong)]).expect_err("sk_");
    assert_eq!(err.var, "CLERK_MACHINE_SECRET_KEY");
    assert!(!err.to_string().contains("not_a_machine_key"), "{err}");
}

#[test]
fn a_secret_set_both_ways_or_an_unusable_file_is_refused_naming_the_variable() {
    let (_dir, path) = secret_file("ak_in_the_file_1234\n");
    let err = verifier_config(&[
        ("CLERK_MACHINE_SECRET_KEY", "ak_in_the_variable_5678"),
        ("CLERK_MACHINE_SECRET_KEY_FILE", &path),
    ])
    .expect_err("both set");
    let text = err.to_string();
    assert!(
        text.contains("CLERK_MACHINE_SECRET_KEY and CLERK_MACHINE_SECRET_KEY_FILE"),
        "{text}"
    );
    assert!(
        !text.contains("in_the_file") && !text.contains("in_the_variable"),
        "{text}"
    );
    let err = load(
        &[
            ("CLERK_M2M_TOKEN_JOB_APPLIER", "mt_x"),
            ("CLERK_M2M_TOKEN_JOB_APPLIER_FILE", &path),
            KEY,
        ],
        Some("job-applier"),
    )
    .expect_err("both set");
    assert!(err.to_string().contains("CLERK_M2M_TOKEN_JOB_APPLIER_FILE"));

    let missing = format!("{path}.missing");
    let err = verifier_config(&[("CLERK_SECRET_KEY_FILE", &missing)]).expect_err("missing");
    assert_eq!(err.var, "CLERK_SECRET_KEY_FILE");
    assert!(err.reason.contains(&missing), "{err}");
    assert_eq!(err.to_string().lines().count(), 1, "{err}");

    let (_dir2, empty) = secret_file(" \n\n");
    let err = verifier_config(&[("CLERK_SECRET_KEY_FILE", &empty)]).expect_err("empty");
    assert_eq!(err.var, "CLERK_SECRET_KEY_FILE");
    assert!(err.reason.contains("empty"), "{err}");

    // A blank _FILE variable is unset, as a blank variable is.
    let c = verifier_config(&[KEY, ("CLERK_MACHINE_SECRET_KEY_FILE", " ")]).expect("blank");
    assert!(c.verify_key.is_some());
    // A setting that is not secret has no _FILE variant.
    let (_dir3, url) = secret_file("https://elsewhere.example/v1");
    let c = verifier_config(&[KEY, ("CLERK_API_BASE_URL_FILE", &url)]).expect("ignored");
    assert_eq!(c.api_base_url, "https://api.clerk.com/v1");
}

#[test]
fn with_no_key_the_error_says_any_one_of_them_is_enough() {
    let pem = clerk_mock::SigningKey::generate().public_key_pem();
    let alone = [
        ("CLERK_MACHINE_SECRET_KEY", "ak_api"),
        ("CLERK_SECRET_KEY", "sk_test_x"),
        ("CLERK_JWT_KEY", pem.as_str()),
        ("CLERK_JWKS_URL", "https://x.example/jwks"),
    ];
    for pair in alone {
        verifier_config(&[pair]).unwrap_or_else(|e| panic!("{} alone: {e}", pair.0));
    }
    let err = verifier_config(&[]).expect_err("no key at all").to_string();
    assert!(
        err.contains("CLERK_MACHINE_SECRET_KEY: nothing to verify"),
        "{err}"
    );
    assert!(err.contains("set one of"), "{err}");
    for (var, _) in alone {
        assert!(err.contains(var), "{var} not in: {err}");
    }
}
