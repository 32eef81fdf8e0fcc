//! Whether a stored response may be reused for a request (RFC 9111 §4.2, §4.2.4, §5.2.1).

use std::time::Duration;

use super::directives::RequestDirectives;
use super::policy::Freshness;

/// The layer's settings that bear on reuse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reuse {
    /// Whether the request's `no-cache`, `max-age` and `min-fresh` force revalidation.
    pub(crate) honor_request_directives: bool,
    /// Whether the request's `max-stale` may make a stale response reusable.
    pub(crate) honor_max_stale: bool,
}

/// What to do with a stored response for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Serve it.
    Fresh,
    /// Serve it stale and refresh it in the background (RFC 5861 `stale-while-revalidate`).
    StaleWhileRevalidate,
    /// Serve it stale because the client accepts that (`max-stale`).
    MaxStale,
    /// Revalidate; the `Cache-Status` `fwd` reason (`fwd=stale`, or `fwd=request` when only the
    /// request's directives prevented reuse of a fresh response).
    Validate(&'static str),
}

/// What to do with a stored response of freshness `f` whose current age is `age`.
pub(crate) fn decide(
    reuse: Reuse,
    rq: &RequestDirectives,
    f: &Freshness,
    age: Duration,
) -> Decision {
    let lifetime = f.lifetime;
    let mut validate = false;
    if reuse.honor_request_directives {
        validate |= rq.no_cache;
        validate |= rq.max_age.is_some_and(|max| age > Duration::from_secs(max));
        validate |= rq
            .min_fresh
            .is_some_and(|min| lifetime.saturating_sub(age) < Duration::from_secs(min));
    }
    if f.no_cache {
        return Decision::Validate("fwd=stale");
    }
    if validate {
        return Decision::Validate(if lifetime > age {
            "fwd=request"
        } else {
            "fwd=stale"
        });
    }
    if lifetime > age {
        return Decision::Fresh;
    }
    if f.forbids_stale {
        return Decision::Validate("fwd=stale");
    }
    let staleness = age - lifetime;
    if !f.stale_while_revalidate.is_zero() && staleness <= f.stale_while_revalidate {
        return Decision::StaleWhileRevalidate;
    }
    let client_allows = match rq.max_stale {
        Some(None) => true,
        Some(Some(max)) => staleness <= Duration::from_secs(max),
        None => false,
    };
    if reuse.honor_max_stale && client_allows {
        return Decision::MaxStale;
    }
    Decision::Validate("fwd=stale")
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    const STRICT: Reuse = Reuse {
        honor_request_directives: true,
        honor_max_stale: false,
    };

    fn fresh_for(secs: u64) -> Freshness {
        Freshness {
            lifetime: Duration::from_secs(secs),
            initial_age: Duration::ZERO,
            response_time: SystemTime::UNIX_EPOCH,
            stale_while_revalidate: Duration::from_secs(10),
            stale_if_error: Duration::ZERO,
            forbids_stale: false,
            no_cache: false,
        }
    }

    #[test]
    fn fresh_then_stale_while_revalidate_then_validate() {
        let (f, rq) = (fresh_for(60), RequestDirectives::default());
        let at = |secs| decide(STRICT, &rq, &f, Duration::from_secs(secs));
        assert_eq!(at(59), Decision::Fresh);
        assert_eq!(at(60), Decision::StaleWhileRevalidate);
        assert_eq!(at(70), Decision::StaleWhileRevalidate);
        assert_eq!(at(71), Decision::Validate("fwd=stale"));
    }

    #[test]
    fn request_directives_and_max_stale_follow_the_settings() {
        let f = fresh_for(60);
        let no_cache = RequestDirectives {
            no_cache: true,
            ..RequestDirectives::default()
        };
        let age = Duration::from_secs(5);
        assert_eq!(
            decide(STRICT, &no_cache, &f, age),
            Decision::Validate("fwd=request")
        );
        let lax = Reuse {
            honor_request_directives: false,
            honor_max_stale: true,
        };
        assert_eq!(decide(lax, &no_cache, &f, age), Decision::Fresh);
        let max_stale = RequestDirectives {
            max_stale: Some(None),
            ..RequestDirectives::default()
        };
        let old = Duration::from_secs(500);
        assert_eq!(
            decide(STRICT, &max_stale, &f, old),
            Decision::Validate("fwd=stale")
        );
        assert_eq!(decide(lax, &max_stale, &f, old), Decision::MaxStale);
    }
}
