//! Reading a service's `/metrics` the way a Prometheus server does.

use prometheus_parse::{Sample, Scrape, Value};

/// A parsed `/metrics` answer.
#[derive(Debug)]
pub struct Metrics {
    /// The text.
    pub text: String,
    /// What `prometheus-parse` read from it.
    pub scrape: Scrape,
}

impl Metrics {
    /// Parses `text` with `prometheus-parse` and checks that every sample line was understood
    /// (the parser skips lines it cannot read, so counting them is what makes this strict).
    /// Panics otherwise.
    pub fn parse(text: &str) -> Self {
        let lines = text.lines().map(|l| Ok(shield_braces(l)));
        let scrape = Scrape::parse(lines).expect("/metrics parses");
        let sample_lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        let parsed: usize = scrape
            .samples
            .iter()
            .map(|s| match &s.value {
                // One sample per bucket line; `_sum` and `_count` are samples of their own.
                Value::Histogram(b) => b.len(),
                _ => 1,
            })
            .sum();
        assert_eq!(parsed, sample_lines, "lines not understood in:\n{text}");
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let kind = line.rsplit(' ').next().unwrap_or_default();
            assert!(
                matches!(kind, "counter" | "gauge" | "histogram"),
                "unexpected type line {line:?}"
            );
        }
        Self {
            text: text.to_owned(),
            scrape,
        }
    }

    /// The first sample of `metric` carrying every label of `labels`.
    pub fn sample(&self, metric: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && has_labels(s, labels))
    }

    /// The value of a counter or gauge sample (see [`sample`](Self::sample)); `None` when absent
    /// or of another kind.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.sample(metric, labels)?.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        }
    }

    /// The sum of a counter's samples carrying `labels`.
    pub fn sum(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == metric && has_labels(s, labels))
            .filter_map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) => Some(v),
                _ => None,
            })
            .sum()
    }

    /// What every bot's `/metrics` shows after one pass that minted a token: its own counters
    /// `<prefix>_<name>_total` at 0, one mint and one successful Clerk create for `bot`, one
    /// request `(method, route, status)` counted, and the latency histogram declared.
    pub fn assert_bot_pass(
        &self,
        prefix: &str,
        names: &[&str],
        bot: &str,
        request: (&str, &str, &str),
    ) {
        let text = &self.text;
        for name in names {
            assert_eq!(
                self.value(&format!("{prefix}_{name}_total"), &[]),
                Some(0.0),
                "{text}"
            );
        }
        assert_eq!(
            self.value("m2m_token_mints_total", &[("bot", bot)]),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            self.value(
                "clerk_calls_total",
                &[("operation", "create"), ("outcome", "ok")]
            ),
            Some(1.0),
            "{text}"
        );
        let (method, route, status) = request;
        assert_eq!(
            self.value(
                "http_requests_total",
                &[("method", method), ("route", route), ("status", status)]
            ),
            Some(1.0),
            "{text}"
        );
        assert!(
            self.declares("http_request_duration_seconds", "histogram"),
            "{text}"
        );
    }

    /// Whether a family of this name and type was declared (`# TYPE name kind`).
    pub fn declares(&self, name: &str, kind: &str) -> bool {
        self.text
            .lines()
            .any(|l| l == format!("# TYPE {name} {kind}"))
    }
}

fn has_labels(sample: &Sample, labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .all(|(k, v)| sample.labels.get(k).map(unshield) == Some((*v).to_owned()))
}

/// Stand-ins for `{` and `}` inside quoted label values, which the text format allows (route
/// templates: `route="/api/users/{user_id}"`) but prometheus-parse 0.2 cannot read: its sample
/// pattern takes the labels as `[^}]+`, so such a line would be skipped. Private-use characters,
/// so no real value is confused with them.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

fn shield_braces(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        out.push(match c {
            '{' if quoted => OPEN,
            '}' if quoted => CLOSE,
            c => c,
        });
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' && !line.starts_with('#') {
            quoted = !quoted;
        }
    }
    out
}

fn unshield(value: &str) -> String {
    value.replace(OPEN, "{").replace(CLOSE, "}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_and_escapes_in_label_values_are_read_back() {
        let m = Metrics::parse(
            "# TYPE http_requests_total counter\n\
             http_requests_total{route=\"/u/{id}\",odd=\"a\\\"}\"} 3\n",
        );
        assert_eq!(
            m.value("http_requests_total", &[("route", "/u/{id}")]),
            Some(3.0)
        );
    }

    #[test]
    #[should_panic(expected = "lines not understood")]
    fn a_line_that_does_not_parse_fails() {
        Metrics::parse("# TYPE up gauge\nup{a=\"1\" 1\n");
    }
}
