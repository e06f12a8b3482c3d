//! Swagger UI in headless Chromium: served offline, authorised with a session token, "Try it
//! out" on `GET /api/whoami` shows the principal. Driven through the DevTools protocol.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::Stack;
use futures::{SinkExt, StreamExt};
use jobtracker_api::testing::Backend;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Browser(Child, std::path::PathBuf);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_owned)
}

/// Launches headless Chromium with the flags this machine needs; returns it and its DevTools URL.
fn launch(binary: &str) -> (Browser, String) {
    let profile = std::env::temp_dir().join(format!("chromium-profile-{}", std::process::id()));
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--window-size=1280,1600",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("DevTools listening on ") => {
                break line
                    .split("DevTools listening on ")
                    .nth(1)
                    .expect("url")
                    .trim()
                    .to_owned();
            }
            Some(Ok(_)) => continue,
            _ => panic!("chromium exited before printing its DevTools URL"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Browser(child, profile), url)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Cdp {
    ws: Ws,
    next: u64,
    session: Option<String>,
    requests: Vec<String>,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let mut msg = json!({"id": self.next, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("DevTools answers")
                .expect("open")
                .expect("frame");
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text).expect("json");
            if v["method"] == "Network.requestWillBeSent" {
                self.requests.push(
                    v["params"]["request"]["url"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            if v["id"] == self.next {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    async fn wait_for(&mut self, js: &str, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.eval(js).await;
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Clicks the first element matching `selector`.
fn click(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.click(); return true; }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_authorizes_and_runs_whoami_in_a_real_browser() {
    let Some(binary) = chromium() else {
        if std::env::var("REQUIRE_BROWSER_TEST").is_ok() {
            panic!(
                "REQUIRE_BROWSER_TEST is set but no Chromium is installed (apt-get install chromium)"
            );
        }
        eprintln!(
            "SKIPPED (browser test): no Chromium on this machine; `apt-get install chromium` to run it (.ci/run does)"
        );
        return;
    };
    let Some(stack) = Stack::start(Backend::Sqlite).await else {
        return;
    };
    let token = stack.user_token(&stack.alice);
    let (_browser, devtools) = launch(&binary);
    let (ws, _) = tokio_tungstenite::connect_async(devtools.as_str())
        .await
        .expect("DevTools websocket");
    let mut cdp = Cdp {
        ws,
        next: 0,
        session: None,
        requests: Vec::new(),
    };
    let target = cdp
        .call("Target.createTarget", json!({"url": "about:blank"}))
        .await;
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )
        .await;
    cdp.session = attached["sessionId"].as_str().map(str::to_owned);
    cdp.call("Network.enable", json!({})).await;
    cdp.call("Page.enable", json!({})).await;
    cdp.call(
        "Page.navigate",
        json!({"url": format!("{}/swagger/", stack.api)}),
    )
    .await;

    cdp.wait_for(
        "document.querySelector('#operations-identity-whoami') !== null",
        "Swagger UI to render the operations",
    )
    .await;
    // Authorize: open the dialog, type the token the way a person does, submit, close.
    assert_eq!(
        cdp.eval(&click("button.authorize")).await,
        json!(true),
        "the Authorize button exists"
    );
    cdp.wait_for(
        "document.querySelector('.modal-ux input') !== null",
        "the authorization dialog",
    )
    .await;
    let typed = format!(
        "(() => {{ const i = document.querySelector('.modal-ux input'); \
           const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set; \
           set.call(i, {token:?}); i.dispatchEvent(new Event('input', {{ bubbles: true }})); return true; }})()"
    );
    cdp.eval(&typed).await;
    assert_eq!(
        cdp.eval(&click(".modal-ux button.authorize")).await,
        json!(true)
    );
    cdp.wait_for(
        "(() => { const m = document.querySelector('.modal-ux'); return !!m && m.innerText.includes('Authorized') && [...m.querySelectorAll('button')].some(b => b.innerText.trim() === 'Logout'); })()",
        "the dialog to show it is authorized",
    )
    .await;
    cdp.eval(&click(".modal-ux button.btn-done")).await;

    // Try it out on GET /api/whoami.
    cdp.wait_for(
        "document.querySelector('.modal-ux') === null",
        "the dialog to close",
    )
    .await;
    assert_eq!(
        cdp.eval(&click(
            "#operations-identity-whoami .opblock-summary-control"
        ))
        .await,
        json!(true),
        "the operation can be expanded"
    );
    cdp.wait_for(
        "document.querySelector('#operations-identity-whoami .try-out__btn') !== null",
        "Try it out",
    )
    .await;
    cdp.eval(&click("#operations-identity-whoami .try-out__btn"))
        .await;
    cdp.wait_for(
        "document.querySelector('#operations-identity-whoami button.execute') !== null",
        "Execute",
    )
    .await;
    cdp.eval(&click("#operations-identity-whoami button.execute"))
        .await;
    let body = cdp
        .wait_for(
            "(() => { const b = document.querySelector('#operations-identity-whoami .live-responses-table .response-col_description .microlight'); return b ? b.innerText : ''; })()",
            "the response",
        )
        .await;
    let text = body.as_str().expect("response text").to_owned();
    let principal: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("the response shown is JSON: {text}"));
    assert_eq!(principal["kind"], "user");
    assert_eq!(principal["user_id"], stack.alice.as_str());
    let status = cdp.eval("document.querySelector('#operations-identity-whoami .live-responses-table .response .response-col_status')?.innerText").await;
    assert_eq!(status.as_str().map(str::trim), Some("200"));

    let rect = cdp
        .eval("(() => { const r = document.querySelector('#operations-identity-whoami').getBoundingClientRect(); return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: Math.min(r.height, 1400)}; })()")
        .await;
    let clip = json!({"x": rect["x"], "y": rect["y"], "width": rect["width"], "height": rect["height"], "scale": 1});
    let shot = cdp
        .call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
        )
        .await;
    let png = base64_decode(shot["data"].as_str().expect("png"));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    std::fs::write(dir.join("swagger-whoami.png"), png).expect("screenshot");

    let local = |u: &str| {
        u.starts_with(&stack.api)
            || u.starts_with("data:")
            || u.starts_with("about:")
            || u.starts_with("blob:")
    };
    let outside: Vec<&String> = cdp.requests.iter().filter(|u| !local(u)).collect();
    assert!(outside.is_empty(), "requests left the machine: {outside:?}");
    assert!(
        cdp.requests.iter().any(|u| u.ends_with("/openapi.json")),
        "{:?}",
        cdp.requests
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let Some(v) = T.iter().position(|t| *t == c) else {
            continue;
        };
        buf = (buf << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}
