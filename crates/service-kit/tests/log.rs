//! What a client's text can do to a log line: nothing. In both formats a field value stays one
//! field, and a line stays one line.
#![cfg(feature = "server")]

use service_kit::{LogArgs, LogFormat};
use test_support::logs::{LogCapture, pretty_field_names};

/// Values a client may get into a field (a header, a path, a reason).
const FORGERIES: [&str; 5] = [
    "x machine_id=mch_admin",
    "x\" machine_id=mch_admin",
    "x\nINFO forged: machine_id=mch_admin",
    "x\r\u{1b}[2Kmachine_id=mch_admin",
    "",
];

fn logged(format: LogFormat, value: &str) -> String {
    let capture = LogCapture::default();
    let log = LogArgs {
        filter: "info".into(),
        log_format: format,
    };
    tracing::dispatcher::with_default(&service_kit::subscriber(&log, capture.clone()), || {
        let span = tracing::info_span!("request", request_id = %value, method = "GET");
        let _entered = span.enter();
        tracing::info!(detail = %value, reason = ?value, "refused");
        // A message is written as is (code, not clients, writes messages), but on one line.
        tracing::info!("said {value}");
    });
    capture.text()
}

#[test]
fn pretty_lines_keep_a_clients_text_inside_its_field() {
    for value in FORGERIES {
        let text = logged(LogFormat::Pretty, value);
        assert_eq!(text.matches('\n').count(), 2, "{text:?}");
        assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
        let line = text.lines().next().expect("a line");
        assert_eq!(
            pretty_field_names(line),
            ["request_id", "method", "detail", "reason"],
            "{line}"
        );
    }
    // A plain value is written bare, as before.
    let text = logged(LogFormat::Pretty, "req_0123");
    assert!(text.contains("request_id=req_0123 "), "{text}");
    let quoted = logged(LogFormat::Pretty, FORGERIES[0]);
    assert!(
        quoted.contains(r#"request_id="x machine_id=mch_admin""#),
        "{quoted}"
    );
}

#[test]
fn json_lines_keep_a_clients_text_inside_its_field() {
    for value in FORGERIES {
        let text = logged(LogFormat::Json, value);
        assert_eq!(text.matches('\n').count(), 2, "{text:?}");
        let first = text.lines().next().expect("a line");
        let line: serde_json::Value = serde_json::from_str(first).expect("one JSON line");
        assert_eq!(line["fields"]["detail"], value, "{line}");
        assert_eq!(line["span"]["request_id"], value, "{line}");
        assert!(line["fields"].get("machine_id").is_none(), "{line}");
    }
}
