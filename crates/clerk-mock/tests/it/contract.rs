//! Every body the mock produces on the M2M, machines and JWKS routes validates against Clerk's
//! official OpenAPI document (tests/data/clerk-bapi-2026-05-12.yml, licence beside it).
//!
//! The validator covers the OpenAPI 3.0 schema keywords that document uses on these responses
//! and fails on any keyword it does not know, so a schema it cannot check is never passed
//! silently.

use std::sync::OnceLock;

use clerk_mock::{ClerkMock, Endpoint};
use regex::Regex;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{call, demo_machines};

fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let text = include_str!("data/clerk-bapi-2026-05-12.yml");
        serde_yaml::from_str(text).expect("the vendored spec parses")
    })
}

fn resolve(mut v: &Value) -> &Value {
    while let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let pointer = r.strip_prefix('#').expect("local $ref");
        let pointer = pointer.replace("~1", "/");
        v = spec()
            .pointer(&pointer)
            .unwrap_or_else(|| panic!("unresolved $ref {r}"));
    }
    v
}

/// The response schema for `method path` answering `status`.
fn response_schema(path: &str, method: &str, status: u16) -> &'static Value {
    let op = &spec()["paths"][path][method];
    assert!(op.is_object(), "no operation {method} {path} in the spec");
    let response = op["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("the spec lists no {status} for {method} {path}"));
    let response = resolve(response);
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "no JSON schema for {method} {path} {status}"
    );
    schema
}

const IGNORED: &[&str] = &[
    "description",
    "example",
    "examples",
    "default",
    "readOnly",
    "format",
    "title",
    "deprecated",
    "x-speakeasy-name-override",
];

fn validate(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(schema);
    let Some(obj) = schema.as_object() else {
        errors.push(format!("{at}: schema is not an object"));
        return;
    };
    if value.is_null() {
        if obj.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        // A schema with no type and no composition accepts anything, null included.
        if !obj.contains_key("type")
            && !obj.contains_key("allOf")
            && !obj.contains_key("oneOf")
            && !obj.contains_key("anyOf")
            && !obj.contains_key("enum")
        {
            return;
        }
        errors.push(format!("{at}: null is not allowed"));
        return;
    }
    for (key, rule) in obj {
        match key.as_str() {
            "nullable"
            | "required"
            | "additionalProperties"
            | "exclusiveMinimum"
            | "exclusiveMaximum" => {}
            k if IGNORED.contains(&k) => {}
            "$ref" => {}
            "type" => {
                let ok = match rule.as_str().unwrap_or_default() {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
                    "number" => value.is_number(),
                    other => {
                        errors.push(format!("{at}: unknown type {other}"));
                        true
                    }
                };
                if !ok {
                    errors.push(format!("{at}: expected {rule}, got {value}"));
                }
            }
            "enum" => {
                if !rule.as_array().is_some_and(|a| a.contains(value)) {
                    errors.push(format!("{at}: {value} not in {rule}"));
                }
            }
            "pattern" => {
                let re = Regex::new(rule.as_str().unwrap_or_default()).expect("pattern compiles");
                if let Some(s) = value.as_str()
                    && !re.is_match(s)
                {
                    errors.push(format!("{at}: {s:?} does not match {rule}"));
                }
            }
            "minLength" | "maxLength" => {
                if let (Some(s), Some(n)) = (value.as_str(), rule.as_u64()) {
                    let len = s.chars().count() as u64;
                    if (key == "minLength" && len < n) || (key == "maxLength" && len > n) {
                        errors.push(format!("{at}: length {len} violates {key} {n}"));
                    }
                }
            }
            "minimum" | "maximum" => {
                if let (Some(v), Some(n)) = (value.as_f64(), rule.as_f64()) {
                    let exclusive = obj.get(if key == "minimum" {
                        "exclusiveMinimum"
                    } else {
                        "exclusiveMaximum"
                    }) == Some(&Value::Bool(true));
                    let bad = match (key == "minimum", exclusive) {
                        (true, false) => v < n,
                        (true, true) => v <= n,
                        (false, false) => v > n,
                        (false, true) => v >= n,
                    };
                    if bad {
                        errors.push(format!("{at}: {v} violates {key} {n}"));
                    }
                }
            }
            "properties" => {
                if let (Some(props), Some(map)) = (rule.as_object(), value.as_object()) {
                    for (name, sub) in props {
                        if let Some(v) = map.get(name) {
                            validate(sub, v, &format!("{at}.{name}"), errors);
                        }
                    }
                    if obj.get("additionalProperties") == Some(&Value::Bool(false)) {
                        for name in map.keys() {
                            if !props.contains_key(name) {
                                errors.push(format!("{at}: property {name:?} is not allowed"));
                            }
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        validate(rule, item, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            "allOf" => {
                for sub in rule.as_array().into_iter().flatten() {
                    validate(sub, value, at, errors);
                }
            }
            "oneOf" | "anyOf" => {
                let passing = rule
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|sub| {
                        let mut e = Vec::new();
                        validate(sub, value, at, &mut e);
                        e.is_empty()
                    })
                    .count();
                if passing == 0 || (key == "oneOf" && passing > 1) {
                    errors.push(format!("{at}: {passing} alternatives of {key} match"));
                }
            }
            other => errors.push(format!(
                "{at}: the contract validator does not understand keyword {other:?}"
            )),
        }
    }
    if let (Some(required), Some(map)) = (
        obj.get("required").and_then(Value::as_array),
        value.as_object(),
    ) {
        for name in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                errors.push(format!("{at}: required property {name:?} is missing"));
            }
        }
    }
}

fn assert_conforms(path: &str, method: &str, status: u16, body: &Value) {
    let mut errors = Vec::new();
    validate(
        response_schema(path, method, status),
        body,
        "$",
        &mut errors,
    );
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match Clerk's schema:\n{}\nbody: {body:#}",
        errors.join("\n")
    );
}

#[test]
fn the_validator_rejects_what_the_schema_forbids() {
    let schema = response_schema("/m2m_tokens/verify", "post", 200);
    let good = json!({
        "object": "machine_to_machine_token", "id": "mt_f7f0ba8c3b4843ce7d85fcdd5e71853e",
        "subject": "mch_2xhFjEI5X2qWRvtV13BzSj8H6Dk", "claims": null, "scopes": [],
        "revoked": false, "revocation_reason": null, "expired": false, "expiration": null,
        "last_used_at": null, "created_at": 1, "updated_at": 1
    });
    let mut e = Vec::new();
    validate(schema, &good, "$", &mut e);
    assert!(e.is_empty(), "{e:?}");

    for (mutate, why) in [
        (
            json!({"token": "mt_x"}),
            "token is not part of the verify schema",
        ),
        (json!({"id": "mt_nothex"}), "id pattern"),
        (json!({"created_at": "1"}), "created_at type"),
        (json!({"revoked": null}), "revoked is not nullable"),
    ] {
        let mut bad = good.clone();
        for (k, v) in mutate.as_object().expect("object") {
            bad[k] = v.clone();
        }
        let mut e = Vec::new();
        validate(schema, &bad, "$", &mut e);
        assert!(!e.is_empty(), "validator accepted a body with a bad {why}");
    }
    let mut missing = good.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("last_used_at");
    let mut e = Vec::new();
    validate(schema, &missing, "$", &mut e);
    assert!(
        !e.is_empty(),
        "validator accepted a body without last_used_at"
    );
}

#[tokio::test]
async fn m2m_token_responses_match_clerks_schemas() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    let sk = mock.instance_secret_key();

    for format in ["opaque", "jwt"] {
        let created = call(&mock, Method::POST, "/m2m_tokens", Some(&rep.secret_key), Some(json!({"token_format": format, "seconds_until_expiration": 600, "claims": {"k": "v"}}))).await;
        assert_eq!(created.status, 201);
        assert_conforms("/m2m_tokens", "post", 201, &created.body);
    }
    let created = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(json!({"seconds_until_expiration": null, "claims": null, "token_format": "opaque"})),
    )
    .await;
    assert_conforms("/m2m_tokens", "post", 201, &created.body);
    let token = created.body["token"].as_str().expect("token").to_owned();
    let id = created.body["id"].as_str().expect("id").to_owned();

    let verified = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some(&api.secret_key),
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(verified.status, 200);
    assert_conforms("/m2m_tokens/verify", "post", 200, &verified.body);

    let listed = call(
        &mock,
        Method::GET,
        &format!("/m2m_tokens?subject={}", rep.id),
        Some(&sk),
        None,
    )
    .await;
    assert_eq!(listed.status, 200);
    assert_conforms("/m2m_tokens", "get", 200, &listed.body);

    let revoked = call(
        &mock,
        Method::POST,
        &format!("/m2m_tokens/{id}/revoke"),
        Some(&rep.secret_key),
        Some(json!({"revocation_reason": "rotated"})),
    )
    .await;
    assert_eq!(revoked.status, 200);
    assert_conforms(
        "/m2m_tokens/{m2m_token_id}/revoke",
        "post",
        200,
        &revoked.body,
    );

    // Error bodies where the spec gives them a schema.
    let bad = call(
        &mock,
        Method::POST,
        "/m2m_tokens",
        Some(&rep.secret_key),
        Some(json!({"seconds_until_expiration": 0})),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_conforms("/m2m_tokens", "post", 400, &bad.body);
    let missing = call(
        &mock,
        Method::POST,
        "/m2m_tokens/verify",
        Some(&sk),
        Some(json!({"token": "mt_unknown"})),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_conforms("/m2m_tokens/verify", "post", 404, &missing.body);
    let bad_id = call(
        &mock,
        Method::POST,
        "/m2m_tokens/mt_zz/revoke",
        Some(&sk),
        None,
    )
    .await;
    assert_eq!(bad_id.status, 400);
    assert_conforms(
        "/m2m_tokens/{m2m_token_id}/revoke",
        "post",
        400,
        &bad_id.body,
    );
    let forbidden = call(
        &mock,
        Method::GET,
        &format!("/m2m_tokens?subject={}", api.id),
        Some(&rep.secret_key),
        None,
    )
    .await;
    assert_eq!(forbidden.status, 403);
    assert_conforms("/m2m_tokens", "get", 403, &forbidden.body);
}

#[tokio::test]
async fn machine_and_jwks_responses_match_clerks_schemas() {
    let mock = ClerkMock::start_demo().await;
    let (api, rep, _) = demo_machines(&mock);
    let sk = mock.instance_secret_key();

    let created = call(
        &mock,
        Method::POST,
        "/v1/machines",
        Some(&sk),
        Some(
            json!({"name": "Contract.Bot", "scoped_machines": [api.id], "default_token_ttl": 120}),
        ),
    )
    .await;
    assert_eq!(created.status, 200);
    assert_conforms("/machines", "post", 200, &created.body);
    let new_id = created.body["id"].as_str().expect("id").to_owned();

    let list = call(&mock, Method::GET, "/v1/machines?limit=50", Some(&sk), None).await;
    assert_conforms("/machines", "get", 200, &list.body);
    let got = call(
        &mock,
        Method::GET,
        &format!("/v1/machines/{}", rep.id),
        Some(&sk),
        None,
    )
    .await;
    assert_conforms("/machines/{machine_id}", "get", 200, &got.body);
    let patched = call(
        &mock,
        Method::PATCH,
        &format!("/v1/machines/{new_id}"),
        Some(&sk),
        Some(json!({"name": "Contract.Bot2"})),
    )
    .await;
    assert_conforms("/machines/{machine_id}", "patch", 200, &patched.body);
    let key = call(
        &mock,
        Method::GET,
        &format!("/v1/machines/{new_id}/secret_key"),
        Some(&sk),
        None,
    )
    .await;
    assert_conforms("/machines/{machine_id}/secret_key", "get", 200, &key.body);
    let rotated = call(
        &mock,
        Method::POST,
        &format!("/v1/machines/{new_id}/secret_key/rotate"),
        Some(&sk),
        Some(json!({"previous_token_ttl": 0})),
    )
    .await;
    assert_conforms(
        "/machines/{machine_id}/secret_key/rotate",
        "post",
        200,
        &rotated.body,
    );
    let scope = call(
        &mock,
        Method::POST,
        &format!("/v1/machines/{api}/scopes", api = api.id),
        Some(&sk),
        Some(json!({"to_machine_id": new_id})),
    )
    .await;
    assert_conforms("/machines/{machine_id}/scopes", "post", 200, &scope.body);
    let unscope = call(
        &mock,
        Method::DELETE,
        &format!("/v1/machines/{}/scopes/{new_id}", api.id),
        Some(&sk),
        None,
    )
    .await;
    assert_conforms(
        "/machines/{machine_id}/scopes/{other_machine_id}",
        "delete",
        200,
        &unscope.body,
    );
    let deleted = call(
        &mock,
        Method::DELETE,
        &format!("/v1/machines/{new_id}"),
        Some(&sk),
        None,
    )
    .await;
    assert_conforms("/machines/{machine_id}", "delete", 200, &deleted.body);

    let missing = call(
        &mock,
        Method::GET,
        "/v1/machines/mch_2NoSuchMachine0000000000000",
        Some(&sk),
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_conforms("/machines/{machine_id}", "get", 404, &missing.body);
    let unprocessable = call(
        &mock,
        Method::POST,
        "/v1/machines",
        Some(&sk),
        Some(json!({})),
    )
    .await;
    assert_eq!(unprocessable.status, 422);
    assert_conforms("/machines", "post", 422, &unprocessable.body);

    let jwks = call(&mock, Method::GET, "/v1/jwks", Some(&sk), None).await;
    assert_eq!(jwks.status, 200);
    assert_conforms("/jwks", "get", 200, &jwks.body);
    assert!(mock.calls(Endpoint::Jwks) >= 1);
}
