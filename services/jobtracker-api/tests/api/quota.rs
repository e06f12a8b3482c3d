//! Per-user resume quotas (`RESUME_MAX_FILES`, `RESUME_QUOTA_BYTES`): refused with 409 or 413
//! before the body is read and again by the write itself, so concurrent uploads cannot exceed
//! them; deleting a resume frees room; upload bodies in memory are bounded.

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both;
use crate::helpers::{Answer, TestApp};

const MIB: usize = 1024 * 1024;

fn detail(a: &Answer) -> &str {
    a.body["detail"].as_str().unwrap_or_default()
}

fn assert_problem(a: &Answer, status: u16, detail_is: &str) {
    assert_eq!(a.status.as_u16(), status, "{}", a.body);
    assert_eq!(
        a.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(detail(a), detail_is);
}

/// A text resume of `len` bytes.
fn text(len: usize) -> Vec<u8> {
    vec![b'a'; len]
}

async fn upload_text(app: &TestApp, user_id: &str, len: usize) -> Answer {
    app.upload(
        user_id,
        &app.user(user_id),
        "cv.txt",
        "text/plain",
        text(len),
    )
    .await
}

/// (count, bytes) of the user's resumes, as listed.
async fn stored(app: &TestApp, user_id: &str) -> (usize, u64) {
    let list = app
        .get(
            &format!("/api/users/{user_id}/resumes?limit=200"),
            &app.user(user_id),
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let items = list.body["items"].as_array().expect("items").clone();
    let bytes = items
        .iter()
        .map(|r| r["size"].as_u64().expect("size"))
        .sum();
    (items.len(), bytes)
}

async fn delete(app: &TestApp, user_id: &str, resume_id: &str, token: &str) -> Answer {
    app.call(
        Method::DELETE,
        &format!("/api/users/{user_id}/resumes/{resume_id}"),
        Some(token),
        None,
    )
    .await
}

fn id(a: &Answer) -> String {
    a.body["id"].as_str().expect("resume id").to_owned()
}

async fn the_file_count_limit_is_409_and_deleting_frees_room(app: &TestApp) {
    app.profile(&app.alice).await;
    app.profile(&app.bob).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let a = upload_text(app, &app.alice, 100).await;
        assert_eq!(a.status, 201, "{}", a.body);
        ids.push(id(&a));
    }
    let refused = upload_text(app, &app.alice, 100).await;
    assert_problem(
        &refused,
        409,
        "the user already has 3 resumes (the limit): delete one first",
    );
    assert_eq!(
        stored(app, &app.alice).await,
        (3, 300),
        "nothing was written"
    );
    assert_eq!(
        upload_text(app, &app.bob, 100).await.status,
        201,
        "the limit is per user"
    );

    let alice = app.user(&app.alice);
    assert_eq!(delete(app, &app.alice, &ids[1], &alice).await.status, 204);
    let download = app
        .get(&format!("/api/resumes/{}/content", ids[1]), &alice)
        .await;
    assert_eq!(download.status, 404, "a deleted resume is gone");
    assert_eq!(stored(app, &app.alice).await, (2, 200));
    assert_eq!(upload_text(app, &app.alice, 100).await.status, 201);
    assert_eq!(upload_text(app, &app.alice, 100).await.status, 409);
}
both!(the_file_count_limit_is_409_and_deleting_frees_room, |c| {
    c.resume_max_files = 3
});

async fn the_byte_quota_is_413_naming_the_quota_and_what_is_used(app: &TestApp) {
    app.profile(&app.alice).await;
    app.profile(&app.bob).await;
    let first = upload_text(app, &app.alice, 600).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let over = "the user's resumes may take 1000 bytes in all and 600 are used: this one does not fit; delete one first";
    assert_problem(&upload_text(app, &app.alice, 401).await, 413, over);
    assert_eq!(
        upload_text(app, &app.alice, 400).await.status,
        201,
        "exactly the quota fits"
    );
    let full = "the user's resumes may take 1000 bytes in all and 1000 are used: this one does not fit; delete one first";
    assert_problem(&upload_text(app, &app.alice, 1).await, 413, full);
    assert_eq!(stored(app, &app.alice).await, (2, 1000));

    // A file over RESUME_MAX_BYTES keeps its own answer, declared or streamed.
    let limit = "resumes are limited to 65536 bytes";
    assert_problem(&upload_text(app, &app.bob, 64 * 1024 + 1).await, 413, limit);
    let mut raw = Raw::open(app, &upload_head(app, &app.bob, None)).await;
    raw.send_chunked(&text(64 * 1024 + 1)).await;
    let (status, _, body) = raw.response().await;
    assert_eq!((status, body["detail"].as_str()), (413, Some(limit)));
    assert_eq!(stored(app, &app.bob).await, (0, 0));

    assert_eq!(
        delete(app, &app.alice, &id(&first), &app.user(&app.alice))
            .await
            .status,
        204
    );
    assert_eq!(upload_text(app, &app.alice, 600).await.status, 201);
}
both!(
    the_byte_quota_is_413_naming_the_quota_and_what_is_used,
    |c| { c.resume_quota_bytes = 1000 }
);

/// Issue #21's check, at the default limits (20 files, 100 MiB) with 10 MiB uploads.
async fn one_user_cannot_store_twelve_ten_mib_resumes(app: &TestApp) {
    app.profile(&app.alice).await;
    let alice = app.user(&app.alice);
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(10 * MIB, b' ');
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let a = app
            .upload(&app.alice, &alice, "cv.pdf", "application/pdf", pdf.clone())
            .await;
        if a.status != 201 {
            assert_problem(
                &a,
                413,
                "the user's resumes may take 104857600 bytes in all and 104857600 are used: this one does not fit; delete one first",
            );
        }
        statuses.push(a.status.as_u16());
    }
    let mut expected = vec![201u16; 10];
    expected.extend([413, 413]);
    assert_eq!(statuses, expected);
    assert_eq!(stored(app, &app.alice).await, (10, 100 * MIB as u64));
    // Every answer given before the body is read reaches a client already sending 10 MiB
    // (without `Expect: 100-continue`), not a broken pipe.
    let bob = app.user(&app.bob);
    for (token, name, status) in [(&bob, "cv.pdf", 403), (&alice, "../cv.pdf", 422)] {
        let a = app
            .upload(&app.alice, token, name, "application/pdf", pdf.clone())
            .await;
        assert_eq!(a.status, status, "{}", a.body);
    }
}
both!(one_user_cannot_store_twelve_ten_mib_resumes, |c| {
    c.resume_max_bytes = 10 * 1024 * 1024
});

/// Eight uploads at once where three (files) or two (bytes) fit: the statement that writes
/// decides, so exactly that many land, whatever the interleaving.
async fn concurrent_uploads_at_the_boundary_never_exceed_the_quota(app: &TestApp) {
    app.profile(&app.alice).await;
    app.profile(&app.bob).await;
    for (user, size, room, refusal) in [
        (app.alice.as_str(), 10, 3, 409u16),
        (app.bob.as_str(), 1200, 2, 413),
    ] {
        for _ in 0..2 {
            assert_eq!(upload_text(app, user, size).await.status, 201);
        }
        let answers = futures::future::join_all((0..8).map(|_| upload_text(app, user, size))).await;
        let mut statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
        statuses.sort_unstable();
        let expected = [vec![201; room], vec![refusal; 8 - room]].concat();
        assert_eq!(statuses, expected, "{user}");
        let (count, bytes) = stored(app, user).await;
        assert_eq!(count, 2 + room, "{user}");
        assert!(
            count <= 5 && bytes <= 5000,
            "{user}: {count} files, {bytes} bytes"
        );
    }
}
both!(
    concurrent_uploads_at_the_boundary_never_exceed_the_quota,
    |c| {
        c.resume_max_files = 5;
        c.resume_quota_bytes = 5000;
        // All eight at once, so the statement that writes is what decides.
        c.resume_uploads_per_user = 8;
    }
);

/// `Expect: 100-continue` makes the server ask for the body (`100 Continue`) only when it
/// starts reading it, so a final answer without one proves the body was never read.
async fn a_full_account_is_refused_before_the_body_is_read(app: &TestApp) {
    app.profile(&app.alice).await;
    app.profile(&app.bob).await;
    // The control: an account with room is asked for its body, and stores it.
    let mut raw = Raw::open(app, &upload_head(app, &app.alice, Some(100))).await;
    let (status, _) = raw.head().await;
    assert_eq!(status, 100, "an upload with room reads its body");
    raw.send(&text(100)).await;
    assert_eq!(raw.response().await.0, 201);

    let full = "the user already has 1 resumes (the limit): delete one first";
    // Now full: answered at once, the body never asked for (a `100 Continue` would fail this).
    let mut raw = Raw::open(app, &upload_head(app, &app.alice, Some(100))).await;
    let (status, head, body) = raw.response().await;
    assert_eq!(status, 409, "{head}");
    assert_eq!(body["detail"], full);
    // A declared length over RESUME_MAX_BYTES: 413 at once, whatever the account holds, before
    // the quota query or an upload slot.
    let too_big = "resumes are limited to 65536 bytes";
    let mut raw = Raw::open(app, &upload_head(app, &app.alice, Some(20 * MIB))).await;
    let (status, head, body) = raw.response().await;
    assert_eq!(status, 413, "{head}");
    assert_eq!(body["detail"], too_big);
    assert_problem(
        &upload_text(app, &app.alice, 64 * 1024 + 1).await,
        413,
        too_big,
    );

    assert_eq!(
        upload_text(app, &app.bob, 100).await.status,
        201,
        "bob has room"
    );
}
both!(a_full_account_is_refused_before_the_body_is_read, |c| {
    c.resume_max_files = 1
});

/// One user's uploads hold at most `RESUME_UPLOADS_PER_USER` of the slots: a user trickling bodies
/// gets 503 for one more at once, while another user's upload is served; once the first ones
/// finish, the user may upload again. (The global cap, `UPLOAD_PERMITS`, is `transfers`' unit
/// test.)
async fn uploads_beyond_the_slots_get_503_until_one_is_free(app: &TestApp) {
    const UPLOADS_PER_USER: usize = jobtracker_api::Config::RESUME_UPLOADS_PER_USER as usize;
    app.profile(&app.alice).await;
    app.profile(&app.bob).await;
    let mut reading = Vec::new();
    for _ in 0..UPLOADS_PER_USER {
        let mut raw = Raw::open(app, &upload_head(app, &app.alice, Some(100))).await;
        assert_eq!(raw.head().await.0, 100, "the body is being read");
        reading.push(raw);
    }
    let busy = upload_text(app, &app.alice, 100).await;
    assert_problem(
        &busy,
        503,
        "this user has too many resume uploads in progress; retry when one is done",
    );
    assert!(busy.headers.get("retry-after").is_some());
    assert_eq!(
        upload_text(app, &app.bob, 100).await.status,
        201,
        "another user is not held up"
    );
    for mut raw in reading {
        raw.send(&text(100)).await;
        assert_eq!(raw.response().await.0, 201);
    }
    assert_eq!(upload_text(app, &app.alice, 100).await.status, 201);
    assert_eq!(stored(app, &app.alice).await.0, UPLOADS_PER_USER + 1);
}
both!(uploads_beyond_the_slots_get_503_until_one_is_free);

async fn deleting_a_resume(app: &TestApp) {
    let created = app.application(&app.alice, &[], "saved").await;
    let in_use = created["resume_id"].as_str().expect("resume").to_owned();
    app.profile(&app.bob).await;
    let alice = app.user(&app.alice);
    let bob = app.user(&app.bob);
    let spare = id(&upload_text(app, &app.alice, 10).await);
    let bobs = id(&upload_text(app, &app.bob, 10).await);

    assert_problem(
        &delete(app, &app.alice, &in_use, &alice).await,
        409,
        "the resume is used by an application",
    );
    // Another user's resume under one's own id is unknown; under theirs, forbidden.
    assert_problem(
        &delete(app, &app.bob, &spare, &bob).await,
        404,
        "resume not found",
    );
    assert_problem(
        &delete(app, &app.alice, &bobs, &alice).await,
        404,
        "resume not found",
    );
    assert_problem(
        &delete(app, &app.alice, &spare, &bob).await,
        403,
        "you may only access your own data",
    );
    for bot in ["CandidateRepresenter.Bot", "JobApplier.Bot"] {
        assert_eq!(
            delete(app, &app.alice, &spare, &app.machine(bot))
                .await
                .status,
            403,
            "{bot}"
        );
    }
    assert_eq!(
        delete(app, &app.alice, "res_000000000000000000000000", &alice)
            .await
            .status,
        404
    );
    let malformed = delete(app, &app.alice, "res_zz", &alice).await;
    assert_eq!(malformed.status, 422);
    assert_eq!(malformed.body["field"], "resume_id");
    assert_eq!(stored(app, &app.alice).await.0, 2, "nothing was deleted");

    let deleted = delete(app, &app.alice, &spare, &alice).await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.bytes.is_empty());
    assert_eq!(delete(app, &app.alice, &spare, &alice).await.status, 404);
    assert_eq!(stored(app, &app.alice).await.0, 1);
    let app_now = app
        .get(
            &format!(
                "/api/job-applications/{}",
                created["id"].as_str().expect("id")
            ),
            &alice,
        )
        .await;
    assert_eq!(app_now.body["resume_id"], json!(in_use), "history kept");
    assert_eq!(stored(app, &app.bob).await.0, 1, "bob's is untouched");
}
both!(deleting_a_resume);

/// `POST …/resumes` with `text/plain`, `Content-Length: len` and `Expect: 100-continue` when
/// `len` is given, else chunked.
fn upload_head(app: &TestApp, user_id: &str, len: Option<usize>) -> String {
    let length = match len {
        Some(n) => format!("Content-Length: {n}\r\nExpect: 100-continue\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    format!(
        "POST /api/users/{user_id}/resumes?file_name=cv.txt HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: text/plain\r\n{length}\r\n",
        app.base.trim_start_matches("http://"),
        app.user(user_id)
    )
}

/// An HTTP/1.1 exchange on a connection of its own, so a test decides when the body goes out.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn open(app: &TestApp, head: &str) -> Self {
        let mut stream = TcpStream::connect(app.base.trim_start_matches("http://"))
            .await
            .expect("connect");
        stream.write_all(head.as_bytes()).await.expect("write");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, body: &[u8]) {
        self.stream.write_all(body).await.expect("write");
    }

    async fn send_chunked(&mut self, body: &[u8]) {
        for chunk in body.chunks(8 * 1024) {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(chunk);
            frame.extend_from_slice(b"\r\n");
            // The server may answer and stop reading once past the limit.
            if self.stream.write_all(&frame).await.is_err() {
                return;
            }
        }
        let _ = self.stream.write_all(b"0\r\n\r\n").await;
    }

    async fn fill(&mut self, until: impl Fn(&[u8]) -> bool) {
        let mut chunk = [0u8; 4096];
        while !until(&self.buf) {
            let n = self.stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "closed early: {}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next response head: its status and text.
    async fn head(&mut self) -> (u16, String) {
        self.fill(|b| b.windows(4).any(|w| w == b"\r\n\r\n")).await;
        let end = self
            .buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head")
            + 4;
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        (status, head)
    }

    /// The next final response: status, head and JSON body.
    async fn response(&mut self) -> (u16, String, Value) {
        let (status, head) = self.head().await;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        self.fill(|b| b.len() >= len).await;
        let body = serde_json::from_slice(&self.buf[..len]).unwrap_or(Value::Null);
        self.buf.drain(..len);
        (status, head, body)
    }
}
