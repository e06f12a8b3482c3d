//! Capturing what a service logs: a `MakeWriter` into a shared buffer, for
//! `service_kit::subscriber(&log_args, capture.clone())`.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

/// Every byte written through it, kept in memory.
#[derive(Clone, Debug, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What was written (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The names of the fields on a pretty-format line (`name=value` outside quotes), in order: what
/// a reader (or a log parser) takes the line to say. A quoted value's `\"` does not end it.
pub fn pretty_field_names(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let (mut quoted, mut escaped) = (false, false);
    let mut word = String::new();
    for c in line.chars() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                word.clear();
            }
            '=' => {
                if !word.is_empty() {
                    names.push(std::mem::take(&mut word));
                }
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' => word.push(c),
            _ => word.clear(),
        }
    }
    names
}
