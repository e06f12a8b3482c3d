//! Bad input gets a clear 4xx and writes nothing; resumes round-trip exactly.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both;
use crate::helpers::TestApp;

async fn count(app: &TestApp, table: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}"));
    let row = sqlx::query(sql)
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    sqlx::Row::try_get::<i64, _>(&row, "n").expect("n")
}

async fn totals(app: &TestApp) -> Vec<i64> {
    let mut v = Vec::new();
    for t in [
        "users",
        "resumes",
        "job_applications",
        "questions",
        "events",
    ] {
        v.push(count(app, t).await);
    }
    v
}

async fn malformed_requests_are_4xx_and_write_nothing(app: &TestApp) {
    app.profile(&app.alice).await;
    let alice = app.user(&app.alice);
    let before = totals(app).await;
    let raw = |body: &'static str, ct: &'static str| {
        let req = app
            .http
            .post(format!("{}/api/job-applications", app.base))
            .bearer_auth(&alice)
            .header("content-type", ct)
            .body(body);
        app.send(req)
    };
    let syntax = raw("{\"company\": ", "application/json").await;
    assert_eq!(syntax.status, 400);
    assert_eq!(
        syntax
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(raw("{\"company\": \"A\"}", "text/plain").await.status, 415);
    let missing = raw("{\"company\": \"A\"}", "application/json").await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["field"], "position");
    let unknown = raw(
        "{\"company\": \"A\", \"position\": \"P\", \"salary\": 1}",
        "application/json",
    )
    .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.body["field"], "salary");
    for (body, field) in [
        (json!({"company": "", "position": "P"}), "company"),
        (
            json!({"company": "A", "position": "P", "job_url": "javascript:alert(1)"}),
            "job_url",
        ),
        (
            json!({"company": "A", "position": "P", "status": "submitted"}),
            "status",
        ),
        (
            json!({"company": "A", "position": "P", "resume_id": "res_000000000000000000000000"}),
            "resume_id",
        ),
        (
            json!({"company": "A", "position": "P", "resume_id": "../../etc/passwd"}),
            "resume_id",
        ),
        (
            json!({"company": "A", "position": "P", "questions": [""]}),
            "questions",
        ),
        (json!({"company": "A\u{0}", "position": "P"}), "company"),
        // URLs: a NUL reached Postgres as a 500; ESC and bidi overrides were stored.
        (
            json!({"company": "A", "position": "P", "job_url": "https://a.example/\u{0}"}),
            "job_url",
        ),
        (
            json!({"company": "A", "position": "P", "job_url": "https://a.example/\u{1b}[31m"}),
            "job_url",
        ),
        (
            json!({"company": "A", "position": "P", "job_url": "https://a.example/\u{202e}gpj.exe"}),
            "job_url",
        ),
        (
            json!({"company": "A", "position": "P", "status": "bogus"}),
            "status",
        ),
    ] {
        let a = app
            .post("/api/job-applications", &alice, body.clone())
            .await;
        assert_eq!(a.status, 422, "{body}: {}", a.body);
        assert_eq!(a.body["field"], field, "{body}");
    }
    let huge = json!({"company": "A", "position": "P", "questions": ["x".repeat(70_000)]});
    assert_eq!(
        app.post("/api/job-applications", &alice, huge).await.status,
        413
    );
    let profile = app
        .post(
            "/api/users",
            &alice,
            json!({"full_name": "A", "email": "not-an-email"}),
        )
        .await;
    assert_eq!(profile.body["field"], "email");
    for link in ["https://a.example/\u{0}", "https://a.example/\u{1b}[2J"] {
        let profile = app
            .post(
                "/api/users",
                &alice,
                json!({"full_name": "A", "email": "a@example.com", "links": [link]}),
            )
            .await;
        assert_eq!(profile.status, 422, "{link:?}: {}", profile.body);
        assert_eq!(profile.body["field"], "links");
    }
    for path in [
        "/api/job-applications/app_1",
        "/api/job-applications/1%20OR%201=1",
        "/api/resumes/res_zz/content",
        "/api/users/nobody",
    ] {
        assert_eq!(app.get(path, &alice).await.status, 422, "{path}");
    }
    assert_eq!(
        app.get("/api/job-applications/app_000000000000000000000000", &alice)
            .await
            .status,
        404
    );
    assert_eq!(totals(app).await, before, "nothing was written");
}
both!(malformed_requests_are_4xx_and_write_nothing);

async fn resumes_round_trip_and_hostile_uploads_are_refused(app: &TestApp) {
    app.profile(&app.alice).await;
    let alice = app.user(&app.alice);
    let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF".to_vec();
    let up = app
        .upload(
            &app.alice,
            &alice,
            "Lebenslauf Müller.pdf",
            "application/pdf",
            pdf.clone(),
        )
        .await;
    assert_eq!(up.status, 201, "{}", up.body);
    let expected_sha: String = Sha256::digest(&pdf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(up.body["sha256"], expected_sha);
    assert_eq!(up.body["size"], pdf.len());
    let applier = app.machine("JobApplier.Bot");
    let down = app
        .get(
            &format!(
                "/api/resumes/{}/content",
                up.body["id"].as_str().expect("id")
            ),
            &applier,
        )
        .await;
    assert_eq!(down.status, 200);
    assert_eq!(down.bytes, pdf);
    assert_eq!(
        down.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    let disposition = down
        .headers
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .expect("disposition");
    assert_eq!(
        disposition,
        "attachment; filename=\"Lebenslauf M_ller.pdf\"; filename*=UTF-8''Lebenslauf%20M%C3%BCller.pdf"
    );
    assert_eq!(
        down.headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );

    let mut docx = b"PK\x03\x04".to_vec();
    docx.extend_from_slice(b"....word/document.xml....");
    assert_eq!(
        app.upload(
            &app.alice,
            &alice,
            "cv.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            docx
        )
        .await
        .status,
        201
    );
    assert_eq!(
        app.upload(
            &app.alice,
            &alice,
            "cv.txt",
            "text/plain; charset=utf-8",
            "Plain résumé".as_bytes().to_vec()
        )
        .await
        .status,
        201
    );

    let before = totals(app).await;
    for name in [
        "../../etc/passwd",
        "a/b.pdf",
        "..\\x.pdf",
        ".hidden.pdf",
        "",
        "evil\".pdf",
        "new\nline.pdf",
        " padded.pdf",
        "\u{202E}fdp.exe",
        "cv\u{200B}.pdf",
        &"x".repeat(256),
    ] {
        let a = app
            .upload(&app.alice, &alice, name, "application/pdf", pdf.clone())
            .await;
        assert_eq!(a.status, 422, "{name:?}");
        assert_eq!(a.body["field"], "file_name");
    }
    assert_eq!(
        app.upload(&app.alice, &alice, "cv.pdf", "text/plain", pdf.clone())
            .await
            .status,
        415,
        "content must match the type"
    );
    assert_eq!(
        app.upload(
            &app.alice,
            &alice,
            "cv.pdf",
            "application/pdf",
            b"not a pdf".to_vec()
        )
        .await
        .status,
        415
    );
    assert_eq!(
        app.upload(
            &app.alice,
            &alice,
            "cv.exe",
            "application/octet-stream",
            vec![0x4d, 0x5a, 0, 0]
        )
        .await
        .status,
        415
    );
    assert_eq!(
        app.upload(&app.alice, &alice, "cv.pdf", "application/pdf", Vec::new())
            .await
            .status,
        422
    );
    let mut big = b"%PDF-".to_vec();
    big.resize(64 * 1024 + 1, b'a');
    assert_eq!(
        app.upload(&app.alice, &alice, "big.pdf", "application/pdf", big)
            .await
            .status,
        413
    );
    let bob = app.user(&app.bob);
    assert_eq!(
        app.upload(&app.alice, &bob, "cv.pdf", "application/pdf", pdf.clone())
            .await
            .status,
        403
    );
    assert_eq!(totals(app).await, before, "nothing was written");
    let listed: Value = app
        .get(&format!("/api/users/{}/resumes", app.alice), &alice)
        .await
        .body;
    assert_eq!(listed["items"].as_array().expect("items").len(), 3);
    let _ = Method::GET;
}
both!(resumes_round_trip_and_hostile_uploads_are_refused);

/// `review_reason` is stored and shown to people, so it is checked as text (at most 1,000
/// characters, no control characters but newline and tab) on every path that accepts it: with
/// an answer as well as with `needs_review`. Refused ones write nothing.
async fn review_reason_is_checked_on_every_path(app: &TestApp) {
    let a = app
        .application(&app.alice, &["Years of Rust?"], "saved")
        .await;
    let app_id = a["id"].as_str().expect("id").to_owned();
    let q = a["questions"][0]["id"].as_str().expect("qid").to_owned();
    let alice = app.user(&app.alice);
    let paths = [
        ("answer", json!({"answer": "7"})),
        ("needs_review", json!({"needs_review": true})),
    ];
    let hostile = [
        "x".repeat(60_000),
        "ok\u{1b}[31mred".to_owned(),
        "nul\u{0}byte".to_owned(),
        "line\r\nInjected: header".to_owned(),
        " ".to_owned(),
    ];
    let before = totals(app).await;
    for (path, body) in &paths {
        for reason in &hostile {
            let mut body = body.clone();
            body["review_reason"] = json!(reason);
            let refused = app.answer(&alice, &app_id, &q, body).await;
            assert_eq!(refused.status, 422, "{path}: {}", refused.body);
            assert_eq!(refused.body["field"], "review_reason", "{path}");
        }
    }
    assert_eq!(
        totals(app).await,
        before,
        "a refused reason wrote something"
    );
    let stored = app
        .get(&format!("/api/job-applications/{app_id}"), &alice)
        .await;
    assert_eq!(stored.body["questions"][0]["review_reason"], Value::Null);
    for (path, body) in paths {
        let mut body = body.clone();
        body["review_reason"] = json!("the candidate\tshould\nconfirm");
        let kept = app.answer(&alice, &app_id, &q, body).await;
        assert_eq!(kept.status, 200, "{path}: {}", kept.body);
        assert_eq!(
            kept.body["questions"][0]["review_reason"], "the candidate\tshould\nconfirm",
            "{path}"
        );
    }
}
both!(review_reason_is_checked_on_every_path);
