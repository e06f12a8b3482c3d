use clerk_mock::{ClerkMock, MachineInfo};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn call(
    mock: &ClerkMock,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("{}{}", mock.uri(), path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("mock reachable");
    let status = resp.status();
    let headers = resp.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

pub fn demo_machines(mock: &ClerkMock) -> (MachineInfo, MachineInfo, MachineInfo) {
    (
        mock.machine_by_name("JobTracker.API").expect("api machine"),
        mock.machine_by_name("CandidateRepresenter.Bot")
            .expect("representer"),
        mock.machine_by_name("JobApplier.Bot").expect("applier"),
    )
}

pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().unwrap_or_default()
}
