//! Per-route state, resolved the first time a route template is seen and kept for the layer's
//! lifetime: the `http.route` label, the slow-log threshold, the ignore flag and, per label set,
//! the metric handles. Both maps are bounded; a request beyond a bound is still measured and
//! labelled right, only without the cached entry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::Extensions;

use super::metrics::Handles;
use crate::{RouteTable, UNMATCHED_ROUTE, route_template};

/// Route templates with a cached entry; more are resolved per request.
pub(crate) const MAX_ROUTES: usize = 1024;
/// Label sets (method × scheme × status × error type) with cached handles, per route.
pub(crate) const MAX_SERIES: usize = 64;

/// The maps' hasher: `foldhash`, as `hashbrown` uses by default. Keys are route templates the
/// router knows and label sets from small enums, never raw client input, so a hasher without
/// SipHash's flooding resistance is fine, and it is several times cheaper per request.
type Hasher = foldhash::fast::RandomState;

/// The label set of a request apart from the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SeriesKey {
    pub(crate) method: crate::KnownMethod,
    pub(crate) scheme: crate::Scheme,
    /// 0 when no response was produced.
    pub(crate) status: u16,
    /// `error.type`, when the request failed without a 5xx status.
    pub(crate) error: Option<crate::Outcome>,
}

/// What the layer knows about one route template (or about unmatched requests).
#[derive(Debug)]
pub(crate) struct RouteEntry {
    /// The `http.route` label value: the template, or [`UNMATCHED_ROUTE`].
    pub(crate) label: Box<str>,
    /// `false` for the unmatched entry.
    pub(crate) matched: bool,
    /// The slow-log threshold of this route.
    pub(crate) threshold: Option<Duration>,
    /// Requests to this route are not measured.
    pub(crate) ignored: bool,
    series: RwLock<HashMap<SeriesKey, Handles, Hasher>>,
}

impl RouteEntry {
    pub(crate) fn new(
        label: &str,
        matched: bool,
        threshold: Option<Duration>,
        ignored: bool,
    ) -> Self {
        Self {
            label: label.into(),
            matched,
            threshold,
            ignored,
            series: RwLock::default(),
        }
    }

    /// The route template for hooks and logs (`None` for unmatched requests).
    pub(crate) fn route(&self) -> Option<&str> {
        self.matched.then_some(&*self.label)
    }

    /// Runs `f` with the handles of `key`, resolving them with `resolve` on first use.
    pub(crate) fn with_series(
        &self,
        key: SeriesKey,
        resolve: impl FnOnce() -> Handles,
        f: impl FnOnce(&Handles),
    ) {
        let series = self.series.read().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = series.get(&key) {
            return f(h);
        }
        let full = series.len() >= MAX_SERIES;
        drop(series);
        let handles = resolve();
        f(&handles);
        if !full {
            let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
            series.entry(key).or_insert(handles);
        }
    }
}

/// The route entries of one layer.
#[derive(Debug)]
pub(crate) struct Routes {
    entries: RwLock<HashMap<Box<str>, Arc<RouteEntry>, Hasher>>,
    unmatched: Arc<RouteEntry>,
    /// Templates matched against the path when no router recorded one.
    table: Option<RouteTable>,
}

impl Routes {
    pub(crate) fn new(unmatched_threshold: Option<Duration>, table: Option<RouteTable>) -> Self {
        Self {
            entries: RwLock::default(),
            unmatched: Arc::new(RouteEntry::new(
                UNMATCHED_ROUTE,
                false,
                unmatched_threshold,
                false,
            )),
            table,
        }
    }

    /// The route entry of a request: the template a router recorded, else the route table
    /// matched against `path`, else unmatched. `make` builds the entry of a template seen for
    /// the first time.
    pub(crate) fn resolve(
        &self,
        ext: &Extensions,
        path: &str,
        make: impl FnOnce(&str) -> RouteEntry,
    ) -> Arc<RouteEntry> {
        let template = match &self.table {
            Some(table) => table.resolve(ext, path),
            None => route_template(ext),
        };
        let Some(template) = template else {
            return self.unmatched.clone();
        };
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get(template) {
            return e.clone();
        }
        let full = entries.len() >= MAX_ROUTES;
        drop(entries);
        let entry = Arc::new(make(template));
        if full {
            return entry;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.entry(template.into()).or_insert(entry).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RouteTemplate;

    fn entry(t: &str) -> RouteEntry {
        RouteEntry::new(t, true, None, false)
    }

    #[test]
    fn templates_get_one_entry_each_and_unmatched_its_own() {
        let routes = Routes::new(None, None);
        let mut ext = Extensions::new();
        let e = routes.resolve(&ext, "/x", entry);
        assert_eq!((e.route(), &*e.label), (None, UNMATCHED_ROUTE));
        ext.insert(RouteTemplate::new("/a/{b}"));
        let a = routes.resolve(&ext, "/a/1", entry);
        let again = routes.resolve(&ext, "/a/2", |_| unreachable!("cached"));
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(a.route(), Some("/a/{b}"));
    }

    #[test]
    fn the_route_table_is_used_when_no_router_recorded_a_template() {
        let table = RouteTable::new(["/users/{id}", "/json"]).unwrap();
        let routes = Routes::new(None, Some(table));
        let ext = Extensions::new();
        assert_eq!(
            routes.resolve(&ext, "/users/7", entry).route(),
            Some("/users/{id}")
        );
        assert_eq!(routes.resolve(&ext, "/nope", entry).route(), None);
    }

    #[test]
    fn routes_beyond_the_bound_are_still_labelled_by_their_template() {
        let routes = Routes::new(None, None);
        for i in 0..MAX_ROUTES + 10 {
            let mut ext = Extensions::new();
            ext.insert(RouteTemplate::new(format!("/r{i}")));
            assert_eq!(
                routes.resolve(&ext, "/", entry).route(),
                Some(&*format!("/r{i}"))
            );
        }
        assert_eq!(routes.entries.read().unwrap().len(), MAX_ROUTES);
    }
}
