//! The HTTP methods the OpenTelemetry semantic conventions call "known": every other method is
//! reported as `_OTHER`, in metrics labels, span attributes and budget routes alike.

use http::Method;

/// A request method as the family reports it: one of the methods the semantic conventions of
/// `http.request.method` list as known (the RFC 9110 methods, `PATCH` and `QUERY`), or
/// [`KnownMethod::Other`] (`_OTHER`), so label sets stay bounded whatever clients send.
///
/// ```
/// use http::Method;
/// use perf_middleware::KnownMethod;
///
/// assert_eq!(KnownMethod::from_method(&Method::GET).as_str(), "GET");
/// let query = Method::from_bytes(b"QUERY").unwrap();
/// assert_eq!(KnownMethod::from_method(&query).as_str(), "QUERY");
/// let odd = Method::from_bytes(b"PROPFIND").unwrap();
/// assert_eq!(KnownMethod::from_method(&odd).as_str(), "_OTHER");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KnownMethod {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `CONNECT`
    Connect,
    /// `OPTIONS`
    Options,
    /// `TRACE`
    Trace,
    /// `PATCH` (RFC 5789)
    Patch,
    /// `QUERY` (the safe method with a body, listed as known by the semantic conventions)
    Query,
    /// Any other method: `_OTHER`.
    Other,
}

impl KnownMethod {
    /// Every value, `_OTHER` last.
    pub const ALL: [KnownMethod; 11] = [
        KnownMethod::Get,
        KnownMethod::Head,
        KnownMethod::Post,
        KnownMethod::Put,
        KnownMethod::Delete,
        KnownMethod::Connect,
        KnownMethod::Options,
        KnownMethod::Trace,
        KnownMethod::Patch,
        KnownMethod::Query,
        KnownMethod::Other,
    ];

    /// The value of `method`. Method names are case-sensitive (`get` is `_OTHER`).
    pub fn from_method(method: &Method) -> Self {
        match *method {
            Method::GET => KnownMethod::Get,
            Method::HEAD => KnownMethod::Head,
            Method::POST => KnownMethod::Post,
            Method::PUT => KnownMethod::Put,
            Method::DELETE => KnownMethod::Delete,
            Method::CONNECT => KnownMethod::Connect,
            Method::OPTIONS => KnownMethod::Options,
            Method::TRACE => KnownMethod::Trace,
            Method::PATCH => KnownMethod::Patch,
            _ if method.as_str() == "QUERY" => KnownMethod::Query,
            _ => KnownMethod::Other,
        }
    }

    /// The `http.request.method` value: the method name, or `_OTHER`.
    pub fn as_str(self) -> &'static str {
        match self {
            KnownMethod::Get => "GET",
            KnownMethod::Head => "HEAD",
            KnownMethod::Post => "POST",
            KnownMethod::Put => "PUT",
            KnownMethod::Delete => "DELETE",
            KnownMethod::Connect => "CONNECT",
            KnownMethod::Options => "OPTIONS",
            KnownMethod::Trace => "TRACE",
            KnownMethod::Patch => "PATCH",
            KnownMethod::Query => "QUERY",
            KnownMethod::Other => "_OTHER",
        }
    }

    /// The position of this value in [`KnownMethod::ALL`] (a dense index for per-method tables).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this is [`KnownMethod::Other`].
    pub fn is_other(self) -> bool {
        self == KnownMethod::Other
    }
}

impl From<&Method> for KnownMethod {
    fn from(method: &Method) -> Self {
        Self::from_method(method)
    }
}

impl std::fmt::Display for KnownMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_name_and_index() {
        for (i, m) in KnownMethod::ALL.into_iter().enumerate() {
            assert_eq!(m.index(), i);
            if !m.is_other() {
                let method = Method::from_bytes(m.as_str().as_bytes()).unwrap();
                assert_eq!(KnownMethod::from_method(&method), m);
            }
        }
    }

    #[test]
    fn unknown_and_lowercase_methods_are_other() {
        for name in ["PROPFIND", "get", "BREW"] {
            let m = Method::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(KnownMethod::from_method(&m).as_str(), "_OTHER");
        }
    }
}
