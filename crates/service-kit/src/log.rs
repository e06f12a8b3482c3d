use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span;
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{FormatFields, JsonVisitor, Writer};

/// Logging settings (`#[command(flatten)]` them into a service's own).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log filter, e.g. `info` or `info,jobtracker_api=debug`.
    #[arg(long = "rust-log", env = "RUST_LOG", default_value = LogArgs::DEFAULT_FILTER)]
    pub filter: String,
    /// `json` for machines; anything else (`pretty`) for people.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", value_parser = LogFormat::parse)]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// The filter when `RUST_LOG` is unset or blank.
    pub const DEFAULT_FILTER: &str = "info";
}

impl Default for LogArgs {
    fn default() -> Self {
        Self {
            filter: Self::DEFAULT_FILTER.to_owned(),
            log_format: LogFormat::Pretty,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people.
    #[default]
    Pretty,
    /// One JSON object a line, for machines.
    Json,
}

impl LogFormat {
    /// `json` (any case) is [`Json`](Self::Json); anything else [`Pretty`](Self::Pretty).
    fn parse(s: &str) -> Result<Self, std::convert::Infallible> {
        Ok(if s.trim().eq_ignore_ascii_case("json") {
            Self::Json
        } else {
            Self::Pretty
        })
    }
}

/// Logs to stderr as `log` says; a filter that does not parse falls back to `info`. With the
/// OpenTelemetry SDK's standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set in the environment, spans (as the same filter lets
/// through) are also exported as OpenTelemetry traces over `OTEL_EXPORTER_OTLP_PROTOCOL`
/// (`http/protobuf`, the specification's default, or `grpc`), named by `OTEL_SERVICE_NAME`
/// (default: the program's name), and W3C `traceparent` headers are read and sent
/// ([`trace`](crate::trace)); call it inside the Tokio runtime. A second call (several services
/// in one process, tests) changes nothing. An unsupported protocol leaves traces off, said on
/// stderr.
///
/// The `OTEL_*` variables are read from the environment as every OpenTelemetry SDK reads them,
/// not as settings of the binary: the SDK itself reads more of them (the sampler, headers,
/// timeouts, batch sizes; docs/operations.md, *Traces*).
pub fn init_tracing(log: &LogArgs) {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(program_name);
    let otel = match crate::trace::OtlpSettings::from_lookup(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("traces are off: {e}");
            None
        }
    };
    // With traces on, the spans that exist only for them (target `spans`) are enabled too.
    let extra = if otel.is_some() {
        crate::trace::SPANS_DIRECTIVE
    } else {
        ""
    };
    let text = Some(log.filter.trim())
        .filter(|f| !f.is_empty() && tracing_subscriber::EnvFilter::try_new(f).is_ok())
        .unwrap_or(LogArgs::DEFAULT_FILTER);
    let text = format!("{text}{extra}");
    match filter(&text) {
        Filter::Static(f) => init_with(*f, log.log_format, otel.as_ref(), &service_name),
        Filter::Env(f) => init_with(*f, log.log_format, otel.as_ref(), &service_name),
    }
    if let Some(otel) = &otel {
        tracing::info!(
            collector = %otel.collector_host,
            protocol = otel.protocol.name(),
            service_name,
            "exporting traces (OTLP)"
        );
    }
}

fn init_with<F>(
    filter: F,
    format: LogFormat,
    otel: Option<&crate::trace::OtlpSettings>,
    service_name: &str,
) where
    F: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry().with(filter);
    let otel = crate::trace::layer(otel, service_name);
    let _ = registry
        .with(otel)
        .with(fmt_layer(format, std::io::stderr, colours()))
        .try_init();
}

/// Colours on a terminal only (and not with `NO_COLOR`): in a file they are bytes of noise.
fn colours() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The layer that writes log lines as [`init_tracing`] does, in `format`, to `writer` (with ANSI
/// colours if `ansi`, pretty format only): every
/// field value escaped (JSON strings; in the pretty format a value with spaces, quotes, `=` or
/// control characters is quoted and escaped, so a client's text cannot forge a field or a line).
pub fn fmt_layer<S, W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Json => Box::new(fmt.with_ansi(false).json().fmt_fields(JsonSpanFields)),
        LogFormat::Pretty => Box::new(fmt.with_ansi(ansi).fmt_fields(PrettyFields)),
    }
}

/// What [`init_tracing`] installs for `log` (its filter and format), without traces, writing to
/// `writer`, without colours: for tests that read what a service logs (`tracing::dispatcher::set_default`).
pub fn subscriber<W>(log: &LogArgs, writer: W) -> tracing::Dispatch
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    let text = Some(log.filter.trim())
        .filter(|f| !f.is_empty() && tracing_subscriber::EnvFilter::try_new(f).is_ok())
        .unwrap_or(LogArgs::DEFAULT_FILTER);
    let registry = tracing_subscriber::registry();
    match filter(text) {
        Filter::Static(f) => registry
            .with(*f)
            .with(fmt_layer(log.log_format, writer, false))
            .into(),
        Filter::Env(f) => registry
            .with(*f)
            .with(fmt_layer(log.log_format, writer, false))
            .into(),
    }
}

/// The pretty format's fields: `name=value`, as `tracing_subscriber`'s default writes them, but a
/// value that is empty or holds anything besides printable non-space characters other than `"`,
/// `\` and `=` is written quoted and escaped (`name="a b\nc"`). The message is written as is,
/// its control characters escaped, so it stays on one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrettyFields;

impl<'writer> FormatFields<'writer> for PrettyFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PrettyVisitor {
            writer,
            first: true,
            scratch: String::new(),
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PrettyVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    scratch: String,
    result: fmt::Result,
}

/// Written bare in the pretty format: anything else is quoted.
fn bare(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '\\' | '='))
}

impl PrettyVisitor<'_> {
    fn write(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        self.scratch.clear();
        if self.scratch.write_fmt(value).is_err() {
            self.result = Err(fmt::Error);
            return;
        }
        let separator = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = if name == "message" {
            let mut line = String::with_capacity(self.scratch.len());
            for c in self.scratch.chars() {
                if c.is_control() {
                    line.extend(c.escape_default());
                } else {
                    line.push(c);
                }
            }
            write!(self.writer, "{separator}{line}")
        } else if bare(&self.scratch) {
            write!(self.writer, "{separator}{name}={}", self.scratch)
        } else {
            write!(self.writer, "{separator}{name}={:?}", self.scratch)
        };
    }
}

impl Visit for PrettyVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field.name(), format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        // `log` records' metadata, already on the line (as the default formatter skips it).
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.write(name, format_args!("{value:?}"));
    }
}

/// The running program's file name, for the default `OTEL_SERVICE_NAME`.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_stem)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown_service".to_owned())
}

/// The filter `RUST_LOG` asks for.
enum Filter {
    /// Only `level` and `target=level` directives: `Targets`, which decides per call site once.
    /// `EnvFilter` keeps the same directives in the same structure, but also takes a shared lock
    /// on every span's creation, enter, exit and close (for span directives there are none of),
    /// and the API makes a span per request.
    Static(Box<tracing_subscriber::filter::Targets>),
    /// Anything else (span and field directives, …): `EnvFilter`.
    Env(Box<tracing_subscriber::EnvFilter>),
}

fn filter(text: &str) -> Filter {
    use tracing_subscriber::filter::LevelFilter;
    let level = |l: &str| l.parse::<LevelFilter>().is_ok();
    let target = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':' || b == b'-')
    };
    let simple = text.split(',').all(|d| match d.split_once('=') {
        Some((t, l)) => target(t) && level(l),
        None => level(d),
    });
    match text.parse() {
        Ok(targets) if simple => Filter::Static(Box::new(targets)),
        _ => Filter::Env(Box::new(tracing_subscriber::EnvFilter::new(text))),
    }
}

/// A span's fields as the JSON formatter keeps them (a JSON object in a string, keys sorted, the
/// last of a repeated name winning): what `tracing_subscriber`'s `JsonFields` writes, written
/// straight into the span's buffer instead of through a map of `serde_json::Value`s and a
/// `String` per field. A span is made for every request, and its fields are formatted when it is
/// made, whether a line is ever logged in it or not.
///
/// Strings and `Display`/`Debug` values (what spans here carry) take the direct path; a span with
/// numbers, booleans, bytes or more than [`FAST_FIELDS`] fields is formatted by `JsonFields`'
/// own visitor, as before.
#[derive(Debug, Clone, Copy, Default)]
struct JsonSpanFields;

/// Most fields [`JsonSpanFields`] sorts on the stack.
const FAST_FIELDS: usize = 8;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        // The thread's scratch buffers; fresh ones if they are in use (a field's `Debug` that
        // makes a span of its own) or already gone (a thread's last spans, at its exit).
        let pooled = SCRATCH.try_with(|cell| {
            let Ok(mut buffers) = cell.try_borrow_mut() else {
                return None;
            };
            let (scratch, out) = &mut *buffers;
            let written = json_fields(scratch, out, &mut writer, &fields);
            // A span with a huge field (a long path) does not keep its size here for good.
            for buffer in [scratch, out] {
                if buffer.capacity() > SCRATCH_KEPT {
                    *buffer = String::new();
                }
            }
            Some(written)
        });
        match pooled {
            Ok(Some(written)) => written,
            _ => json_fields(&mut String::new(), &mut String::new(), &mut writer, &fields),
        }
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &span::Record<'_>,
    ) -> fmt::Result {
        if current.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        // Fields recorded after the span was made (rare): merged as `JsonFields` merges them.
        let mut map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&current.fields).map_err(|_| fmt::Error)?;
        let mut new = String::new();
        self.format_fields(Writer::new(&mut new), fields)?;
        let new: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&new).map_err(|_| fmt::Error)?;
        map.extend(new);
        let sorted: std::collections::BTreeMap<_, _> = map.into_iter().collect();
        current.fields = serde_json::to_string(&sorted).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

/// `fields` as a JSON object into `writer` (see [`JsonSpanFields`]): the values collected in
/// `scratch`, the object built in `out`, then written at once.
fn json_fields<R: RecordFields>(
    scratch: &mut String,
    out: &mut String,
    writer: &mut Writer<'_>,
    fields: &R,
) -> fmt::Result {
    scratch.clear();
    out.clear();
    let mut fast = Fast {
        scratch,
        entries: [("", 0, 0); FAST_FIELDS],
        len: 0,
        slow: false,
    };
    fields.record(&mut fast);
    if fast.slow {
        let mut v = JsonVisitor::new(writer);
        fields.record(&mut v);
        return v.finish();
    }
    let (entries, text) = (&mut fast.entries[..fast.len], &fast.scratch[..]);
    // Stable: of equal names the later stays later, and is the one kept below.
    entries.sort_by_key(|e| e.0);
    out.push('{');
    let mut first = true;
    for (i, (name, start, end)) in entries.iter().enumerate() {
        if entries.get(i + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        Escape(out).write_str(name)?;
        out.push_str("\":");
        out.push_str(&text[*start..*end]);
    }
    out.push('}');
    // One write: the span's own buffer starts empty, and grows once, to the right size.
    writer.write_str(out)
}

/// Bytes of scratch a thread keeps between spans.
const SCRATCH_KEPT: usize = 16 * 1024;

thread_local! {
    /// Where [`JsonSpanFields`] writes the values before sorting them, and then the object:
    /// reused, never freed.
    static SCRATCH: std::cell::RefCell<(String, String)> =
        const { std::cell::RefCell::new((String::new(), String::new())) };
}

/// Collects string and `Debug` fields as JSON strings; anything else sets `slow`.
struct Fast<'a> {
    scratch: &'a mut String,
    /// Name, and where its JSON value lies in `scratch`.
    entries: [(&'static str, usize, usize); FAST_FIELDS],
    len: usize,
    slow: bool,
}

impl Fast<'_> {
    fn push(&mut self, name: &'static str, value: impl FnOnce(&mut Escape<'_>) -> fmt::Result) {
        if self.slow || self.len == FAST_FIELDS {
            self.slow = true;
            return;
        }
        let start = self.scratch.len();
        self.scratch.push('"');
        if value(&mut Escape(&mut *self.scratch)).is_err() {
            self.slow = true;
            return;
        }
        self.scratch.push('"');
        self.entries[self.len] = (name, start, self.scratch.len());
        self.len += 1;
    }
}

impl Visit for Fast<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field.name(), |w| w.write_str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // As `JsonVisitor`: a raw identifier's `r#` is dropped from the name.
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.push(name, |w| write!(w, "{value:?}"));
    }

    fn record_f64(&mut self, _: &Field, _: f64) {
        self.slow = true;
    }
    fn record_i64(&mut self, _: &Field, _: i64) {
        self.slow = true;
    }
    fn record_u64(&mut self, _: &Field, _: u64) {
        self.slow = true;
    }
    fn record_bool(&mut self, _: &Field, _: bool) {
        self.slow = true;
    }
    fn record_bytes(&mut self, _: &Field, _: &[u8]) {
        self.slow = true;
    }
}

/// Writes through to `0` with JSON string escaping (as `serde_json`: `"`, `\\` and control
/// characters).
struct Escape<'a>(&'a mut dyn fmt::Write);

impl fmt::Write for Escape<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest
            .bytes()
            .position(|b| b == b'"' || b == b'\\' || b < 0x20)
        {
            self.0.write_str(&rest[..i])?;
            match rest.as_bytes()[i] {
                b'"' => self.0.write_str("\\\""),
                b'\\' => self.0.write_str("\\\\"),
                b'\n' => self.0.write_str("\\n"),
                b'\r' => self.0.write_str("\\r"),
                b'\t' => self.0.write_str("\\t"),
                0x08 => self.0.write_str("\\b"),
                0x0c => self.0.write_str("\\f"),
                b => write!(self.0, "\\u{b:04x}"),
            }?;
            rest = &rest[i + 1..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_filters_decide_as_env_filter_does() {
        use tracing::Level;
        use tracing_subscriber::layer::SubscriberExt;
        // What `tracing::enabled!` says for a few targets and levels under `subscriber`.
        fn decisions(subscriber: impl tracing::Subscriber + Send + Sync) -> Vec<bool> {
            tracing::subscriber::with_default(subscriber, || {
                vec![
                    tracing::enabled!(target: "jobtracker_api", Level::INFO),
                    tracing::enabled!(target: "jobtracker_api", Level::DEBUG),
                    tracing::enabled!(target: "jobtracker_api::http", Level::DEBUG),
                    tracing::enabled!(target: "jobtracker_api::http", Level::TRACE),
                    tracing::enabled!(target: "m2m_core::verify", Level::WARN),
                    tracing::enabled!(target: "m2m_core::verify", Level::INFO),
                    tracing::enabled!(target: "hyper", Level::ERROR),
                    tracing::enabled!(target: "hyper", Level::INFO),
                    tracing::enabled!(target: "other", Level::TRACE),
                    tracing::enabled!(target: "other", Level::INFO),
                ]
            })
        }
        for text in [
            "info",
            "warn",
            "off",
            "TRACE",
            "warn,jobtracker_api=debug",
            "debug,hyper=off",
            "jobtracker_api::http=trace,m2m_core=warn",
            "m2m_core=info",
            "error,jobtracker_api=info,jobtracker_api::http=trace",
        ] {
            let Filter::Static(targets) = filter(text) else {
                panic!("{text} is a simple filter");
            };
            let env = tracing_subscriber::EnvFilter::new(text);
            assert_eq!(
                decisions(tracing_subscriber::registry().with(*targets)),
                decisions(tracing_subscriber::registry().with(env)),
                "{text}"
            );
        }
        for text in [
            "info,[request]=debug",
            "jobtracker_api[{request_id}]=debug",
            "info, hyper=off",
            "hyper",
        ] {
            assert!(matches!(filter(text), Filter::Env(_)), "{text}");
        }
    }
    use tracing_subscriber::fmt::format::JsonFields;

    /// What `JsonFields` and [`JsonSpanFields`] make of the fields of `span`.
    fn both(make: impl Fn() -> tracing::Span) -> (String, String) {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Grab(Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Grab {
            fn on_new_span(
                &self,
                attrs: &span::Attributes<'_>,
                _: &span::Id,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let mut a = String::new();
                JsonFields::new()
                    .format_fields(Writer::new(&mut a), attrs)
                    .expect("JsonFields");
                let mut b = String::new();
                JsonSpanFields
                    .format_fields(Writer::new(&mut b), attrs)
                    .expect("JsonSpanFields");
                self.0.lock().expect("lock").extend([a, b]);
            }
        }
        use tracing_subscriber::layer::SubscriberExt;
        let grab = Grab::default();
        let subscriber = tracing_subscriber::registry().with(grab.clone());
        tracing::subscriber::with_default(subscriber, || drop(make()));
        let got = grab.0.lock().expect("lock").clone();
        (got[0].clone(), got[1].clone())
    }

    #[test]
    fn span_fields_are_what_json_fields_writes() {
        let odd = "quote \" backslash \\ newline \n tab \t bell \u{7} del \u{7f} é ✓";
        let cases: Vec<Box<dyn Fn() -> tracing::Span>> = vec![
            Box::new(
                || tracing::info_span!("request", request_id = %"req_1", method = %"GET", path = %"/api/whoami"),
            ),
            Box::new(move || tracing::info_span!("odd", zeta = odd, alpha = ?odd, r#type = %odd)),
            Box::new(|| {
                tracing::info_span!(
                    "numbers",
                    n = 3u64,
                    i = -2i64,
                    f = 1.5f64,
                    b = true,
                    s = "x"
                )
            }),
            Box::new(|| tracing::info_span!("none")),
            Box::new(|| {
                tracing::info_span!(
                    "many",
                    a = "1",
                    b = "2",
                    c = "3",
                    d = "4",
                    e = "5",
                    f = "6",
                    g = "7",
                    h = "8",
                    i = "9"
                )
            }),
        ];
        for make in cases {
            let (expected, got) = both(make);
            assert_eq!(got, expected);
            assert!(
                serde_json::from_str::<serde_json::Value>(&got).is_ok(),
                "{got}"
            );
        }
    }

    #[test]
    fn span_fields_are_formatted_while_the_scratch_is_in_use() {
        // As when a field's `Debug` has span fields formatted while the outer span's are: the
        // thread's buffers are borrowed, so fresh ones serve (no double borrow, no panic).
        SCRATCH.with(|cell| {
            let _held = cell.borrow_mut();
            let (expected, got) =
                both(|| tracing::info_span!("request", request_id = %"req_1", path = %"/a\"b"));
            assert_eq!(got, expected);
        });
    }

    #[test]
    fn a_huge_field_does_not_keep_its_size_in_the_scratch() {
        let path = "x".repeat(4 * SCRATCH_KEPT);
        for slow in [false, true] {
            let (expected, got) = both(|| {
                if slow {
                    tracing::info_span!("request", path = %path, n = 1u64)
                } else {
                    tracing::info_span!("request", path = %path)
                }
            });
            assert_eq!(got, expected);
            SCRATCH.with(|cell| {
                let (scratch, out) = &*cell.borrow();
                assert!(
                    scratch.capacity() <= SCRATCH_KEPT && out.capacity() <= SCRATCH_KEPT,
                    "slow path {slow}: {} and {} bytes kept",
                    scratch.capacity(),
                    out.capacity()
                );
            });
        }
    }
}
