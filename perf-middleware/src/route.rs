//! Request facts shared by the layers of the family: the route template, the request start and the trace id.

use http::{Extensions, Method};

/// The label value used for `http.route` when a request matched no route.
///
/// A single fixed value keeps the label set bounded whatever paths clients send.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A route template put into the request extensions by a router that is not axum.
///
/// axum's `MatchedPath` is read automatically (feature `axum`). Plain hyper services that route
/// with `matchit` or by hand insert this extension so metrics and logs get the template
/// (`/users/{id}`) rather than the raw path.
///
/// ```
/// use perf_middleware::RouteTemplate;
///
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(RouteTemplate::new("/users/{id}"));
/// assert_eq!(req.extensions().get::<RouteTemplate>().unwrap().as_str(), "/users/{id}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate(std::sync::Arc<str>);

impl RouteTemplate {
    /// Creates a route template. Pass the template, never the raw request path.
    pub fn new(template: impl Into<std::sync::Arc<str>>) -> Self {
        Self(template.into())
    }

    /// The template as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When the first layer of the family saw the request.
///
/// The outermost family layer inserts it if absent; `Server-Timing: total` is measured from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestStart(pub tokio::time::Instant);

/// The W3C trace id of the request, inserted by a tracing layer (such as `perf-otel`) that runs
/// outside this one. When present, the slow-request log carries it as the `trace_id` field.
///
/// ```
/// use perf_middleware::TraceId;
///
/// let id = TraceId([0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36]);
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The route template of a request, if a router recorded one.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    #[cfg(feature = "axum")]
    Axum(axum::extract::MatchedPath),
    Template(RouteTemplate),
}

/// The route template a router recorded in the request extensions, borrowed.
#[inline]
pub(crate) fn template(ext: &Extensions) -> Option<&str> {
    #[cfg(feature = "axum")]
    if let Some(m) = ext.get::<axum::extract::MatchedPath>() {
        return Some(m.as_str());
    }
    ext.get::<RouteTemplate>().map(RouteTemplate::as_str)
}

impl Route {
    pub(crate) fn from_extensions(ext: &Extensions) -> Option<Self> {
        #[cfg(feature = "axum")]
        if let Some(m) = ext.get::<axum::extract::MatchedPath>() {
            return Some(Route::Axum(m.clone()));
        }
        ext.get::<RouteTemplate>().cloned().map(Route::Template)
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            #[cfg(feature = "axum")]
            Route::Axum(m) => m.as_str(),
            Route::Template(t) => t.as_str(),
        }
    }
}

/// HTTP methods known to the OpenTelemetry semantic conventions, in label order.
pub(crate) const KNOWN_METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
];
/// Index of `QUERY` in the method tables.
pub(crate) const QUERY_METHOD: u8 = 9;
/// Index of `_OTHER` in the method tables.
pub(crate) const OTHER_METHOD: u8 = KNOWN_METHODS.len() as u8;
/// Number of method slots (known methods plus `_OTHER`).
pub(crate) const METHOD_SLOTS: usize = KNOWN_METHODS.len() + 1;

/// Maps a method to its slot: a known method or `_OTHER`.
pub(crate) fn method_index(m: &Method) -> u8 {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::CONNECT => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::PATCH => 8,
        _ if m.as_str() == "QUERY" => 9,
        _ => OTHER_METHOD,
    }
}

/// The standard methods, by slot.
static STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

/// The method of a standard slot (`GET` for `QUERY` and `_OTHER`, whose methods callers keep).
#[inline]
pub(crate) fn standard_method(idx: u8) -> &'static Method {
    STANDARD_METHODS
        .get(usize::from(idx))
        .unwrap_or(&STANDARD_METHODS[0])
}

/// The `http.request.method` label for a slot.
pub(crate) fn method_label(idx: u8) -> &'static str {
    KNOWN_METHODS
        .get(usize::from(idx))
        .copied()
        .unwrap_or("_OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_fold_into_other() {
        let weird = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(method_label(method_index(&weird)), "_OTHER");
        assert_eq!(method_label(method_index(&Method::PATCH)), "PATCH");
        let query = Method::from_bytes(b"QUERY").unwrap();
        assert_eq!(method_label(method_index(&query)), "QUERY");
    }

    #[test]
    fn template_extension_is_read_without_axum() {
        let mut ext = Extensions::new();
        assert!(Route::from_extensions(&ext).is_none());
        ext.insert(RouteTemplate::new("/a/{b}"));
        assert_eq!(Route::from_extensions(&ext).unwrap().as_str(), "/a/{b}");
    }
}
