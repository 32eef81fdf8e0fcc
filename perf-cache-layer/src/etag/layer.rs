//! [`ETagLayer`], the [`ETag`] service, and what they decide about each response.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Request, Response, StatusCode, response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::{ResponseBody, ResponseFuture};
use crate::body::{self, Collected};
use crate::rfc::conditional::{self, EtagMode};

/// Adds ETags and answers conditional requests with 304. See the [module docs](crate::etag).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct ETagLayer {
    mode: EtagMode,
    max_size: usize,
}

impl Default for ETagLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ETagLayer {
    /// Strong ETags for bodies up to 1 MiB.
    pub fn new() -> Self {
        Self {
            mode: EtagMode::Strong,
            max_size: 1 << 20,
        }
    }

    /// Strong or weak ETags. Defaults to [`EtagMode::Strong`]; use [`EtagMode::Weak`] when a
    /// compression layer sits outside this one.
    pub fn mode(mut self, mode: EtagMode) -> Self {
        self.mode = mode;
        self
    }

    /// Largest body hashed; larger bodies stream through without an ETag. Defaults to 1 MiB.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }
}

impl<S> Layer<S> for ETagLayer {
    type Service = ETag<S>;

    fn layer(&self, inner: S) -> ETag<S> {
        ETag {
            inner,
            config: *self,
        }
    }
}

/// The service produced by [`ETagLayer`].
#[derive(Debug, Clone)]
pub struct ETag<S> {
    inner: S,
    config: ETagLayer,
}

impl<S> ETag<S> {
    /// Wraps `inner` with the default [`ETagLayer`].
    pub fn new(inner: S) -> Self {
        ETagLayer::new().layer(inner)
    }

    /// An [`ETagLayer`] with the defaults.
    pub fn layer() -> ETagLayer {
        ETagLayer::new()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the layer, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ETag<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let method = req.method().clone();
        let mut conditions = HeaderMap::new();
        for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
            for v in req.headers().get_all(&name) {
                conditions.append(name.clone(), v.clone());
            }
        }
        let ask = Ask {
            method,
            conditions,
            config: self.config,
        };
        ResponseFuture::new(self.inner.call(req), ask)
    }
}

/// What the layer needs from the request to treat its response.
#[derive(Debug)]
pub(super) struct Ask {
    method: Method,
    /// The request's `If-None-Match` and `If-Modified-Since` fields.
    conditions: HeaderMap,
    config: ETagLayer,
}

/// The first step on a response: answered at once, or its body must be read to hash it.
pub(super) enum Start<B: Body> {
    Done(Response<ResponseBody<B>>),
    Collect(response::Parts, body::Collector<B>),
}

impl Ask {
    /// Decides on the inner response: a handler's own `ETag` is used as is; bodies that are not
    /// eligible or too large stream through; the rest are read to be hashed.
    pub(super) fn start<B: Body<Data = Bytes>>(&self, response: Response<B>) -> Start<B> {
        let (parts, body) = response.into_parts();
        let eligible = parts.status == StatusCode::OK
            && (self.method == Method::GET || self.method == Method::HEAD);
        if eligible && parts.headers.contains_key(header::ETAG) {
            return Start::Done(self.respond(parts, || body::ResponseBody::stream(body)));
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let max = self.config.max_size;
        let too_large = declared.unwrap_or(body.size_hint().lower()) > max as u64;
        if !eligible
            || self.method == Method::HEAD
            || self.config.mode == EtagMode::Off
            || too_large
        {
            let body = ResponseBody::new(body::ResponseBody::stream(body));
            return Start::Done(Response::from_parts(parts, body));
        }
        Start::Collect(parts, body::Collector::new(body, max))
    }

    /// Tags a body read whole and answers the request's conditions; a partly read body streams
    /// through untagged.
    pub(super) fn finish<B: Body<Data = Bytes>>(
        &self,
        mut parts: response::Parts,
        collected: Collected<B>,
    ) -> Response<ResponseBody<B>> {
        let bytes = match collected {
            Collected::Complete(bytes) => bytes,
            Collected::Partial {
                prefix,
                trailers,
                error,
                rest,
            } => {
                let body = body::ResponseBody::prefixed(prefix, trailers, error, rest);
                return Response::from_parts(parts, ResponseBody::new(body));
            }
        };
        if let Some(etag) = conditional::generate(self.config.mode, &parts.headers, &bytes) {
            parts.headers.insert(header::ETAG, etag);
        }
        parts
            .headers
            .insert(header::CONTENT_LENGTH, bytes.len().into());
        self.respond(parts, || body::ResponseBody::full(bytes))
    }

    /// 304 when the request's conditions match (RFC 9110 §13.1), else the response.
    fn respond<B: Body>(
        &self,
        mut parts: response::Parts,
        body: impl FnOnce() -> body::ResponseBody<B>,
    ) -> Response<ResponseBody<B>> {
        if conditional::not_modified(&self.method, &self.conditions, &parts.headers) {
            parts.status = StatusCode::NOT_MODIFIED;
            parts.headers = conditional::not_modified_headers(&parts.headers);
            let empty = ResponseBody::new(body::ResponseBody::empty());
            return Response::from_parts(parts, empty);
        }
        Response::from_parts(parts, ResponseBody::new(body()))
    }
}
