//! Per-route state resolved once per route template and kept for the layer's lifetime: the
//! `http.route` label, the slow-log threshold, the ignore flag and, per label set, the metric
//! handles.
//!
//! Lookups on the request path are lock-free: a hash, then one atomic load and one comparison
//! per probe, with no read-modify-write on a cache line that every core shares. Entries are
//! inserted once, on first sight, and never removed. Both tables are bounded; a request that
//! finds no room is still measured and labelled right, through the slower
//! [`HandleCache`](crate::metrics::HandleCache) map.

use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::time::Duration;

use http::Extensions;

use crate::metrics::{ErrorKind, Handles};
use crate::route::Route;
use crate::table::RouteTable;

/// A fixed-capacity, insert-only open-addressing table with lock-free lookups.
pub(crate) struct Slots<T> {
    slots: Box<[OnceLock<Box<T>>]>,
}

impl<T> Slots<T> {
    /// A table of `capacity` slots, rounded up to a power of two.
    pub(crate) fn new(capacity: usize) -> Self {
        let n = capacity.max(1).next_power_of_two();
        Self {
            slots: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The entry in slot `index`, if any.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> Option<&T> {
        self.slots
            .get(index as usize)
            .and_then(OnceLock::get)
            .map(|b| &**b)
    }

    /// The entry that `is` accepts, probing at most `max_probes` slots from `hash`; the first
    /// free slot on the way gets `make()`. `None` when the probes ran out.
    #[inline]
    pub(crate) fn find_or_insert(
        &self,
        hash: u64,
        max_probes: usize,
        is: impl Fn(&T) -> bool,
        mut make: impl FnMut() -> T,
    ) -> Option<(u32, &T)> {
        let mask = self.slots.len() - 1;
        for i in 0..max_probes.min(self.slots.len()) {
            let index = (hash as usize).wrapping_add(i) & mask;
            let slot = &self.slots[index];
            // Another thread may fill the free slot first, with another key: then probe on.
            let entry = match slot.get() {
                Some(e) => e,
                None => slot.get_or_init(|| Box::new(make())),
            };
            if is(entry) {
                return Some((index as u32, entry));
            }
        }
        None
    }
}

/// Route-id value: no route matched.
pub(crate) const UNMATCHED: u32 = u32::MAX;
/// Route-id value: a template that found no room in the table (it travels in the record).
pub(crate) const OVERFLOW: u32 = u32::MAX - 1;

/// Distinct route templates with their own entry; more are handled through [`OVERFLOW`].
const ROUTE_SLOTS: usize = 1024;
/// Probes before a template counts as overflowing.
const ROUTE_PROBES: usize = 32;
/// Label sets (method × scheme × status × error type) with cached handles per route.
const SERIES_SLOTS: usize = 32;

/// What the layer knows about one route template (or about unmatched requests).
pub(crate) struct RouteEntry {
    /// The `http.route` label value: the template, or the unmatched label.
    pub(crate) label: Box<str>,
    /// `false` for the unmatched entry.
    pub(crate) matched: bool,
    /// The slow-log threshold of this route.
    pub(crate) threshold: Option<Duration>,
    /// Requests to this route are not measured.
    pub(crate) ignored: bool,
    series: Slots<Series>,
}

impl std::fmt::Debug for RouteEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteEntry")
            .field("label", &self.label)
            .field("threshold", &self.threshold)
            .field("ignored", &self.ignored)
            .finish_non_exhaustive()
    }
}

/// The handles of one label set of a route.
struct Series {
    key: u32,
    handles: Handles,
}

/// The label set of a request apart from the route, packed: status (10 bits), method (4 bits),
/// scheme (1 bit), error type (2 bits).
pub(crate) fn series_key(method: u8, scheme: u8, status: u16, error: Option<ErrorKind>) -> u32 {
    let error = match error {
        None => 0,
        Some(ErrorKind::Cancelled) => 1,
        Some(ErrorKind::Service) => 2,
        Some(ErrorKind::Body) => 3,
    };
    u32::from(status & 0x3ff)
        | u32::from(method & 0xf) << 10
        | u32::from(scheme & 1) << 14
        | error << 15
}

impl RouteEntry {
    pub(crate) fn new(
        label: Box<str>,
        matched: bool,
        threshold: Option<Duration>,
        ignored: bool,
    ) -> Self {
        Self {
            label,
            matched,
            threshold,
            ignored,
            series: Slots::new(SERIES_SLOTS),
        }
    }

    /// The route template for hooks and logs (`None` for unmatched requests).
    #[inline]
    pub(crate) fn route(&self) -> Option<&str> {
        self.matched.then_some(&*self.label)
    }

    /// The cached handles of the label set `key`, resolving them with `resolve` on first use;
    /// `None` when this route has no room left for another label set.
    #[inline]
    pub(crate) fn series(&self, key: u32, resolve: impl FnOnce() -> Handles) -> Option<&Handles> {
        let mut resolve = Some(resolve);
        let hash = u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
        self.series
            .find_or_insert(
                hash,
                SERIES_SLOTS,
                |s| s.key == key,
                || Series {
                    key,
                    // `make` runs at most once per call: it wins a free slot, whose key then matches.
                    handles: resolve.take().map_or_else(Handles::detached, |f| f()),
                },
            )
            .map(|(_, s)| &s.handles)
    }
}

/// Where a request's route state lives.
pub(crate) enum Resolved<'a> {
    /// An entry of the table (or the unmatched entry, id [`UNMATCHED`]).
    Entry(u32, &'a RouteEntry),
    /// A template that found no room: carried along with the request.
    Overflow(Route),
}

/// The route entries of one layer.
pub(crate) struct Routes {
    entries: Slots<RouteEntry>,
    hasher: foldhash::fast::RandomState,
    unmatched: RouteEntry,
    /// Templates matched against the path when no router recorded one, with their entry ids.
    table: Option<(RouteTable, Box<[u32]>)>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("unmatched", &self.unmatched)
            .field("table", &self.table.as_ref().map(|(t, _)| t))
            .finish_non_exhaustive()
    }
}

impl Routes {
    /// `make(template)` builds the entry of a template on first sight.
    pub(crate) fn new(
        unmatched: RouteEntry,
        table: Option<RouteTable>,
        make: impl Fn(&str) -> RouteEntry,
    ) -> Self {
        let mut routes = Self {
            entries: Slots::new(ROUTE_SLOTS),
            hasher: foldhash::fast::RandomState::default(),
            unmatched,
            table: None,
        };
        routes.table = table.map(|t| {
            let ids = t
                .templates()
                .map(|tpl| match routes.find(tpl, &make) {
                    Resolved::Entry(id, _) => id,
                    Resolved::Overflow(_) => OVERFLOW,
                })
                .collect();
            (t, ids)
        });
        routes
    }

    /// The entry of `template`, inserted with `make` on first sight.
    #[inline]
    fn find(&self, template: &str, make: impl Fn(&str) -> RouteEntry) -> Resolved<'_> {
        let hash = self.hasher.hash_one(template);
        match self.entries.find_or_insert(
            hash,
            ROUTE_PROBES,
            |e| &*e.label == template,
            || make(template),
        ) {
            Some((id, e)) => Resolved::Entry(id, e),
            None => Resolved::Overflow(Route::Template(crate::RouteTemplate::new(template))),
        }
    }

    /// The route state of a request: axum's `MatchedPath`, else a [`RouteTemplate`]
    /// extension, else the route table matched against `path`, else unmatched.
    ///
    /// [`RouteTemplate`]: crate::RouteTemplate
    #[inline]
    pub(crate) fn resolve(
        &self,
        ext: &Extensions,
        path: &str,
        make: impl Fn(&str) -> RouteEntry,
    ) -> Resolved<'_> {
        if let Some(template) = crate::route::template(ext) {
            return match self.find(template, make) {
                // Keep the router's own `Arc` rather than a copy when the template overflows.
                Resolved::Overflow(_) => Resolved::Overflow(
                    Route::from_extensions(ext)
                        .unwrap_or_else(|| Route::Template(crate::RouteTemplate::new(template))),
                ),
                found => found,
            };
        }
        if let Some((table, ids)) = &self.table
            && let Some(i) = table.index(path)
        {
            return match ids.get(i).copied() {
                Some(id) if id != OVERFLOW => match self.entries.get(id) {
                    Some(e) => Resolved::Entry(id, e),
                    None => Resolved::Entry(UNMATCHED, &self.unmatched),
                },
                _ => Resolved::Overflow(Route::Template(table.template(i).clone())),
            };
        }
        Resolved::Entry(UNMATCHED, &self.unmatched)
    }

    /// The entry behind an id from [`resolve`](Self::resolve) (the unmatched entry for
    /// [`UNMATCHED`] and [`OVERFLOW`], which callers handle first).
    #[inline]
    pub(crate) fn get(&self, id: u32) -> &RouteEntry {
        if id == UNMATCHED {
            return &self.unmatched;
        }
        self.entries.get(id).unwrap_or(&self.unmatched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: &str) -> RouteEntry {
        RouteEntry::new(t.into(), true, None, false)
    }

    #[test]
    fn slots_find_what_they_inserted_and_run_out_of_probes() {
        let s: Slots<u32> = Slots::new(4);
        for k in 0..4u32 {
            let (i, v) = s.find_or_insert(0, 4, |v| *v == k, || k).unwrap();
            assert_eq!((i, *v), (k, k), "linear probing from slot 0");
        }
        assert_eq!(s.find_or_insert(0, 4, |v| *v == 2, || 99), Some((2, &2)));
        assert!(s.find_or_insert(1, 4, |v| *v == 7, || 7).is_none(), "full");
        assert_eq!(s.get(3), Some(&3));
    }

    #[test]
    fn templates_get_one_entry_each_and_unmatched_its_own() {
        let routes = Routes::new(
            RouteEntry::new("unmatched".into(), false, None, false),
            None,
            entry,
        );
        let mut ext = Extensions::new();
        let Resolved::Entry(id, _) = routes.resolve(&ext, "/x", entry) else {
            panic!("unmatched is an entry")
        };
        assert_eq!(id, UNMATCHED);
        assert_eq!(routes.get(id).route(), None);
        ext.insert(crate::RouteTemplate::new("/a/{b}"));
        let Resolved::Entry(a, _) = routes.resolve(&ext, "/a/1", entry) else {
            panic!()
        };
        let Resolved::Entry(again, _) = routes.resolve(&ext, "/a/2", entry) else {
            panic!()
        };
        assert_eq!(a, again);
        assert_eq!(routes.get(a).route(), Some("/a/{b}"));
    }

    #[test]
    fn route_table_ids_are_resolved_at_build() {
        let table = RouteTable::new(["/users/{id}", "/json"]).unwrap();
        let routes = Routes::new(
            RouteEntry::new("unmatched".into(), false, None, false),
            Some(table),
            entry,
        );
        let ext = Extensions::new();
        let Resolved::Entry(id, e) = routes.resolve(&ext, "/users/7", entry) else {
            panic!()
        };
        assert_ne!(id, UNMATCHED);
        assert_eq!(e.route(), Some("/users/{id}"));
        let Resolved::Entry(id, _) = routes.resolve(&ext, "/nope", entry) else {
            panic!()
        };
        assert_eq!(id, UNMATCHED);
    }

    #[test]
    fn series_keys_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for m in 0..11 {
            for s in 0..2 {
                for st in [0u16, 100, 200, 404, 599, 999] {
                    for e in [
                        None,
                        Some(ErrorKind::Cancelled),
                        Some(ErrorKind::Service),
                        Some(ErrorKind::Body),
                    ] {
                        assert!(seen.insert(series_key(m, s, st, e)));
                    }
                }
            }
        }
    }
}
