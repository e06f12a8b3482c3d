//! The settings errors, shared by the settings types, their builders and the parsers of
//! [`config`](crate::config). A leaf module: it depends on nothing else of the crate, so every
//! module can use it without an import cycle.

/// A missing or malformed setting. The message names the variable and never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// A new error for `var`.
    pub fn new(var: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            reason: reason.into(),
        }
    }
}

/// A value refused by a setting's parser, and why. The reason never echoes a secret value;
/// which setting it was is the caller's to say (a [`ConfigError`] names the variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidValue {
    reason: String,
}

impl InvalidValue {
    /// A refusal with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// Why the value was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl From<InvalidValue> for String {
    fn from(e: InvalidValue) -> Self {
        e.reason
    }
}
