//! Cache keys (RFC 9111 §2, §4.1): method class + host + path and query, then `Vary`-selected fields.
//!
//! The primary key is `host '\n' path?query`. Neither part can contain a newline, so no URI can be
//! crafted to collide with another (no delimiter ambiguity). GET and HEAD share an entry. Nothing
//! else from the request enters the key unless the response names it in `Vary`.

use http::header::HOST;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

/// The primary cache key of a request.
pub(crate) fn primary(uri: &Uri, headers: &HeaderMap) -> String {
    primary_for_host(uri, headers.get(HOST))
}

/// The primary cache key of a request whose first `Host` field is `host` (the URI's authority
/// wins when it has one).
pub(crate) fn primary_for_host(uri: &Uri, host: Option<&HeaderValue>) -> String {
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| host.and_then(|h| h.to_str().ok()))
        .unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    of(host, path)
}

/// The primary key of `path` (with its query) on `host` (as the client sent `Host`).
pub(crate) fn of(host: &str, path: &str) -> String {
    let mut key = String::with_capacity(host.len() + 1 + path.len());
    key.push_str(host);
    key.make_ascii_lowercase();
    key.push('\n');
    key.push_str(path);
    key
}

/// The request's values for `names`, normalised: lines combined, list items trimmed, inner
/// whitespace collapsed (RFC 9111 §4.1).
pub(crate) fn vary_values(
    names: &[HeaderName],
    headers: &HeaderMap,
) -> Vec<(HeaderName, Option<String>)> {
    names
        .iter()
        .map(|name| (name.clone(), normalised(headers, name)))
        .collect()
}

fn normalised(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut items: Vec<String> = Vec::new();
    for line in headers.get_all(name) {
        let text = String::from_utf8_lossy(line.as_bytes());
        for item in text.split(',') {
            let item: Vec<&str> = item.split_whitespace().collect();
            if !item.is_empty() {
                items.push(item.join(" "));
            }
        }
    }
    (!items.is_empty() || headers.contains_key(name)).then(|| items.join(","))
}

/// Whether a stored variant's `Vary` selection matches this request.
pub(crate) fn vary_matches(stored: &[(HeaderName, Option<String>)], headers: &HeaderMap) -> bool {
    stored
        .iter()
        .all(|(name, value)| normalised(headers, name) == *value)
}

/// The primary key of a `Location`/`Content-Location` value, when it has the request's origin
/// (RFC 9111 §4.4: other origins must not be invalidated).
pub(crate) fn same_origin_key(value: &str, request_key: &str) -> Option<String> {
    let (host, _) = request_key.split_once('\n')?;
    if value.starts_with('/') && !value.starts_with("//") {
        return Uri::try_from(value)
            .ok()
            .map(|u| format!("{host}\n{}", u.path_and_query().map_or("/", |p| p.as_str())));
    }
    let uri = Uri::try_from(value).ok()?;
    let authority = uri.authority()?.as_str().to_ascii_lowercase();
    (authority == host).then(|| {
        format!(
            "{host}\n{}",
            uri.path_and_query().map_or("/", |p| p.as_str())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn primary_key_has_no_delimiter_ambiguity() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("Example.com"));
        let a = primary(&Uri::from_static("/a?b"), &h);
        assert_eq!(a, "example.com\n/a?b");
        h.insert(HOST, HeaderValue::from_static("example.com/a"));
        assert_ne!(primary(&Uri::from_static("/?b"), &h), a);
    }

    #[test]
    fn vary_normalises_whitespace_and_lines() {
        let name = HeaderName::from_static("accept-language");
        let mut one = HeaderMap::new();
        one.insert(&name, HeaderValue::from_static("en,  fr"));
        let stored = vary_values(std::slice::from_ref(&name), &one);
        let mut two = HeaderMap::new();
        two.append(&name, HeaderValue::from_static("en"));
        two.append(&name, HeaderValue::from_static(" fr "));
        assert!(vary_matches(&stored, &two));
        assert!(!vary_matches(&stored, &HeaderMap::new()));
        assert!(vary_matches(
            &vary_values(&[name], &HeaderMap::new()),
            &HeaderMap::new()
        ));
    }

    #[test]
    fn location_invalidation_is_same_origin_only() {
        let key = "example.com\n/a";
        assert_eq!(
            same_origin_key("/b?x", key).as_deref(),
            Some("example.com\n/b?x")
        );
        assert_eq!(
            same_origin_key("http://example.com/c", key).as_deref(),
            Some("example.com\n/c")
        );
        assert_eq!(same_origin_key("http://evil.com/c", key), None);
    }
}
