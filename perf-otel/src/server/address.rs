//! Addresses from the request: `host[:port]`, RFC 7239 `Forwarded` and `X-Forwarded-*`, the
//! socket peer.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::FORWARDED;
use http::uri::Authority;

/// Splits `host[:port]` (IPv6 in brackets) into host and port with [`Authority`]; `None` when the
/// host is empty. A port that is not a number below 65536 is dropped; a bare IPv6 address (no
/// brackets) is a host without port.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim_ascii();
    let Ok(authority) = s.parse::<Authority>() else {
        // Not an authority: a bare IPv6 address, or a host with an unusable port.
        if s.parse::<IpAddr>().is_ok() {
            return Some((s, None));
        }
        let host = s.rsplit_once(':').map_or(s, |(h, _)| h);
        return (!host.is_empty() && !host.contains(['[', ']', ':'])).then_some((host, None));
    };
    // The authority is `s` verbatim: its host starts after the userinfo (`user@`), if any, and
    // keeps the brackets of an IPv6 literal. Return `host` as a slice of `s`.
    let start = s.rfind('@').map_or(0, |at| at + 1);
    let host = &s[start..start + authority.host().len()];
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    // `Port` parses with `u16::from_str`, which also accepts a `+` sign.
    let port = authority
        .port()
        .filter(|p| p.as_str().bytes().all(|b| b.is_ascii_digit()))
        .map(|p| p.as_u16());
    (!host.is_empty()).then_some((host, port))
}

/// The first element's `name=` parameter of an RFC 7239 `Forwarded` header, unquoted.
pub(crate) fn forwarded_param<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(FORWARDED)?.to_str().ok()?;
    let first = value.split(',').next()?;
    first.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
            .filter(|v| !v.is_empty())
    })
}

/// The first comma-separated value of a header.
pub(crate) fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let v = headers.get(name)?.to_str().ok()?.split(',').next()?.trim();
    (!v.is_empty()).then_some(v)
}

/// A trusted proxy's value: the `Forwarded` parameter, else the `X-Forwarded-*` header.
pub(crate) fn forwarded<'a>(
    headers: &'a HeaderMap,
    param: &str,
    x_header: &str,
) -> Option<&'a str> {
    forwarded_param(headers, param).or_else(|| first_value(headers, x_header))
}

/// The address part of a `Forwarded for=` / `X-Forwarded-For` node (drops brackets and port).
pub(crate) fn node_address(node: &str) -> Option<&str> {
    if node.eq_ignore_ascii_case("unknown") || node.starts_with('_') {
        return None; // obfuscated identifiers carry no address
    }
    if node.parse::<IpAddr>().is_ok() {
        return Some(node);
    }
    split_host_port(node).map(|(h, _)| h)
}

/// The socket peer, from axum's `ConnectInfo` or [`PeerAddr`](crate::PeerAddr).
pub(crate) fn peer_addr(ext: &http::Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(ci) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(ci.0);
    }
    ext.get::<crate::PeerAddr>().map(|p| p.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_splitting() {
        assert_eq!(
            split_host_port("example.com:8080"),
            Some(("example.com", Some(8080)))
        );
        assert_eq!(split_host_port("example.com"), Some(("example.com", None)));
        assert_eq!(split_host_port("[::1]:443"), Some(("::1", Some(443))));
        assert_eq!(split_host_port("[::1]"), Some(("::1", None)));
        assert_eq!(split_host_port("::1"), Some(("::1", None)));
        assert_eq!(split_host_port("host:notaport"), Some(("host", None)));
        assert_eq!(split_host_port(""), None);
        assert_eq!(split_host_port("[]:80"), None);
        assert_eq!(split_host_port(" h:65535 "), Some(("h", Some(65535))));
        assert_eq!(split_host_port("h:65536"), Some(("h", None)));
        assert_eq!(split_host_port("h:+80"), Some(("h", None)));
        assert_eq!(split_host_port("h:"), Some(("h", None)));
        assert_eq!(
            split_host_port("user@example.com:80"),
            Some(("example.com", Some(80)))
        );
        assert_eq!(split_host_port("u@[::1]:80"), Some(("::1", Some(80))));
    }

    #[test]
    fn forwarded_first_element_and_quotes() {
        let mut h = HeaderMap::new();
        h.insert(
            FORWARDED,
            r#"for="[2001:db8::1]:4711";proto=HTTPS;host=api.example.com, for=10.0.0.1"#
                .parse()
                .unwrap(),
        );
        assert_eq!(forwarded_param(&h, "for"), Some("[2001:db8::1]:4711"));
        assert_eq!(node_address("[2001:db8::1]:4711"), Some("2001:db8::1"));
        assert_eq!(forwarded_param(&h, "proto"), Some("HTTPS"));
        assert_eq!(forwarded_param(&h, "host"), Some("api.example.com"));
        assert_eq!(node_address("unknown"), None);
        assert_eq!(node_address("192.0.2.1:80"), Some("192.0.2.1"));
    }
}
