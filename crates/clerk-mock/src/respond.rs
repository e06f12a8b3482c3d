//! One request's answer — routing, counting, outage, injected faults and latency — shared by
//! wiremock's responder and [`ClerkMock::respond`], so the two ways in cannot drift.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use wiremock::{Request, Respond, ResponseTemplate};

use crate::state::{self, Fault, State};
use crate::{ClerkMock, lock};

/// The mock's answer to one request, as [`ClerkMock::respond`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status (an injected fault may set any `u16`).
    pub status: u16,
    /// `content-type`, `date` (on the mock's clock) and any route-specific header such as
    /// `retry-after`.
    pub headers: http::HeaderMap,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// What wiremock keeps of the requests it served since the last [`ClerkMock::compact`]: its
/// mounted mock holds a full copy of each (body included) even with recording disabled.
#[derive(Debug, Default)]
pub(crate) struct Retained {
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Retained {
    fn add(&self, body: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(u64::try_from(body).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
    }
}

/// Splits `target` (path and optional `?query`, as on a request line) the way wiremock does,
/// through a URL parse (dot segments resolved, query decoded); `None` if it is no URL path.
pub(crate) fn split_target(target: &str) -> Option<(String, Vec<(String, String)>)> {
    if !target.starts_with('/') {
        return None;
    }
    let url = url::Url::parse(&format!("http://localhost{target}")).ok()?;
    let query = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Some((url.path().to_owned(), query))
}

/// Answers one request and says how long to hold the answer back (latency, `Delay` faults).
fn answer(
    state: &Mutex<State>,
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &http::HeaderMap,
    body: &[u8],
) -> (Answer, Duration) {
    let mut state = lock(state);
    // Faults are matched after routing so they can target one endpoint.
    let (endpoint, _) = state::route(method, path);
    let mut delay = state.latency;
    let fault = state
        .faults
        .iter_mut()
        .find(|r| r.remaining > 0 && r.endpoint.is_none_or(|e| e == endpoint))
        .map(|r| {
            r.remaining -= 1;
            r.fault.clone()
        });
    state.faults.retain(|r| r.remaining > 0);
    let (endpoint, reply) = match fault {
        // Clerk's rate limiter refuses before the request acts: a client may retry a 429
        // without doing the thing twice.
        Some(Fault::Status {
            status: 429,
            retry_after,
        }) => {
            *state.calls.entry(endpoint).or_insert(0) += 1;
            (endpoint, state::fault_reply(429, retry_after))
        }
        // Any other status replaces the answer of a request that did act (a reply lost on the
        // way back), which is what makes retrying a write unsafe.
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let (endpoint, _) = state.handle(method, path, query, headers, body);
            (endpoint, state::fault_reply(status, retry_after))
        }
        Some(Fault::Delay(d)) => {
            delay += d;
            state.handle(method, path, query, headers, body)
        }
        None => state.handle(method, path, query, headers, body),
    };
    tracing::debug!(?endpoint, status = reply.status, "clerk-mock answered");
    let now = UNIX_EPOCH + Duration::from_millis(u64::try_from(state.now_ms()).unwrap_or(0));
    drop(state);
    let mut out = http::HeaderMap::new();
    out.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(date) = http::HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        out.insert(http::header::DATE, date);
    }
    for (name, value) in reply.headers {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            out.insert(name, value);
        }
    }
    let answer = Answer {
        status: reply.status,
        headers: out,
        body: serde_json::to_vec(&reply.body).unwrap_or_default(),
    };
    (answer, delay)
}

/// wiremock's responder: the mounted mock behind [`ClerkMock::uri`].
pub(crate) struct Handler {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) retained: Arc<Retained>,
}

impl Respond for Handler {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        // wiremock pushes this request onto its mounted mock's list once we return.
        self.retained.add(request.body.len());
        let query: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let (answer, delay) = answer(
            &self.state,
            request.method.as_str(),
            request.url.path(),
            &query,
            &request.headers,
            &request.body,
        );
        let headers = answer.headers.iter().map(|(k, v)| (k.clone(), v.clone()));
        let mut template = ResponseTemplate::new(answer.status)
            .append_headers(headers)
            .set_body_bytes(answer.body);
        if !delay.is_zero() {
            template = template.set_delay(delay);
        }
        template
    }
}

impl ClerkMock {
    /// Answers one request without going through wiremock's server, exactly as a request to
    /// [`uri`](Self::uri) would be answered (counted, outage, injected faults, latency awaited
    /// here), but keeping nothing of it: wiremock keeps a copy of every request it serves.
    /// For servers that put the mock behind their own HTTP front (the `clerk-mock` service).
    /// `target` is the path and optional `?query`, as on a request line; one that is no URL path
    /// gets 400 and is not counted.
    pub async fn respond(
        &self,
        method: &str,
        target: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Answer {
        let Some((path, query)) = split_target(target) else {
            let reply = state::error(
                400,
                "bad_request",
                "Bad Request",
                "The request target is not a URL path",
            );
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            return Answer {
                status: reply.status,
                headers,
                body: serde_json::to_vec(&reply.body).unwrap_or_default(),
            };
        };
        let (answer, delay) = answer(&self.state, method, &path, &query, headers, body);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        answer
    }

    /// Requests wiremock has served (and so keeps a copy of) since the mock started or was last
    /// [`compact`](Self::compact)ed. [`respond`](Self::respond) never adds to it.
    pub fn retained_requests(&self) -> u64 {
        self.retained.requests()
    }

    /// Body bytes of those requests.
    pub fn retained_body_bytes(&self) -> u64 {
        self.retained.bytes()
    }
}
