//! [`RouteTable`]: route templates matched against the request path, for layers in front of a
//! router (around a whole axum `Router`, or in front of a router that records no template), and
//! [`MatchRouteLayer`], which hands the matched template to every layer inside it as a
//! [`RouteTemplate`] extension.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::layer::ConfigError;
use crate::route::RouteTemplate;

/// Route templates (`/users/{id}`, `/files/{*path}`) matched against the request path with
/// [`matchit`](https://docs.rs/matchit), the matcher axum itself uses, so a path gets the template
/// the router would record.
///
/// For layers placed **outside** the router, which see the request before the router recorded
/// `MatchedPath`: give the table to [`PerfLayerBuilder::route_table`](crate::PerfLayerBuilder::route_table),
/// or put a [`MatchRouteLayer`] in front of every layer that reads [`RouteTemplate`]. A
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
        self.index(path).map(|i| self.template(i))
    }

    /// The templates, in the order they were added.
    pub fn templates(&self) -> impl ExactSizeIterator<Item = &str> {
        self.inner.templates.iter().map(RouteTemplate::as_str)
    }

    #[inline]
    pub(crate) fn index(&self, path: &str) -> Option<usize> {
        self.inner.router.at(path).ok().map(|m| *m.value)
    }

    pub(crate) fn template(&self, index: usize) -> &RouteTemplate {
        &self.inner.templates[index]
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
/// use perf_middleware::{MatchRouteLayer, PerfLayer, RouteTable};
/// use tower::ServiceBuilder;
///
/// let routes = RouteTable::new(["/users/{id}"]).expect("valid templates");
/// let stack = ServiceBuilder::new()
///     .layer(MatchRouteLayer::new(routes))
///     .layer(PerfLayer::new());
/// # let _ = stack;
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
        if crate::route::template(req.extensions()).is_none()
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
