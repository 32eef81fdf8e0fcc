//! Configuration errors.

use std::fmt;

/// What kind of mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file is not valid TOML, or has an unknown or mistyped key.
    Syntax,
    /// An objective expression such as `p95 < 200ms` could not be parsed or is out of range.
    Objective,
    /// A route is malformed or defined twice.
    Route,
    /// Any other out-of-range value (window, slots, confidence, shares, durations).
    Value,
}

/// A budget definition that cannot be used, with the line (for files) and what to fix.
///
/// `Display` reads like `line 12: budget "users": invalid objective "p95 < 20xs": unknown unit
/// "xs"; write a duration like 200ms, 1.5s or 800us`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    line: Option<usize>,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            line: None,
            message: message.into(),
        }
    }

    pub(crate) fn at_line(mut self, line: Option<usize>) -> Self {
        if self.line.is_none() {
            self.line = line;
        }
        self
    }

    /// The kind of mistake.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The 1-based line in the TOML source, when the error came from a file.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The message without the line prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}
