//! [`PerfLayer`] and its builder.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::hooks::OnComplete;
use super::metrics::LayerMetrics;
use super::registry::{RouteEntry, Routes};
use super::service::Perf;
use crate::{ConfigError, RouteTable, Scheme, ServerTiming};

/// Default slow-request threshold: 1 second.
pub const DEFAULT_SLOW_THRESHOLD: Duration = Duration::from_secs(1);

/// Everything a [`Perf`] service shares with its clones.
pub(crate) struct Shared<H> {
    pub(crate) metrics: Option<LayerMetrics>,
    pub(crate) slow: SlowLog,
    pub(crate) server_timing: ServerTiming,
    pub(crate) scheme: Scheme,
    pub(crate) ignored: HashSet<Box<str>>,
    /// Per-route state (label, threshold, ignore flag, metric handles), resolved once.
    pub(crate) routes: Routes,
    pub(crate) hook: H,
    /// The `/perf` page's stores, when the layer records into a page.
    #[cfg(feature = "page")]
    pub(crate) page: Option<Arc<crate::page::store::Stores>>,
}

impl<H> Shared<H> {
    /// The entry of a route template seen for the first time.
    pub(crate) fn entry_for(&self, template: &str) -> RouteEntry {
        RouteEntry::new(
            template,
            true,
            self.slow.threshold_for(Some(template)),
            self.ignored.contains(template),
        )
    }
}

impl<H> fmt::Debug for Shared<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("metrics", &self.metrics.is_some())
            .field("slow", &self.slow)
            .field("server_timing", &self.server_timing)
            .field("scheme", &self.scheme)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

/// Slow-request log settings.
#[derive(Debug, Clone)]
pub(crate) struct SlowLog {
    pub(crate) threshold: Option<Duration>,
    pub(crate) routes: HashMap<Box<str>, Option<Duration>>,
    pub(crate) log_path: bool,
    pub(crate) log_query: bool,
}

impl SlowLog {
    pub(crate) fn threshold_for(&self, route: Option<&str>) -> Option<Duration> {
        if !self.routes.is_empty()
            && let Some(t) = route.and_then(|r| self.routes.get(r))
        {
            return *t;
        }
        self.threshold
    }
}

#[doc = include_str!("docs.md")]
#[must_use]
pub struct PerfLayer<H = ()> {
    pub(crate) shared: Arc<Shared<H>>,
}

impl<H> Clone for PerfLayer<H> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<H> fmt::Debug for PerfLayer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerfLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

impl PerfLayer {
    /// A layer with the defaults: metrics on, slow-request log at 1 s, no `Server-Timing`,
    /// scheme `http`.
    pub fn new() -> Self {
        PerfLayerBuilder::new()
            .build()
            .unwrap_or_else(|_| unreachable!("defaults are valid"))
    }

    /// Starts a builder.
    pub fn builder() -> PerfLayerBuilder {
        PerfLayerBuilder::new()
    }
}

impl Default for PerfLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, H> Layer<S> for PerfLayer<H> {
    type Service = Perf<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        Perf {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Builder for [`PerfLayer`]; every setter consumes and returns the builder.
///
/// ```
/// use std::time::Duration;
/// use perf_middleware::{PerfLayer, ServerTiming};
///
/// let layer = PerfLayer::builder()
///     .slow_threshold(Duration::from_millis(250))
///     .route_slow_threshold("/api/reports/{id}", Duration::from_secs(2))
///     .server_timing(ServerTiming::Always)
///     .on_complete(|c: &perf_middleware::Completion<'_>| {
///         let _ = (c.route, c.duration);
///     })
///     .build()
///     .expect("valid configuration");
/// # let _ = layer;
/// ```
#[must_use]
pub struct PerfLayerBuilder<H = ()> {
    metrics: bool,
    time_to_headers_metric: bool,
    slow: SlowLog,
    server_timing: ServerTiming,
    scheme: Scheme,
    ignored: HashSet<Box<str>>,
    route_table: Option<RouteTable>,
    errors: Vec<ConfigError>,
    hook: H,
    #[cfg(feature = "page")]
    page: Option<Arc<crate::page::store::Stores>>,
}

impl<H> fmt::Debug for PerfLayerBuilder<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerfLayerBuilder")
            .field("metrics", &self.metrics)
            .field("slow", &self.slow)
            .field("server_timing", &self.server_timing)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl PerfLayerBuilder {
    fn new() -> Self {
        Self {
            metrics: true,
            time_to_headers_metric: false,
            slow: SlowLog {
                threshold: Some(DEFAULT_SLOW_THRESHOLD),
                routes: HashMap::new(),
                log_path: false,
                log_query: false,
            },
            server_timing: ServerTiming::Off,
            scheme: Scheme::Http,
            ignored: Default::default(),
            route_table: None,
            errors: Vec::new(),
            hook: (),
            #[cfg(feature = "page")]
            page: None,
        }
    }
}

impl<H> PerfLayerBuilder<H> {
    /// Whether to record metrics through the `metrics` facade. Defaults to `true`.
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled;
        self
    }

    /// Whether to also record the time-to-headers histogram
    /// (`perf.http.server.time_to_headers`). Defaults to `false`.
    pub fn time_to_headers_metric(mut self, enabled: bool) -> Self {
        self.time_to_headers_metric = enabled;
        self
    }

    /// Requests that take at least this long (to the end of the body) are logged at WARN with
    /// target `perf_middleware::slow`. Defaults to [`DEFAULT_SLOW_THRESHOLD`].
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow.threshold = Some(threshold);
        self
    }

    /// Turns the slow-request log off except for routes given a [`route_slow_threshold`](Self::route_slow_threshold).
    pub fn no_slow_log(mut self) -> Self {
        self.slow.threshold = None;
        self
    }

    /// A threshold for one route template (as the router writes it, e.g. `/api/users/{id}`),
    /// overriding the global one.
    pub fn route_slow_threshold(mut self, route: &str, threshold: Duration) -> Self {
        self.check_route(route);
        self.slow.routes.insert(route.into(), Some(threshold));
        self
    }

    /// Never log slow requests on this route template (e.g. a long-polling endpoint).
    pub fn route_no_slow_log(mut self, route: &str) -> Self {
        self.check_route(route);
        self.slow.routes.insert(route.into(), None);
        self
    }

    fn check_route(&mut self, route: &str) {
        if !route.starts_with('/') {
            self.errors.push(ConfigError::InvalidRoute {
                route: route.into(),
            });
        }
    }

    /// Leaves requests to this route template untouched: no metrics, no slow log, no hook, no
    /// `Server-Timing` (health checks, a `/metrics` route inside the layered router). Call it
    /// once per route; a template must start with `/`.
    pub fn skip_route(mut self, route: &str) -> Self {
        self.check_route(route);
        self.ignored.insert(route.into());
        self
    }

    /// The former name of [`skip_route`](Self::skip_route).
    #[deprecated(note = "renamed `skip_route`, the family's name for it")]
    pub fn ignore_route(self, route: &str) -> Self {
        self.skip_route(route)
    }

    /// Whether the slow-request log carries the request path (`path` field). Defaults to
    /// `false`: the route template is always there, and raw paths can carry personal data.
    pub fn log_path(mut self, enabled: bool) -> Self {
        self.slow.log_path = enabled;
        self
    }

    /// Whether the slow-request log carries the raw query string (`query` field). Defaults to
    /// `false`.
    pub fn log_query(mut self, enabled: bool) -> Self {
        self.slow.log_query = enabled;
        self
    }

    /// When to add the `Server-Timing` value. Defaults to [`ServerTiming::Off`].
    pub fn server_timing(mut self, policy: ServerTiming) -> Self {
        self.server_timing = policy;
        self
    }

    /// The `url.scheme` label for requests whose URI carries no scheme (the usual case on a
    /// server). Defaults to [`Scheme::Http`].
    pub fn scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// Route templates to match the request path against when no router recorded one (no axum
    /// `MatchedPath`, no [`RouteTemplate`](crate::RouteTemplate) extension): for a layer placed
    /// around a whole axum `Router`, or in front of a router that records no template. See
    /// [`RouteTable`] and *Placement* in the [`PerfLayer`] docs.
    pub fn route_table(mut self, table: RouteTable) -> Self {
        self.route_table = Some(table);
        self
    }

    /// Sets the hook called once per request when it ends.
    pub fn on_complete<H2: OnComplete>(self, hook: H2) -> PerfLayerBuilder<H2> {
        PerfLayerBuilder {
            metrics: self.metrics,
            time_to_headers_metric: self.time_to_headers_metric,
            slow: self.slow,
            server_timing: self.server_timing,
            scheme: self.scheme,
            ignored: self.ignored,
            route_table: self.route_table,
            errors: self.errors,
            hook,
            #[cfg(feature = "page")]
            page: self.page,
        }
    }

    /// Records every measured request into the `/perf` page's stores (feature `page`): its
    /// route row, and, past the route's slow threshold, the slow-request list. The page reads
    /// the `Server-Timing` phases of the response, so give it `.server_timing(..)` to see them.
    #[cfg(feature = "page")]
    pub fn page(mut self, page: &crate::page::PerfPage) -> Self {
        self.page = Some(page.inner.stores.clone());
        self
    }

    /// Validates the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// The first invalid setting, with what to fix.
    pub fn build(mut self) -> Result<PerfLayer<H>, ConfigError> {
        if let Some(e) = self.errors.drain(..).next() {
            return Err(e);
        }
        let routes = Routes::new(self.slow.threshold_for(None), self.route_table);
        Ok(PerfLayer {
            shared: Arc::new(Shared {
                metrics: self
                    .metrics
                    .then(|| LayerMetrics::new(self.time_to_headers_metric)),
                slow: self.slow,
                server_timing: self.server_timing,
                scheme: self.scheme,
                ignored: self.ignored,
                routes,
                hook: self.hook,
                #[cfg(feature = "page")]
                page: self.page,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configuration_fails_at_build_time_with_a_fix() {
        let e = PerfLayer::builder()
            .route_slow_threshold("api/x", Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("starting with `/`"), "{e}");
        assert!(PerfLayer::builder().scheme(Scheme::Https).build().is_ok());
    }

    #[test]
    fn route_thresholds_override_the_global_one() {
        let l = PerfLayer::builder()
            .slow_threshold(Duration::from_millis(100))
            .route_slow_threshold("/a", Duration::from_secs(3))
            .route_no_slow_log("/poll")
            .build()
            .unwrap();
        let s = &l.shared.slow;
        assert_eq!(s.threshold_for(Some("/a")), Some(Duration::from_secs(3)));
        assert_eq!(s.threshold_for(Some("/poll")), None);
        assert_eq!(
            s.threshold_for(Some("/b")),
            Some(Duration::from_millis(100))
        );
        assert_eq!(s.threshold_for(None), Some(Duration::from_millis(100)));
    }
}
