//! The route vocabulary of the family: the [`RouteTemplate`] a router recorded, the one
//! [`route_template`] lookup every layer uses, the fixed [`UNMATCHED_ROUTE`] value, and the
//! [`RouteTable`] that matches paths to templates for any layer placed outside the router (and
//! for the `perf-budget` CLI, so the client and the server attribute a path alike).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::ConfigError;

/// The `http.route` value of requests that matched no route, in every crate of the family
/// (metrics labels, budget routes, the `/perf` page). A single fixed value keeps label sets
/// bounded whatever paths clients send; it cannot equal a template, which starts with `/`.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A route template put into the request extensions by a router that is not axum, or by
/// [`MatchRouteLayer`].
///
/// axum's `MatchedPath` is read automatically (feature `axum`). Plain hyper services that route
/// with `matchit` or by hand insert this extension so metrics and logs get the template
/// (`/users/{id}`) rather than the raw path.
///
/// ```
/// use perf_middleware::{RouteTemplate, route_template};
///
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(RouteTemplate::new("/users/{id}"));
/// assert_eq!(route_template(req.extensions()), Some("/users/{id}"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteTemplate(Arc<str>);

impl RouteTemplate {
    /// Creates a route template. Pass the template, never the raw request path.
    pub fn new(template: impl Into<Arc<str>>) -> Self {
        Self(template.into())
    }

    /// The template as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RouteTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The route template a router recorded in the request (or response) extensions: axum's
/// `MatchedPath` (feature `axum`), else a [`RouteTemplate`]. Every layer of the family reads the
/// route through this one function.
#[inline]
pub fn route_template(ext: &Extensions) -> Option<&str> {
    #[cfg(feature = "axum")]
    if let Some(m) = ext.get::<axum::extract::MatchedPath>() {
        return Some(m.as_str());
    }
    ext.get::<RouteTemplate>().map(RouteTemplate::as_str)
}

/// The route templates a layer leaves untouched: every builder of the family fills one with its
/// `.skip_route("/health")` setter, and the layer passes requests to these routes straight to
/// the inner service (no measurement, no headers, no span, no cache).
///
/// Cheap to clone (one shared set); an empty set answers [`matches`](Self::matches) without a
/// lookup.
///
/// ```
/// use perf_middleware::{RouteTemplate, SkipRoutes};
///
/// let mut skip = SkipRoutes::default();
/// skip.insert("/health");
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(RouteTemplate::new("/health"));
/// assert!(skip.matches(req.extensions()));
/// assert!(!skip.matches(http::Request::new(()).extensions()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct SkipRoutes(Arc<HashSet<Box<str>>>);

impl SkipRoutes {
    /// Adds a route template to the set.
    pub fn insert(&mut self, template: &str) {
        Arc::make_mut(&mut self.0).insert(template.into());
    }

    /// Whether `template` is in the set.
    pub fn contains(&self, template: &str) -> bool {
        self.0.contains(template)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the request's [`route_template`] is in the set; `false` for an empty set or a
    /// request without a template.
    #[inline]
    pub fn matches(&self, ext: &Extensions) -> bool {
        !self.0.is_empty() && route_template(ext).is_some_and(|t| self.0.contains(t))
    }
}

/// Route templates (`/users/{id}`, `/files/{*path}`) matched against the request path with
/// [`matchit`](https://docs.rs/matchit), the matcher axum itself uses, so a path gets the template
/// the router would record.
///
/// For layers placed **outside** the router, which see the request before the router recorded
/// `MatchedPath`: put a [`MatchRouteLayer`] in front of them (every layer of the family reads the
/// [`RouteTemplate`] it inserts), or give the table to the layer's `route_table` setting. A
/// `MatchedPath` or `RouteTemplate` already in the request wins over the table.
///
/// Write the templates once, for the router and the table together, with [`RouteTable::builder`]:
///
/// ```
/// use axum::{Router, routing::get};
/// use perf_middleware::RouteTable;
///
/// let mut routes = RouteTable::builder();
/// let router: Router = Router::new()
///     .route(routes.add("/users/{id}"), get(|| async { "user" }))
///     .route(routes.add("/health"), get(|| async { "ok" }));
/// let routes = routes.build().expect("valid templates");
/// assert_eq!(routes.at("/users/7").map(|t| t.as_str()), Some("/users/{id}"));
/// assert!(routes.at("/nope").is_none());
/// # let _ = router;
/// ```
///
/// Templates of nested routers (`Router::nest("/api", ..)`) are added with their prefix
/// (`/api/users/{id}`), as axum's `MatchedPath` shows them.
#[derive(Clone)]
pub struct RouteTable {
    inner: Arc<Inner>,
}

struct Inner {
    router: matchit::Router<usize>,
    templates: Box<[RouteTemplate]>,
}

impl fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.templates()).finish()
    }
}

impl RouteTable {
    /// A table of `templates`.
    ///
    /// # Errors
    ///
    /// A template that does not start with `/`, is malformed, or conflicts with another one
    /// (the same rules as axum's `Router::route`).
    pub fn new<I>(templates: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut b = Self::builder();
        for t in templates {
            b.add(t.as_ref());
        }
        b.build()
    }

    /// A builder that records templates as the router is built (see the type docs).
    pub fn builder() -> RouteTableBuilder {
        RouteTableBuilder::default()
    }

    /// The template matching `path`, if any.
    pub fn at(&self, path: &str) -> Option<&RouteTemplate> {
        self.index(path).and_then(|i| self.template(i))
    }

    /// The templates, in the order they were added.
    pub fn templates(&self) -> impl ExactSizeIterator<Item = &str> {
        self.inner.templates.iter().map(RouteTemplate::as_str)
    }

    /// The position (in [`templates`](Self::templates)) of the template matching `path`.
    #[inline]
    pub fn index(&self, path: &str) -> Option<usize> {
        self.inner.router.at(path).ok().map(|m| *m.value)
    }

    /// The template at `index` (a value of [`index`](Self::index)).
    pub fn template(&self, index: usize) -> Option<&RouteTemplate> {
        self.inner.templates.get(index)
    }

    /// The route of a request: the template a router recorded in `ext` (see
    /// [`route_template`]), else the template of this table matching `path`.
    pub fn resolve<'a>(&'a self, ext: &'a Extensions, path: &str) -> Option<&'a str> {
        route_template(ext).or_else(|| self.at(path).map(RouteTemplate::as_str))
    }
}

/// Builder of a [`RouteTable`]; see [`RouteTable::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct RouteTableBuilder {
    templates: Vec<String>,
}

impl RouteTableBuilder {
    /// Records `template` and returns it unchanged, so the same literal feeds the router:
    /// `.route(routes.add("/users/{id}"), get(handler))`. Adding a template twice (one route,
    /// several methods) is fine.
    pub fn add<'a>(&mut self, template: &'a str) -> &'a str {
        if !self.templates.iter().any(|t| t == template) {
            self.templates.push(template.to_owned());
        }
        template
    }

    /// Builds the table.
    ///
    /// # Errors
    ///
    /// The first template that does not start with `/`, is malformed, or conflicts with another.
    pub fn build(self) -> Result<RouteTable, ConfigError> {
        let mut router = matchit::Router::new();
        for (i, t) in self.templates.iter().enumerate() {
            if !t.starts_with('/') {
                return Err(ConfigError::InvalidRoute { route: t.clone() });
            }
            router
                .insert(t.as_str(), i)
                .map_err(|e| ConfigError::InvalidRouteTemplate {
                    route: t.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(RouteTable {
            inner: Arc::new(Inner {
                router,
                templates: self.templates.into_iter().map(RouteTemplate::new).collect(),
            }),
        })
    }
}

/// Layer that puts the [`RouteTemplate`] matching the request path into the request, for the
/// layers inside it that read one (perf-middleware, perf-otel, perf-budget), when no router
/// recorded a template yet.
///
/// ```
/// use perf_middleware::{MatchRouteLayer, RouteTable, route_template};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let routes = RouteTable::new(["/users/{id}"]).expect("valid templates");
/// let svc = MatchRouteLayer::new(routes).layer(service_fn(|req: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(route_template(req.extensions()).map(str::to_owned))
/// }));
/// let req = http::Request::get("/users/7").body(()).unwrap();
/// assert_eq!(svc.oneshot(req).await.unwrap().as_deref(), Some("/users/{id}"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MatchRouteLayer {
    table: RouteTable,
}

impl MatchRouteLayer {
    /// Matches requests against `table`.
    pub fn new(table: RouteTable) -> Self {
        Self { table }
    }
}

impl<S> Layer<S> for MatchRouteLayer {
    type Service = MatchRoute<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MatchRoute {
            inner,
            table: self.table.clone(),
        }
    }
}

/// Middleware of [`MatchRouteLayer`].
#[derive(Debug, Clone)]
pub struct MatchRoute<S> {
    inner: S,
    table: RouteTable,
}

impl<S> MatchRoute<S> {
    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for MatchRoute<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if route_template(req.extensions()).is_none()
            && let Some(t) = self.table.at(req.uri().path())
        {
            let t = t.clone();
            req.extensions_mut().insert(t);
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_routes_match_the_recorded_template_only() {
        let mut skip = SkipRoutes::default();
        let mut ext = Extensions::new();
        ext.insert(RouteTemplate::new("/health"));
        assert!(!skip.matches(&ext), "an empty set matches nothing");
        skip.insert("/health");
        let copy = skip.clone();
        assert!(copy.matches(&ext) && copy.contains("/health"));
        let mut other = Extensions::new();
        other.insert(RouteTemplate::new("/users/{id}"));
        assert!(!skip.matches(&other));
        assert!(!skip.matches(&Extensions::new()), "no template, no match");
    }

    #[test]
    fn the_template_extension_is_read_without_axum() {
        let mut ext = Extensions::new();
        assert!(route_template(&ext).is_none());
        ext.insert(RouteTemplate::new("/a/{b}"));
        assert_eq!(route_template(&ext), Some("/a/{b}"));
        let t = RouteTable::new(["/x/{y}"]).unwrap();
        assert_eq!(
            t.resolve(&ext, "/x/1"),
            Some("/a/{b}"),
            "the router's template wins"
        );
        assert_eq!(t.resolve(&Extensions::new(), "/x/1"), Some("/x/{y}"));
    }

    #[test]
    fn matches_like_axum_and_rejects_bad_templates() {
        let t =
            RouteTable::new(["/users/{id}", "/users/me", "/files/{*path}", "/users/{id}"]).unwrap();
        assert_eq!(t.templates().len(), 3);
        assert_eq!(t.at("/users/me").unwrap().as_str(), "/users/me");
        assert_eq!(t.at("/users/7").unwrap().as_str(), "/users/{id}");
        assert_eq!(t.at("/files/a/b.txt").unwrap().as_str(), "/files/{*path}");
        assert!(t.at("/users/7/x").is_none());
        assert!(matches!(
            RouteTable::new(["users"]),
            Err(ConfigError::InvalidRoute { .. })
        ));
        let e = RouteTable::new(["/a/{x}", "/a/{y}"]).unwrap_err();
        assert!(e.to_string().contains("/a/{y}"), "{e}");
    }

    #[tokio::test]
    async fn the_layer_inserts_the_template_unless_one_is_there() {
        use tower::{ServiceExt, service_fn};
        let t = RouteTable::new(["/users/{id}"]).unwrap();
        let svc = MatchRouteLayer::new(t).layer(service_fn(|req: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(
                req.extensions()
                    .get::<RouteTemplate>()
                    .map(|t| t.as_str().to_owned()),
            )
        }));
        let req = Request::get("/users/1").body(()).unwrap();
        assert_eq!(
            svc.clone().oneshot(req).await.unwrap().as_deref(),
            Some("/users/{id}")
        );
        let mut req = Request::get("/users/1").body(()).unwrap();
        req.extensions_mut().insert(RouteTemplate::new("/already"));
        assert_eq!(
            svc.clone().oneshot(req).await.unwrap().as_deref(),
            Some("/already")
        );
        let req = Request::get("/other").body(()).unwrap();
        assert_eq!(svc.oneshot(req).await.unwrap(), None);
    }
}
