//! Which budget a request counts against: one lookup for the layer and the `perf-budget` CLI.
//!
//! The route template comes from the router when it recorded one (axum's `MatchedPath` or the
//! foundation's [`RouteTemplate`](perf_middleware::RouteTemplate), read by
//! [`route_template`](perf_middleware::route_template)); otherwise the budgets' templates are
//! matched against the path by the foundation's [`RouteTable`] (matchit: a static route wins over
//! a parameter, as in axum). Then the budget for the request's method wins over a budget for
//! every method.

use std::collections::HashMap;

use http::{Extensions, Method};
use perf_middleware::{RouteTable, route_template};

use crate::error::{ConfigError, Kind};
use crate::policy::RouteBudget;

/// The budgets of one template: `(method, budget index)`, `None` for every method.
type Candidates = Vec<(Option<Method>, usize)>;

/// The budgets' templates in a [`RouteTable`], and for each template its budgets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    /// `None` without budgets.
    table: Option<RouteTable>,
    /// Indexed like the table's templates.
    candidates: Vec<Candidates>,
    /// Template → position in the table.
    by_template: HashMap<String, usize>,
}

impl Routes {
    /// The routes of `budgets`.
    ///
    /// # Errors
    ///
    /// A template that is malformed or conflicts with another one.
    pub(crate) fn new(budgets: &[RouteBudget]) -> Result<Self, ConfigError> {
        let mut templates: Vec<&str> = Vec::new();
        let mut candidates: Vec<Candidates> = Vec::new();
        for (i, b) in budgets.iter().enumerate() {
            let at = match templates.iter().position(|t| *t == b.route()) {
                Some(at) => at,
                None => {
                    templates.push(b.route());
                    candidates.push(Vec::new());
                    templates.len() - 1
                }
            };
            candidates[at].push((b.method().cloned(), i));
        }
        let table = RouteTable::new(&templates).map_err(|e| {
            let err = ConfigError::new(Kind::Route, e.to_string());
            let culprit = match &e {
                perf_middleware::ConfigError::InvalidRouteTemplate { route, .. }
                | perf_middleware::ConfigError::InvalidRoute { route } => {
                    budgets.iter().rev().find(|b| b.route() == route)
                }
                _ => None,
            };
            match culprit {
                Some(b) => err.prefixed(&format!("budget {:?}: ", b.name())),
                None => err,
            }
        })?;
        let by_template = templates
            .iter()
            .enumerate()
            .map(|(i, t)| ((*t).to_owned(), i))
            .collect();
        Ok(Self {
            table: Some(table),
            candidates,
            by_template,
        })
    }

    /// The budget of a request with `method` and `path` whose router recorded no template.
    pub(crate) fn by_path(&self, method: &Method, path: &str) -> Option<usize> {
        let at = self.table.as_ref()?.index(path)?;
        pick(&self.candidates[at], method)
    }

    /// The budget of a request: the router's template in `ext`, else the path.
    pub(crate) fn lookup(&self, ext: &Extensions, method: &Method, path: &str) -> Option<usize> {
        match route_template(ext) {
            Some(template) => {
                let at = *self.by_template.get(template)?;
                pick(&self.candidates[at], method)
            }
            None => self.by_path(method, path),
        }
    }
}

/// The candidate for `method`, else the one for every method.
fn pick(candidates: &Candidates, method: &Method) -> Option<usize> {
    let exact = candidates.iter().find(|(m, _)| m.as_ref() == Some(method));
    exact
        .or_else(|| candidates.iter().find(|(m, _)| m.is_none()))
        .map(|(_, i)| *i)
}

/// Fails when a budget's route is no template of the router's `table`: every request the budget
/// meant would count under `__other__`. Names the closest template (Levenshtein, `strsim`).
pub(crate) fn check_known(budgets: &[RouteBudget], table: &RouteTable) -> Result<(), ConfigError> {
    let Some(b) = budgets
        .iter()
        .find(|b| !table.templates().any(|t| t == b.route()))
    else {
        return Ok(());
    };
    let closest = table
        .templates()
        .min_by_key(|t| strsim::levenshtein(t, b.route()))
        .map(|t| format!("; did you mean {t:?}?"))
        .unwrap_or_default();
    Err(ConfigError::new(
        Kind::UnknownRoute,
        format!(
            "budget {:?}: route {:?} is no route of the router, so its requests would count under `__other__`{closest}",
            b.name(),
            b.route_key()
        ),
    ))
}
