//! [`Scheme`]: the `url.scheme` of requests whose URI carries none.

/// The `url.scheme` a layer reports for requests whose URI carries no scheme (the usual case on a
/// server, where TLS ends before the request is parsed). Every layer of the family that reports
/// the scheme takes it with the same `.scheme(..)` setting. Defaults to [`Scheme::Http`].
///
/// ```
/// use perf_middleware::Scheme;
///
/// let uri: http::Uri = "https://example.com/x".parse().unwrap();
/// assert_eq!(Scheme::Http.of(&uri), Scheme::Https, "a scheme in the URI wins");
/// assert_eq!(Scheme::Https.of(&"/x".parse().unwrap()).as_str(), "https");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `http`
    #[default]
    Http,
    /// `https`
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The scheme of `uri` when it has one (`https` for `https`, `http` for any other), else
    /// `self`.
    pub fn of(self, uri: &http::Uri) -> Scheme {
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(_) => Scheme::Http,
            None => self,
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
