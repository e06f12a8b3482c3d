//! Named counters, rendered for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use service_kit::ops::Exposition;

/// Named counters.
#[derive(Debug)]
pub struct Counters {
    prefix: &'static str,
    names: &'static [(&'static str, &'static str)],
    values: Vec<AtomicU64>,
}

impl Counters {
    /// Counters `prefix_name_total` with help texts.
    pub fn new(prefix: &'static str, names: &'static [(&'static str, &'static str)]) -> Self {
        Self {
            prefix,
            names,
            values: names.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds one to `name` (unknown names are ignored).
    pub fn inc(&self, name: &str) {
        if let Some(i) = self.names.iter().position(|(n, _)| *n == name) {
            self.values[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> u64 {
        self.names
            .iter()
            .position(|(n, _)| *n == name)
            .map_or(0, |i| self.values[i].load(Ordering::Relaxed))
    }

    /// Prometheus text format: `<prefix>_<name>_total`.
    pub fn render(&self) -> String {
        let mut out = Exposition::default();
        for ((name, help), value) in self.names.iter().zip(&self.values) {
            let full = format!("{}_{}_total", self.prefix, name);
            out.counter(&full, help, value.load(Ordering::Relaxed));
        }
        out.finish()
    }
}
