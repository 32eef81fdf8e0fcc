//! Configuration errors.

use std::fmt;

/// A budget definition that cannot be used: what is wrong, the line (for files) and what to fix.
///
/// `Display` reads like `line 12: budget "users": invalid objective "p95 < 20xs": unknown unit
/// "xs"; write a duration like 200ms, 1.5s or 800us`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file is not valid TOML, or has an unknown or mistyped key.
    Syntax {
        /// The 1-based line in the TOML source, when the error came from a file.
        line: Option<usize>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An objective expression such as `p95 < 200ms` could not be parsed or is out of range.
    Objective {
        /// The 1-based line in the TOML source, when the error came from a file.
        line: Option<usize>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A route is malformed, conflicts with another one or is defined twice.
    Route {
        /// The 1-based line in the TOML source, when the error came from a file.
        line: Option<usize>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A budget's route is no route of the router the layer was given
    /// ([`BudgetLayerBuilder::route_table`](crate::BudgetLayerBuilder::route_table)): every
    /// request it meant would count under `__other__`. The message names the budget, its route
    /// and the closest template of the router.
    UnknownRoute {
        /// The 1-based line in the TOML source, when the error came from a file.
        line: Option<usize>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Any other out-of-range value (window, slots, confidence, shares, durations).
    Value {
        /// The 1-based line in the TOML source, when the error came from a file.
        line: Option<usize>,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The variant of a [`ConfigError`], to build one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    #[cfg(feature = "config")]
    Syntax,
    Objective,
    Route,
    UnknownRoute,
    Value,
}

impl ConfigError {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        let (line, message) = (None, message.into());
        match kind {
            #[cfg(feature = "config")]
            Kind::Syntax => Self::Syntax { line, message },
            Kind::Objective => Self::Objective { line, message },
            Kind::Route => Self::Route { line, message },
            Kind::UnknownRoute => Self::UnknownRoute { line, message },
            Kind::Value => Self::Value { line, message },
        }
    }

    #[cfg(feature = "config")]
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Self::Syntax { .. } => Kind::Syntax,
            Self::Objective { .. } => Kind::Objective,
            Self::Route { .. } => Kind::Route,
            Self::UnknownRoute { .. } => Kind::UnknownRoute,
            Self::Value { .. } => Kind::Value,
        }
    }

    fn parts_mut(&mut self) -> (&mut Option<usize>, &mut String) {
        match self {
            Self::Syntax { line, message }
            | Self::Objective { line, message }
            | Self::Route { line, message }
            | Self::UnknownRoute { line, message }
            | Self::Value { line, message } => (line, message),
        }
    }

    /// Sets the line unless one is known already.
    #[cfg(feature = "config")]
    pub(crate) fn at_line(mut self, at: Option<usize>) -> Self {
        let (line, _) = self.parts_mut();
        if line.is_none() {
            *line = at;
        }
        self
    }

    /// Puts `prefix` (e.g. `budget "users": `) before the message.
    pub(crate) fn prefixed(mut self, prefix: &str) -> Self {
        let (_, message) = self.parts_mut();
        message.insert_str(0, prefix);
        self
    }

    /// The 1-based line in the TOML source, when the error came from a file.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. }
            | Self::Objective { line, .. }
            | Self::Route { line, .. }
            | Self::UnknownRoute { line, .. }
            | Self::Value { line, .. } => *line,
        }
    }

    /// What is wrong and how to fix it, without the line prefix.
    pub fn message(&self) -> &str {
        match self {
            Self::Syntax { message, .. }
            | Self::Objective { message, .. }
            | Self::Route { message, .. }
            | Self::UnknownRoute { message, .. }
            | Self::Value { message, .. } => message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line() {
            Some(line) => write!(f, "line {line}: {}", self.message()),
            None => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for ConfigError {}
