//! Span names `{method} {http.route}` as `&'static str`, so a sampled request neither formats nor
//! allocates its name (the SDK takes names as `Cow<'static, str>`; an owned name would be one
//! allocation on the request path and one free on the export thread per span).
//!
//! The table is process-wide and bounded: at most [`MAX_NAMES`] names of routes up to
//! [`MAX_ROUTE_LEN`] bytes are kept (and never freed, so at most a few hundred KiB); other names
//! are formatted per span. Route templates are few and chosen by the application, so a real
//! service stays far below the bound.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};

/// At most this many `{method} {route}` names are kept.
pub(crate) const MAX_NAMES: usize = 1024;
/// Longer route templates are not kept.
pub(crate) const MAX_ROUTE_LEN: usize = 256;

/// route template → the names of the methods seen with it (`(method, "{method} {route}")`).
type Table = HashMap<Box<str>, Vec<(&'static str, &'static str)>, foldhash::fast::RandomState>;

struct Names {
    table: Table,
    count: usize,
}

static NAMES: LazyLock<RwLock<Names>> = LazyLock::new(|| {
    RwLock::new(Names {
        table: Table::default(),
        count: 0,
    })
});

/// Slots of the per-thread cache in front of the table.
const RECENT_SLOTS: usize = 16;

thread_local! {
    /// Names this thread used lately, `(method, name)`, by the address of the route string (an
    /// axum route's template stays at one address): most requests find their name here without
    /// hashing or locking. A slot is only a hint: its name is compared with method and route.
    static RECENT: [Cell<Option<(&'static str, &'static str)>>; RECENT_SLOTS] =
        const { [const { Cell::new(None) }; RECENT_SLOTS] };
}

/// `"{method} {route}"` from the table, added if there is room; `None` when the table is full
/// or the route too long (the caller then formats the name).
pub(crate) fn span_name(method: &'static str, route: &str) -> Option<&'static str> {
    let slot = ((route.as_ptr() as usize >> 4) ^ route.len()) % RECENT_SLOTS;
    let hint = RECENT.with(|r| r[slot].get());
    if let Some((m, name)) = hint
        && m == method
        && route_of(name, m) == route
    {
        return Some(name);
    }
    let name = shared(method, route)?;
    RECENT.with(|r| r[slot].set(Some((method, name))));
    Some(name)
}

fn shared(method: &'static str, route: &str) -> Option<&'static str> {
    let found = NAMES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .find(method, route);
    found.or_else(|| {
        NAMES
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(method, route)
    })
}

impl Names {
    fn find(&self, method: &str, route: &str) -> Option<&'static str> {
        self.table
            .get(route)?
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, n)| *n)
    }

    /// Adds the name unless present (another thread may have added it since our read), the table
    /// is full or the route too long.
    fn insert(&mut self, method: &'static str, route: &str) -> Option<&'static str> {
        if let Some(name) = self.find(method, route) {
            return Some(name);
        }
        if self.count >= MAX_NAMES || route.len() > MAX_ROUTE_LEN {
            return None;
        }
        self.count += 1;
        let name: &'static str = Box::leak(format!("{method} {route}").into_boxed_str());
        self.table
            .entry(route.into())
            .or_default()
            .push((method, name));
        Some(name)
    }
}

/// The route part of a name made by [`span_name`] for `method`.
pub(crate) fn route_of(name: &'static str, method: &str) -> &'static str {
    name.get(method.len() + 1..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shared_per_method_and_route() {
        let a = span_name("GET", "/names/{id}").unwrap();
        assert_eq!(a, "GET /names/{id}");
        assert!(std::ptr::eq(a, span_name("GET", "/names/{id}").unwrap()));
        assert_eq!(span_name("POST", "/names/{id}"), Some("POST /names/{id}"));
        assert_eq!(route_of(a, "GET"), "/names/{id}");
        assert_eq!(span_name("GET", &"x".repeat(MAX_ROUTE_LEN + 1)), None);
    }

    #[test]
    fn a_full_table_adds_nothing() {
        let mut names = Names {
            table: Table::default(),
            count: MAX_NAMES - 1,
        };
        assert_eq!(names.insert("GET", "/a"), Some("GET /a"));
        assert_eq!(names.insert("GET", "/b"), None);
        assert_eq!(names.insert("GET", "/a"), Some("GET /a"));
    }
}
