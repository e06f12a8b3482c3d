//! The behaviours listed in docs/clerk-mock.md, *Behaviour*, one test each, over raw HTTP.

use std::time::{Duration, Instant};

use base64::Engine;
use clerk_mock::{ClerkMock, Endpoint, Fault, RevokedVerify, Seed};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{call, demo_machines, error_code};

fn decode_part(jwt: &str, i: usize) -> Value {
    let part = jwt.split('.').nth(i).expect("part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

#[tokio::test]
async fn create_returns_201_exact_json_content_type_and_the_token_only_once() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    let created = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(json!({"seconds_until_expiration": 3600})),
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        created.content_type.as_deref(),
        Some("application/json"),
        "no charset, or @clerk/backend will not parse it"
    );
    let b = &created.body;
    let token = b["token"].as_str().expect("token on create");
    let id = b["id"].as_str().expect("id");
    assert!(token.starts_with("mt_") && token.len() == 35);
    assert!(
        id.starts_with("mt_") && id.len() == 35 && id[3..].bytes().all(|c| c.is_ascii_hexdigit())
    );
    assert_ne!(token, id, "the id is not the bearer secret");
    assert_eq!(b["subject"], rep.id);
    assert_eq!(b["scopes"], json!([api.id]));
    assert_eq!(b["last_used_at"], Value::Null);
    let created_at = b["created_at"].as_i64().expect("ms");
    assert!(created_at > 1_600_000_000_000, "milliseconds, not seconds");
    assert_eq!(
        b["expiration"].as_i64().expect("exp") - created_at,
        3_600_000
    );

    let verified = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some(&api.secret_key),
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(verified.status, 200);
    assert!(
        verified.body.get("token").is_none(),
        "token only in the create response"
    );
    assert!(
        verified.body["last_used_at"].as_i64().is_some(),
        "verify updates last_used_at"
    );
    let listed = call(
        &mock,
        Method::GET,
        &format!("/v1/m2m_tokens?subject={}", rep.id),
        Some(&rep.secret_key),
        None,
    )
    .await;
    assert!(listed.body["m2m_tokens"][0].get("token").is_none());
}

#[tokio::test]
async fn m2m_routes_answer_with_and_without_v1() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    for prefix in ["", "/v1"] {
        let c = call(
            &mock,
            Method::POST,
            &format!("{prefix}/m2m_tokens"),
            Some(&rep.secret_key),
            Some(json!({})),
        )
        .await;
        assert_eq!(c.status, 201, "{prefix}/m2m_tokens");
        let v = call(
            &mock,
            Method::POST,
            &format!("{prefix}/m2m_tokens/verify"),
            Some(&api.secret_key),
            Some(json!({"token": c.body["token"]})),
        )
        .await;
        assert_eq!(v.status, 200, "{prefix}/m2m_tokens/verify");
        let l = call(
            &mock,
            Method::GET,
            &format!("{prefix}/m2m_tokens?subject={}", rep.id),
            Some(&rep.secret_key),
            None,
        )
        .await;
        assert_eq!(l.status, 200);
        let r = call(
            &mock,
            Method::POST,
            &format!(
                "{prefix}/m2m_tokens/{}/revoke",
                c.body["id"].as_str().expect("id")
            ),
            Some(&rep.secret_key),
            Some(json!({"revocation_reason": null})),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    // JWKS lives under /v1 only, the public one at the root.
    assert_eq!(
        call(
            &mock,
            Method::GET,
            "/jwks",
            Some(&mock.instance_secret_key()),
            None
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn key_type_rules() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    let sk = mock.instance_secret_key();

    let with_sk = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&sk),
        Some(json!({})),
    )
    .await;
    assert_eq!(with_sk.status, 401);
    assert_eq!(error_code(&with_sk.body), "machine_secret_key_invalid");
    let none = call(&mock, Method::POST, "/m2m_tokens", None, Some(json!({}))).await;
    assert_eq!(none.status, 401);
    let wrong = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some("ak_not_a_key"),
        Some(json!({"token": "mt_x"})),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(error_code(&wrong.body), "clerk_key_invalid");
    assert!(wrong.body["clerk_trace_id"].is_string());
    assert!(wrong.body["errors"][0]["long_message"].is_string());

    let t = mock.mint(&rep.id, &json!({}))["token"].clone();
    // Instance key verifies any token; the sender's own key does not (it is not in the scopes).
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/m2m_tokens/verify",
            Some(&sk),
            Some(json!({"token": t}))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/m2m_tokens/verify",
            Some(&rep.secret_key),
            Some(json!({"token": t}))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/m2m_tokens/verify",
            Some(&api.secret_key),
            Some(json!({"token": t}))
        )
        .await
        .status,
        200
    );
    // JWKS needs the instance key.
    assert_eq!(
        call(&mock, Method::GET, "/v1/jwks", Some(&api.secret_key), None)
            .await
            .status,
        401
    );
    assert_eq!(
        call(&mock, Method::GET, "/v1/jwks", Some(&sk), None)
            .await
            .status,
        200
    );
    let public = call(&mock, Method::GET, "/.well-known/jwks.json", None, None).await;
    assert_eq!(public.status, 200);
    assert_eq!(public.body["keys"][0]["kid"], mock.instance_id());
    assert_eq!(public.body["keys"][0]["e"], "AQAB");
}

#[tokio::test]
async fn explicit_nulls_and_the_legacy_secret_field_are_accepted() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    // What @clerk/backend sends by default.
    let c = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(json!({"seconds_until_expiration": null, "claims": null, "token_format": "opaque"})),
    )
    .await;
    assert_eq!(c.status, 201);
    assert_eq!(
        c.body["expiration"].as_i64().expect("exp")
            - c.body["created_at"].as_i64().expect("created"),
        3_600_000,
        "null lifetime = default_token_ttl"
    );
    // What clerk-backend-api 6 sends.
    let v = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some(&api.secret_key),
        Some(json!({"secret": c.body["token"]})),
    )
    .await;
    assert_eq!(v.status, 200);
    let r = call(
        &mock,
        Method::POST,
        &format!("/m2m_tokens/{}/revoke", c.body["id"].as_str().expect("id")),
        Some(&rep.secret_key),
        Some(json!({"revocation_reason": null})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["revoked"], true);
}

#[tokio::test]
async fn create_validates_its_input() {
    let mock = ClerkMock::start_demo().await;
    let (_, rep, _) = demo_machines(&mock);
    for (body, code) in [
        (json!({"seconds_until_expiration": 0}), "bad_request"),
        (json!({"seconds_until_expiration": -5}), "bad_request"),
        (json!({"seconds_until_expiration": "60"}), "bad_request"),
        (json!({"token_format": "paseto"}), "bad_request"),
        (json!({"surprise": 1}), "bad_request"),
        (
            json!({"claims": {"sub": "mch_other"}}),
            "machine_token_reserved_claim",
        ),
        (
            json!({"seconds_until_expiration": 60, "min_remaining_ttl_seconds": 60}),
            "bad_request",
        ),
    ] {
        let a = call(
            &mock,
            Method::POST,
            "/m2m_tokens",
            Some(&rep.secret_key),
            Some(body.clone()),
        )
        .await;
        assert_eq!(a.status, 400, "{body}");
        assert_eq!(error_code(&a.body), code, "{body}");
    }
    let client = reqwest::Client::new();
    let raw = client
        .post(format!("{}/m2m_tokens", mock.uri()))
        .bearer_auth(&rep.secret_key)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), 400);
}

#[tokio::test]
async fn min_remaining_ttl_reuses_a_live_opaque_token_but_never_a_jwt() {
    let mock = ClerkMock::start_demo().await;
    let (_, rep, _) = demo_machines(&mock);
    let body = json!({"seconds_until_expiration": 600, "min_remaining_ttl_seconds": 300});
    let first = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(body.clone()),
    )
    .await
    .body;
    let second = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(body.clone()),
    )
    .await
    .body;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["token"], second["token"]);
    // Different claims: a new token.
    let other = call(&mock, Method::POST, "/m2m_tokens", Some(&rep.secret_key), Some(json!({"seconds_until_expiration": 600, "min_remaining_ttl_seconds": 300, "claims": {"a": 1}}))).await.body;
    assert_ne!(other["id"], first["id"]);
    // Once less than 300 s remain, a new one is minted.
    mock.advance_clock(Duration::from_secs(301));
    let third = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(body),
    )
    .await
    .body;
    assert_ne!(third["id"], first["id"]);
    let jwt_body = json!({"token_format": "jwt", "seconds_until_expiration": 600, "min_remaining_ttl_seconds": 300});
    let j1 = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(jwt_body.clone()),
    )
    .await
    .body;
    let j2 = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(jwt_body),
    )
    .await
    .body;
    assert_ne!(j1["id"], j2["id"]);
}

#[tokio::test]
async fn verify_rejects_unknown_revoked_expired_and_out_of_scope_tokens_with_404() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, applier) = demo_machines(&mock);
    let verify = |t: Value, key: String| {
        let mock = &mock;
        async move {
            call(
                mock,
                Method::POST,
                "/m2m_tokens/verify",
                Some(&key),
                Some(json!({"token": t})),
            )
            .await
        }
    };
    assert_eq!(
        verify(
            json!("mt_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
            api.secret_key.clone()
        )
        .await
        .status,
        404
    );
    assert_eq!(
        verify(json!(null), api.secret_key.clone()).await.status,
        400
    );

    let c = mock.mint(&rep.id, &json!({"seconds_until_expiration": 60}));
    // The applier is not a receiver of the representer's tokens.
    let out = verify(c["token"].clone(), applier.secret_key.clone()).await;
    assert_eq!(out.status, 404);
    assert_eq!(error_code(&out.body), "resource_not_found");

    mock.advance_clock(Duration::from_secs(61));
    assert_eq!(
        verify(c["token"].clone(), api.secret_key.clone())
            .await
            .status,
        404,
        "expired"
    );

    let c2 = mock.mint(&rep.id, &json!({}));
    assert!(mock.revoke_token(c2["id"].as_str().expect("id"), Some("test")));
    assert_eq!(
        verify(c2["token"].clone(), api.secret_key.clone())
            .await
            .status,
        404,
        "revoked"
    );

    // A JWT-format token is not stored, so BAPI does not know it.
    let j = mock.mint(&rep.id, &json!({"token_format": "jwt"}));
    assert_eq!(
        verify(j["token"].clone(), api.secret_key.clone())
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn revoked_flags_can_come_back_on_a_200_when_configured() {
    let mut seed = Seed::demo();
    seed.behaviour.revoked_verify = RevokedVerify::FlagsOn200;
    let mock = ClerkMock::start_with(seed).await;
    let (api, rep, _) = demo_machines(&mock);
    let c = mock.mint(&rep.id, &json!({}));
    mock.revoke_token(c["id"].as_str().expect("id"), None);
    let v = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some(&api.secret_key),
        Some(json!({"token": c["token"]})),
    )
    .await;
    assert_eq!(v.status, 200);
    assert_eq!(v.body["revoked"], true);
}

#[tokio::test]
async fn scopes_are_snapshotted_at_creation() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    let sk = mock.instance_secret_key();
    let before = mock.mint(&rep.id, &json!({}));
    let removed = call(
        &mock,
        Method::DELETE,
        &format!("/v1/machines/{}/scopes/{}", rep.id, api.id),
        Some(&sk),
        None,
    )
    .await;
    assert_eq!(removed.status, 200);
    let after = mock.mint(&rep.id, &json!({}));
    assert_eq!(after["scopes"], json!([]));
    let v_before = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some(&api.secret_key),
        Some(json!({"token": before["token"]})),
    )
    .await;
    assert_eq!(v_before.status, 200, "an existing token keeps its scopes");
    let v_after = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some(&api.secret_key),
        Some(json!({"token": after["token"]})),
    )
    .await;
    assert_eq!(v_after.status, 404);
    let again = call(
        &mock,
        Method::POST,
        &format!("/v1/machines/{}/scopes", rep.id),
        Some(&sk),
        Some(json!({"to_machine_id": api.id})),
    )
    .await;
    assert_eq!(again.status, 200);
    let dup = call(
        &mock,
        Method::POST,
        &format!("/v1/machines/{}/scopes", rep.id),
        Some(&sk),
        Some(json!({"to_machine_id": api.id})),
    )
    .await;
    assert_eq!(dup.status, 409);
}

#[tokio::test]
async fn revoke_and_list_follow_the_ownership_rules() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, applier) = demo_machines(&mock);
    let sk = mock.instance_secret_key();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            mock.mint(&rep.id, &json!({}))["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let jwt = mock.mint(&rep.id, &json!({"token_format": "jwt"}));
    // Another machine cannot revoke it; its creator can; the instance can.
    assert_eq!(
        call(
            &mock,
            Method::POST,
            &format!("/m2m_tokens/{}/revoke", ids[0]),
            Some(&applier.secret_key),
            None
        )
        .await
        .status,
        404
    );
    let r = call(
        &mock,
        Method::POST,
        &format!("/m2m_tokens/{}/revoke", ids[0]),
        Some(&rep.secret_key),
        Some(json!({"revocation_reason": "compromised"})),
    )
    .await;
    assert_eq!(r.body["revocation_reason"], "compromised");
    assert_eq!(
        call(
            &mock,
            Method::POST,
            &format!("/m2m_tokens/{}/revoke", ids[1]),
            Some(&sk),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call(
            &mock,
            Method::POST,
            &format!("/m2m_tokens/{}/revoke", jwt["id"].as_str().expect("id")),
            Some(&sk),
            None
        )
        .await
        .status,
        404,
        "JWTs cannot be revoked"
    );

    let list = |q: String, key: String| {
        let mock = &mock;
        async move {
            call(
                mock,
                Method::GET,
                &format!("/m2m_tokens?{q}"),
                Some(&key),
                None,
            )
            .await
        }
    };
    let active = list(format!("subject={}", rep.id), rep.secret_key.clone()).await;
    assert_eq!(
        active.body["total_count"], 1,
        "revoked excluded by default, JWTs never listed"
    );
    let all = list(format!("subject={}&revoked=true", rep.id), sk.clone()).await;
    assert_eq!(all.body["total_count"], 3);
    let newest_first: Vec<&str> = all.body["m2m_tokens"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        newest_first,
        vec![ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]
    );
    assert_eq!(
        list(
            format!("subject={}&revoked=true&limit=1&offset=1", rep.id),
            sk.clone()
        )
        .await
        .body["m2m_tokens"][0]["id"],
        ids[1].as_str()
    );
    assert_eq!(
        list(format!("subject={}", rep.id), applier.secret_key.clone())
            .await
            .status,
        403
    );
    assert_eq!(
        list("revoked=true".into(), sk.clone()).await.status,
        400,
        "subject is required"
    );
    assert_eq!(
        list(format!("subject={}&limit=101", rep.id), sk.clone())
            .await
            .status,
        400
    );
    assert_eq!(
        list("subject=mch_2NoSuchMachine0000000000000".into(), sk.clone())
            .await
            .status,
        404
    );
    let _ = api;
}

#[tokio::test]
async fn jwt_format_tokens_look_like_clerks() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    let c = mock.mint(
        &rep.id,
        &json!({"token_format": "jwt", "seconds_until_expiration": 120, "claims": {"role": "reader"}}),
    );
    let jwt = c["token"].as_str().expect("jwt");
    let header = decode_part(jwt, 0);
    let payload = decode_part(jwt, 1);
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": mock.instance_id(), "cat": "cl_B7d4PD333AAA"})
    );
    assert_eq!(payload["sub"], rep.id);
    assert_eq!(payload["jti"], c["id"]);
    assert_eq!(payload["iss"], mock.issuer());
    assert_eq!(payload["role"], "reader");
    assert_eq!(payload["scopes"], api.id);
    assert_eq!(
        payload["exp"].as_i64().expect("exp") - payload["iat"].as_i64().expect("iat"),
        120
    );
    assert!(
        mock.issuer().starts_with("https://clerk."),
        "Go SDK issuer rule"
    );
}

#[tokio::test]
async fn machines_api_lifecycle_and_key_rotation() {
    let mock = ClerkMock::start_demo().await;
    let (api, _, _) = demo_machines(&mock);
    let sk = mock.instance_secret_key();
    let created = call(
        &mock,
        Method::POST,
        "/v1/machines",
        Some(&sk),
        Some(json!({"name": "Rotating.Bot", "scoped_machines": [api.id]})),
    )
    .await;
    assert_eq!(created.status, 200);
    assert_eq!(created.body["default_token_ttl"], 3600);
    assert_eq!(created.body["scoped_machines"][0]["id"], api.id);
    assert!(
        created.body["scoped_machines"][0]
            .get("scoped_machines")
            .is_none()
    );
    let id = created.body["id"].as_str().expect("id").to_owned();
    let old_key = created.body["secret_key"].as_str().expect("key").to_owned();
    assert!(old_key.starts_with("ak_"));
    assert_eq!(
        call(
            &mock,
            Method::GET,
            &format!("/v1/machines/{id}"),
            Some(&sk),
            None
        )
        .await
        .body
        .get("secret_key"),
        None,
        "secret only on creation"
    );

    let rotated = call(
        &mock,
        Method::POST,
        &format!("/v1/machines/{id}/secret_key/rotate"),
        Some(&sk),
        Some(json!({"previous_token_ttl": 60})),
    )
    .await;
    let new_key = rotated.body["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_key, old_key);
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/m2m_tokens",
            Some(&old_key),
            Some(json!({}))
        )
        .await
        .status,
        201,
        "old key valid during the grace period"
    );
    mock.advance_clock(Duration::from_secs(61));
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/m2m_tokens",
            Some(&old_key),
            Some(json!({}))
        )
        .await
        .status,
        401
    );
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/m2m_tokens",
            Some(&new_key),
            Some(json!({}))
        )
        .await
        .status,
        201
    );
    assert_eq!(
        call(
            &mock,
            Method::POST,
            &format!("/v1/machines/{id}/secret_key/rotate"),
            Some(&sk),
            Some(json!({}))
        )
        .await
        .status,
        422
    );

    let list = call(
        &mock,
        Method::GET,
        "/v1/machines?query=rotating&order_by=name",
        Some(&sk),
        None,
    )
    .await;
    assert_eq!(list.body["total_count"], 1);
    assert_eq!(
        call(
            &mock,
            Method::GET,
            "/v1/machines",
            Some(&api.secret_key),
            None
        )
        .await
        .status,
        401,
        "machines need the instance key"
    );
    let deleted = call(
        &mock,
        Method::DELETE,
        &format!("/v1/machines/{id}"),
        Some(&sk),
        None,
    )
    .await;
    assert_eq!(
        deleted.body,
        json!({"object": "machine", "id": id, "deleted": true})
    );
    assert_eq!(
        call(
            &mock,
            Method::GET,
            &format!("/v1/machines/{id}"),
            Some(&sk),
            None
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn sessions_mint_v2_session_tokens_and_testing_tokens_exist() {
    let mock = ClerkMock::start_demo().await;
    let sk = mock.instance_secret_key();
    let user = mock.users()[0].clone();
    let s = call(
        &mock,
        Method::POST,
        "/v1/sessions",
        Some(&sk),
        Some(json!({"user_id": user.id})),
    )
    .await;
    assert_eq!(s.status, 200);
    let sid = s.body["id"].as_str().expect("sid").to_owned();
    let t = call(
        &mock,
        Method::POST,
        &format!("/v1/sessions/{sid}/tokens"),
        Some(&sk),
        None,
    )
    .await;
    assert_eq!(t.body["object"], "token");
    let jwt = t.body["jwt"].as_str().expect("jwt");
    let (h, c) = (decode_part(jwt, 0), decode_part(jwt, 1));
    assert_eq!(h["cat"], "cl_B7d4PD111AAA");
    assert_eq!(h["kid"], mock.instance_id());
    assert_eq!(c["sub"], user.id);
    assert_eq!(c["sid"], sid);
    assert_eq!(c["v"], 2);
    assert_eq!(c["azp"], mock.authorized_party());
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        60
    );
    assert_eq!(
        c["iat"].as_i64().expect("iat") - c["nbf"].as_i64().expect("nbf"),
        10
    );
    let long = call(
        &mock,
        Method::POST,
        &format!("/v1/sessions/{sid}/tokens"),
        Some(&sk),
        Some(json!({"expires_in_seconds": 3600})),
    )
    .await;
    let lc = decode_part(long.body["jwt"].as_str().expect("jwt"), 1);
    assert_eq!(
        lc["exp"].as_i64().expect("exp") - lc["iat"].as_i64().expect("iat"),
        3600
    );
    let template = call(
        &mock,
        Method::POST,
        &format!("/v1/sessions/{sid}/tokens/my-template"),
        Some(&sk),
        None,
    )
    .await;
    assert_eq!(
        decode_part(template.body["jwt"].as_str().expect("jwt"), 0)["cat"],
        "cl_B7d4PD222AAA"
    );
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/v1/sessions",
            Some(&sk),
            Some(json!({"user_id": "user_nobody"}))
        )
        .await
        .status,
        404
    );

    let tt = call(&mock, Method::POST, "/v1/testing_tokens", Some(&sk), None).await;
    assert_eq!(tt.body["object"], "testing_token");
    let token = tt.body["token"].as_str().expect("token");
    let (secs, _) = token.split_once('-').expect("<unix>-<random>");
    assert!(secs.parse::<i64>().is_ok());
    assert_eq!(
        tt.body["expires_at"].as_i64().expect("secs") - secs.parse::<i64>().expect("secs"),
        3600
    );
}

#[tokio::test]
async fn test_controls_count_inject_delay_and_black_out() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    mock.inject(Some(Endpoint::CreateToken), Fault::status(503), 2);
    mock.inject(Some(Endpoint::VerifyToken), Fault::rate_limited(7), 1);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            call(
                &mock,
                Method::POST,
                "/m2m_tokens",
                Some(&rep.secret_key),
                Some(json!({})),
            )
            .await
            .status
            .as_u16(),
        );
    }
    assert_eq!(statuses, vec![503, 503, 201]);
    let limited = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some(&api.secret_key),
        Some(json!({"token": "mt_x"})),
    )
    .await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    assert_eq!(error_code(&limited.body), "too_many_requests");
    assert_eq!(mock.calls(Endpoint::CreateToken), 3);
    assert_eq!(mock.calls(Endpoint::VerifyToken), 1);

    mock.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    call(&mock, Method::GET, "/healthz", None, None).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    mock.set_latency(Duration::ZERO);

    mock.set_outage(Some(503));
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/m2m_tokens",
            Some(&rep.secret_key),
            Some(json!({}))
        )
        .await
        .status,
        503
    );
    assert_eq!(
        call(&mock, Method::GET, "/healthz", None, None)
            .await
            .status,
        200
    );
    mock.set_outage(None);
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/m2m_tokens",
            Some(&rep.secret_key),
            Some(json!({}))
        )
        .await
        .status,
        201
    );
    mock.reset_calls();
    assert_eq!(mock.calls(Endpoint::CreateToken), 0);
}

#[tokio::test]
async fn the_date_header_follows_the_mock_clock() {
    let mock = ClerkMock::start_demo().await;
    mock.advance_clock(Duration::from_secs(86_400));
    let a = call(&mock, Method::GET, "/healthz", None, None).await;
    let date = a
        .headers
        .get("date")
        .and_then(|v| v.to_str().ok())
        .expect("date header");
    let at = httpdate::parse_http_date(date).expect("http date");
    let ahead = at
        .duration_since(std::time::SystemTime::now())
        .expect("in the future");
    assert!(ahead > Duration::from_secs(86_000));
}

#[test]
fn the_default_seed_names_the_mirrored_machines_with_fixed_ids() {
    let seed = Seed::demo();
    let names: Vec<&str> = seed.machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "JobTracker.API",
            "CandidateRepresenter.Bot",
            "JobApplier.Bot"
        ]
    );
    assert!(
        seed.machines
            .iter()
            .all(|m| m.id.is_some() && m.secret_key.is_some())
    );
    assert!(
        Seed::from_json(r#"{"machines":[{"name":"x","bogus":1}]}"#).is_err(),
        "unknown seed fields are rejected"
    );
}

#[tokio::test]
async fn compaction_keeps_state_and_counters() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    let t = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(json!({})),
    )
    .await
    .body["token"]
        .clone();
    assert!(
        !mock.compact_if_over(10).await,
        "below the threshold nothing happens"
    );
    mock.compact().await;
    assert_eq!(mock.calls(Endpoint::CreateToken), 1, "counters survive");
    assert_eq!(
        call(
            &mock,
            Method::POST,
            "/m2m_tokens/verify",
            Some(&api.secret_key),
            Some(json!({"token": t}))
        )
        .await
        .status,
        200,
        "tokens survive and requests are served"
    );
    assert_eq!(mock.total_requests(), 2);
}

#[tokio::test]
async fn numeric_query_parameters_accept_what_clerks_sdks_send() {
    // clerk-backend-api (Python) sends limit=10.0 and offset=0.0; the spec types them as number.
    let mock = ClerkMock::start_demo().await;
    let (_, rep, _) = demo_machines(&mock);
    let sk = mock.instance_secret_key();
    let ok = call(
        &mock,
        Method::GET,
        &format!(
            "/v1/m2m_tokens?subject={}&revoked=False&limit=10.0&offset=0.0",
            rep.id
        ),
        Some(&sk),
        None,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        call(
            &mock,
            Method::GET,
            "/v1/machines?limit=10.0&offset=0.0",
            Some(&sk),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call(
            &mock,
            Method::GET,
            &format!("/v1/m2m_tokens?subject={}&limit=10.5", rep.id),
            Some(&sk),
            None
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn tokens_are_found_by_secret_id_and_subject_among_thousands() {
    // Verify, revoke and list look tokens up by index, not by a scan of every token; this
    // checks the lookups find the right one among many (the speed is measured, not asserted:
    // `cargo run -p clerk-mock --example verify_scale`).
    let mock = ClerkMock::start_demo().await;
    let (api, rep, applier) = demo_machines(&mock);
    let mut minted = Vec::new();
    for i in 0..4_000 {
        let machine = if i % 2 == 0 { &rep } else { &applier };
        let t = mock.mint(&machine.id, &json!({}));
        minted.push((
            t["token"].as_str().expect("a token").to_owned(),
            t["id"].as_str().expect("an id").to_owned(),
            machine.id.clone(),
        ));
    }
    for (token, id, subject) in [&minted[0], &minted[1_999], &minted[3_998], &minted[3_999]] {
        let answer = call(
            &mock,
            Method::POST,
            "/m2m_tokens/verify",
            Some(&api.secret_key),
            Some(json!({ "token": token })),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["id"], json!(id));
        assert_eq!(answer.body["subject"], json!(subject));
        assert!(answer.body["last_used_at"].is_i64());
        assert_eq!(mock.token_id_of(token).as_deref(), Some(id.as_str()));
    }

    let (revoked_token, revoked_id, _) = &minted[2_001];
    assert!(mock.revoke_token(revoked_id, Some("test")));
    let answer = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some(&api.secret_key),
        Some(json!({ "token": revoked_token })),
    )
    .await;
    assert_eq!(answer.status, 404);

    let ids = mock.token_ids(&applier.id);
    assert_eq!(ids.len(), 2_000);
    assert_eq!(ids.first(), Some(&minted[1].1), "oldest first");
    assert_eq!(ids.last(), Some(&minted[3_999].1));
    let list = call(
        &mock,
        Method::GET,
        &format!("/m2m_tokens?subject={}&limit=2", applier.id),
        Some(&applier.secret_key),
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(
        list.body["total_count"],
        json!(1_999),
        "the revoked one is left out"
    );
    assert_eq!(
        list.body["m2m_tokens"][0]["id"],
        json!(minted[3_999].1),
        "newest first"
    );
    assert_eq!(
        mock.token_id_of("mt_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
        None
    );
}

#[tokio::test]
async fn an_injected_429_refuses_before_acting_and_a_5xx_after() {
    let mock = ClerkMock::start().await;
    let key = mock.instance_secret_key();
    let create = |name: &'static str| {
        let (mock, key) = (&mock, key.clone());
        async move {
            call(
                mock,
                Method::POST,
                "/v1/machines",
                Some(&key),
                Some(json!({ "name": name })),
            )
            .await
            .status
            .as_u16()
        }
    };
    mock.inject(Some(Endpoint::CreateMachine), Fault::rate_limited(1), 1);
    assert_eq!(create("limited").await, 429);
    assert!(
        mock.machine_by_name("limited").is_none(),
        "a 429 did nothing"
    );
    mock.inject(Some(Endpoint::CreateMachine), Fault::status(502), 1);
    assert_eq!(create("lost").await, 502);
    assert!(
        mock.machine_by_name("lost").is_some(),
        "a 5xx lost the reply"
    );
    assert_eq!(mock.calls(Endpoint::CreateMachine), 2);
}

/// Clerk's rotation (`POST /machines/{id}/secret_key/rotate`): the previous key keeps working
/// for `previous_token_ttl` seconds, for minting and for verifying, and not a moment longer; 0
/// retires it at once. A token minted with the old key stays valid (it belongs to the machine).
#[tokio::test]
async fn a_rotated_key_works_for_its_grace_period_only_and_zero_means_none() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    let sk = mock.instance_secret_key();
    let rotate = |id: String, ttl: u64| {
        let (mock, sk) = (&mock, sk.clone());
        async move {
            let r = call(
                mock,
                Method::POST,
                &format!("/v1/machines/{id}/secret_key/rotate"),
                Some(&sk),
                Some(json!({ "previous_token_ttl": ttl })),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.body["secret"].as_str().expect("new key").to_owned()
        }
    };
    let mint = |key: String| {
        let mock = &mock;
        async move {
            call(
                mock,
                Method::POST,
                "/m2m_tokens",
                Some(&key),
                Some(json!({})),
            )
            .await
        }
    };
    let verify = |key: String, token: String| {
        let mock = &mock;
        async move {
            call(
                mock,
                Method::POST,
                "/m2m_tokens/verify",
                Some(&key),
                Some(json!({ "token": token })),
            )
            .await
            .status
        }
    };

    // A caller's key, 30 s of grace.
    let before = mint(rep.secret_key.clone()).await;
    assert_eq!(before.status, 201);
    let old_token = before.body["token"].as_str().expect("token").to_owned();
    let new_rep = rotate(rep.id.clone(), 30).await;
    mock.advance_clock(Duration::from_secs(29));
    assert_eq!(
        mint(rep.secret_key.clone()).await.status,
        201,
        "within grace"
    );
    mock.advance_clock(Duration::from_secs(1));
    let after = mint(rep.secret_key.clone()).await;
    assert_eq!(after.status, 401, "grace over: {}", after.body);
    assert_eq!(error_code(&after.body), "clerk_key_invalid");
    assert_eq!(mint(new_rep.clone()).await.status, 201);
    // The token minted with the old key is the machine's, not the key's.
    assert_eq!(verify(api.secret_key.clone(), old_token.clone()).await, 200);

    // A receiver's key, no grace: the old key cannot verify even a second later.
    let new_api = rotate(api.id.clone(), 0).await;
    assert_eq!(verify(api.secret_key.clone(), old_token.clone()).await, 401);
    assert_eq!(verify(new_api, old_token).await, 200);
}
