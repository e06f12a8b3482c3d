//! Swagger UI in headless Chromium, driven over WebDriver (`thirtyfour` talking to Debian's
//! `chromedriver`, which the test starts itself): served offline under the API's
//! Content-Security-Policy, authorised first with a user's session token and then with the job
//! applier's M2M token, "Try it out" → Execute on `GET /api/whoami` shows each principal, and no
//! request leaves 127.0.0.1.
//!
//! A harness of its own (`harness = false`, libtest-mimic): whether Chromium and chromedriver are
//! installed is known only when the test runs, and libtest cannot skip at run time, so without
//! them the test reports `ignored` with the reason (which binary, which apt line) in `cargo
//! test`'s own output and counts, instead of passing having done nothing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::Stack;
use jobtracker_api_testing::Backend;
use libtest_mimic::{Completion, Trial};
use serde_json::{Value, json};
use thirtyfour::ChromeCapabilities;
use thirtyfour::prelude::*;

/// The chromedriver process and the Chromium profile directory; both go away on drop.
struct Chromedriver {
    child: Child,
    profile: PathBuf,
    url: String,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The first of `names` found on `PATH` that runs `--version`, as a full path.
fn installed(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .filter(|p| {
                Command::new(p)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
    })
}

/// Starts chromedriver on a port of its choosing (it prints the port) for this test alone.
fn start_chromedriver(binary: &Path) -> Chromedriver {
    let mut child = Command::new(binary)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let stdout = child.stdout.take().expect("stdout");
    let profile = std::env::temp_dir().join(format!("chromium-profile-{}", std::process::id()));
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    break rest.trim().trim_end_matches('.').to_owned();
                }
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver exited before saying which port it listens on");
            }
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Chromedriver {
        child,
        profile,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Headless Chromium that can reach nothing but 127.0.0.1: every other host name resolves to
/// "not found", and the background services that phone home are off.
fn capabilities(chromium: &Path, profile: &Path) -> ChromeCapabilities {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(&chromium.to_string_lossy())
        .expect("binary");
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1280,1600",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ] {
        caps.add_arg(arg).expect("arg");
    }
    caps.add_arg(&format!("--user-data-dir={}", profile.display()))
        .expect("profile");
    caps
}

/// Runs before any script of every document: records Content-Security-Policy violations.
const RECORD_CSP_VIOLATIONS: &str = "window.__cspViolations = []; \
    document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(\
      { directive: e.effectiveDirective, blocked: e.blockedURI, disposition: e.disposition }), true);";

async fn eval(driver: &WebDriver, js: &str) -> Value {
    driver
        .execute(js, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{js}"))
        .json()
        .clone()
}

/// Polls `js` (a function body) until it returns something other than null/false/"".
async fn wait_for(driver: &WebDriver, js: &str, what: &str) -> Value {
    let started = Instant::now();
    loop {
        let v = eval(driver, js).await;
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

async fn click(driver: &WebDriver, css: &str) {
    driver
        .query(By::Css(css))
        .first()
        .await
        .unwrap_or_else(|e| panic!("{css} is on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{css} can be clicked: {e}"));
}

/// Opens the Authorize dialog, logs out whoever is authorized, types `token` into the bearer
/// field the way a person does, submits and closes the dialog.
async fn authorize(driver: &WebDriver, token: &str) {
    click(driver, ".auth-wrapper button.authorize").await;
    wait_for(
        driver,
        "return document.querySelector('.modal-ux') !== null",
        "the authorization dialog",
    )
    .await;
    let logout = eval(
        driver,
        "const b = [...document.querySelectorAll('.modal-ux button')].find(b => b.innerText.trim() === 'Logout'); \
         if (b) { b.click(); return true; } return false;",
    )
    .await;
    if logout == json!(true) {
        wait_for(
            driver,
            "return document.querySelector('.modal-ux input') !== null",
            "the bearer field after logging out",
        )
        .await;
    }
    let input = driver
        .query(By::Css(".modal-ux input"))
        .first()
        .await
        .expect("the bearer field");
    input.send_keys(token).await.expect("type the token");
    click(driver, ".modal-ux .auth-btn-wrapper button.authorize").await;
    wait_for(
        driver,
        "const m = document.querySelector('.modal-ux'); \
         return !!m && m.innerText.includes('Authorized') \
           && [...m.querySelectorAll('button')].some(b => b.innerText.trim() === 'Logout');",
        "the dialog to show it is authorized",
    )
    .await;
    click(driver, ".modal-ux button.btn-done").await;
    wait_for(
        driver,
        "return document.querySelector('.modal-ux') === null",
        "the dialog to close",
    )
    .await;
}

const WHOAMI: &str = "#operations-identity-whoami";

/// Clicks Execute on the expanded `GET /api/whoami` and returns (status, body) as shown.
async fn execute_whoami(driver: &WebDriver) -> (String, Value) {
    // A response already on screen is cleared first so the one read below is this request's.
    eval(
        driver,
        &format!(
            "const c = document.querySelector('{WHOAMI} button.btn-clear'); if (c) c.click(); return true;"
        ),
    )
    .await;
    wait_for(
        driver,
        &format!("return document.querySelector('{WHOAMI} .live-responses-table') === null"),
        "the previous response to clear",
    )
    .await;
    click(driver, &format!("{WHOAMI} button.execute")).await;
    let text = wait_for(
        driver,
        &format!(
            "const b = document.querySelector('{WHOAMI} .live-responses-table .response-col_description .microlight'); \
             return b ? b.innerText : '';"
        ),
        "the response",
    )
    .await;
    let text = text.as_str().expect("response text");
    let body: Value =
        serde_json::from_str(text).unwrap_or_else(|_| panic!("the response shown is JSON: {text}"));
    let status = eval(
        driver,
        &format!(
            "return document.querySelector('{WHOAMI} .live-responses-table .response .response-col_status')?.innerText"
        ),
    )
    .await;
    (status.as_str().unwrap_or_default().trim().to_owned(), body)
}

async fn screenshot(driver: &WebDriver, file: &str) {
    let png = driver
        .find(By::Css(WHOAMI))
        .await
        .expect("operation")
        .screenshot_as_png()
        .await
        .expect("screenshot");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    std::fs::write(dir.join(file), png).expect("screenshot");
}

const NAME: &str = "swagger_ui_authorizes_and_runs_whoami_in_a_real_browser";

fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let trial = Trial::ignorable_test(NAME, || {
        let (chromium, chromedriver) = match browser() {
            Ok(found) => found,
            Err(missing) if std::env::var_os("REQUIRE_BROWSER_TEST").is_some() => {
                return Err(format!("REQUIRE_BROWSER_TEST is set but {missing}").into());
            }
            Err(missing) => return Ok(Completion::ignored_with(missing)),
        };
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("a Tokio runtime: {e}"))?
            .block_on(swagger_ui_authorizes_and_runs_whoami_in_a_real_browser(
                &chromium,
                &chromedriver,
            ));
        Ok(Completion::Completed)
    });
    libtest_mimic::run(&args, vec![trial]).exit_code()
}

/// Chromium and chromedriver, or which of them is missing and the apt line that installs it.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = installed(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = installed(&["chromedriver"]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Ok((chromium, chromedriver)),
        (chromium, chromedriver) => {
            // Debian's package names; chromium-driver matches chromium's version.
            let (missing, packages): (Vec<_>, Vec<_>) = [
                (chromium.is_none(), "chromium", "chromium"),
                (chromedriver.is_none(), "chromedriver", "chromium-driver"),
            ]
            .into_iter()
            .filter_map(|(absent, binary, package)| absent.then_some((binary, package)))
            .unzip();
            Err(format!(
                "no {} on PATH: `apt-get install {}` to run it; .ci/run does",
                missing.join(" and "),
                packages.join(" ")
            ))
        }
    }
}

async fn swagger_ui_authorizes_and_runs_whoami_in_a_real_browser(
    chromium: &Path,
    chromedriver: &Path,
) {
    let stack = Stack::start(Backend::Sqlite)
        .await
        .expect("a stack on SQLite");
    let user_token = stack.user_token(&stack.alice);
    let applier = stack.machine_id("JobApplier.Bot");
    let machine_token = stack.mock.mint(&applier, &json!({}))["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let server = start_chromedriver(chromedriver);
    let driver = WebDriver::new(&server.url, capabilities(chromium, &server.profile))
        .await
        .expect("a Chromium session through chromedriver");
    driver
        .cdp()
        .page()
        .add_script_to_evaluate_on_new_document(RECORD_CSP_VIOLATIONS)
        .await
        .expect("install the CSP violation recorder");
    driver
        .goto(format!("{}/swagger/", stack.api))
        .await
        .expect("open Swagger UI");
    wait_for(
        &driver,
        &format!("return document.querySelector('{WHOAMI}') !== null"),
        "Swagger UI to render the operations",
    )
    .await;

    // The page is under the API's policy, exactly.
    let policy = eval(
        &driver,
        "return fetch(location.href).then(r => r.headers.get('content-security-policy'));",
    )
    .await;
    assert_eq!(
        policy,
        json!(jobtracker_api::http::CONTENT_SECURITY_POLICY),
        "Swagger UI is served with the API's Content-Security-Policy"
    );

    // A user: Authorize, Try it out, Execute.
    authorize(&driver, &user_token).await;
    click(&driver, &format!("{WHOAMI} .opblock-summary-control")).await;
    click(&driver, &format!("{WHOAMI} .try-out__btn")).await;
    let (status, principal) = execute_whoami(&driver).await;
    assert_eq!(status, "200");
    assert_eq!(principal["kind"], "user", "{principal}");
    assert_eq!(principal["user_id"], stack.alice.as_str());
    screenshot(&driver, "swagger-whoami.png").await;

    // The job applier's M2M token in the same dialog.
    authorize(&driver, &machine_token).await;
    let (status, principal) = execute_whoami(&driver).await;
    assert_eq!(status, "200");
    assert_eq!(principal["kind"], "machine", "{principal}");
    assert_eq!(principal["machine_id"], applier.as_str());
    assert_eq!(principal["role"], "job-applier");
    screenshot(&driver, "swagger-whoami-machine.png").await;

    // Swagger UI did all that without tripping the policy (recorded from before its first
    // script ran).
    let violations = eval(&driver, "return window.__cspViolations ?? null;").await;
    assert_eq!(
        violations,
        json!([]),
        "the recorder is installed and Swagger UI caused no CSP violation"
    );

    // Every document and resource the page loaded came from the API on 127.0.0.1.
    let loaded = eval(
        &driver,
        "return [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].map(e => e.name);",
    )
    .await;
    let loaded: Vec<String> = serde_json::from_value(loaded).expect("urls");
    let origin = format!("{}/", stack.api);
    let outside: Vec<&String> = loaded
        .iter()
        .filter(|u| !(u.starts_with(&origin) || u.starts_with("data:") || u.starts_with("blob:")))
        .collect();
    assert!(outside.is_empty(), "requests left the machine: {outside:?}");
    for expected in ["/swagger/", "/openapi.json", "/api/whoami"] {
        assert!(
            loaded.iter().any(|u| u.contains(expected)),
            "{expected} among {loaded:?}"
        );
    }

    // The policy is enforced, not just sent: eval and an injected inline script are refused,
    // and the recorder sees both.
    // (From a timer: the driver's own call frame is exempt from the page's policy.)
    let evaluated = driver
        .execute_async(
            "const done = arguments[0]; setTimeout(() => { \
               try { done('evaluated ' + eval('1')); } catch (e) { done(e.name + ': ' + e.message); } }, 0);",
            Vec::new(),
        )
        .await
        .expect("script");
    let evaluated = evaluated.json().as_str().unwrap_or_default();
    assert!(evaluated.starts_with("EvalError"), "{evaluated}");
    let inline = eval(
        &driver,
        "const s = document.createElement('script'); s.textContent = 'window.__inlineRan = true;'; \
         document.body.appendChild(s); return window.__inlineRan === true;",
    )
    .await;
    assert_eq!(
        inline,
        json!(false),
        "an injected inline script must not run"
    );
    let violations = wait_for(
        &driver,
        "const v = window.__cspViolations; return v.length >= 2 ? v : null;",
        "the recorder to see the refused eval and inline script",
    )
    .await;
    let seen = |directive: &str, blocked: &str| {
        violations.as_array().into_iter().flatten().any(|v| {
            v["directive"] == directive && v["blocked"] == blocked && v["disposition"] == "enforce"
        })
    };
    assert!(seen("script-src", "eval"), "{violations}");
    assert!(seen("script-src-elem", "inline"), "{violations}");

    // The resolver refuses every name but 127.0.0.1 (even localhost, which would reach the API).
    let port = stack.api.rsplit(':').next().expect("port");
    let refused = driver
        .goto(format!("http://localhost:{port}/swagger/"))
        .await
        .expect_err("localhost must not resolve");
    assert!(
        refused.to_string().contains("ERR_NAME_NOT_RESOLVED"),
        "{refused}"
    );

    driver.quit().await.expect("end the session");
}
