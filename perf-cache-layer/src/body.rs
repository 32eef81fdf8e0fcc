//! The response body: a stored body, or the inner body streamed through.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// Response body of [`Cache`](crate::Cache): either bytes from the cache, or the inner body
    /// streamed through unchanged (possibly after a prefix the cache read while deciding whether to
    /// store it).
    pub struct ResponseBody<B: Body> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B: Body> {
        Full { data: Option<Bytes> },
        Stream { #[pin] body: B },
        Prefixed {
            prefix: Option<Bytes>,
            // Boxed: a rare case that would otherwise make every response (and every hit) larger.
            trailers: Option<Box<HeaderMap>>,
            error: Option<B::Error>,
            rest: Option<Pin<Box<B>>>,
        },
    }
}

impl<B: Body> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Full { .. } => "full",
            Kind::Stream { .. } => "stream",
            Kind::Prefixed { .. } => "prefixed",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn full(data: Bytes) -> Self {
        Self {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    pub(crate) fn empty() -> Self {
        Self {
            kind: Kind::Full { data: None },
        }
    }

    pub(crate) fn stream(body: B) -> Self {
        Self {
            kind: Kind::Stream { body },
        }
    }

    /// `prefix` (already read), then `trailers` or `error`, then the rest of `body`.
    pub(crate) fn prefixed(
        prefix: Bytes,
        trailers: Option<HeaderMap>,
        error: Option<B::Error>,
        rest: Option<Pin<Box<B>>>,
    ) -> Self {
        let prefix = (!prefix.is_empty()).then_some(prefix);
        Self {
            kind: Kind::Prefixed {
                prefix,
                trailers: trailers.map(Box::new),
                error,
                rest,
            },
        }
    }

    /// Whether the body came from memory (the cache or a buffered miss) rather than the inner stream.
    pub fn is_buffered(&self) -> bool {
        matches!(self.kind, Kind::Full { .. })
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Stream { body } => body.poll_frame(cx),
            KindProj::Prefixed {
                prefix,
                trailers,
                error,
                rest,
            } => {
                if let Some(p) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                if let Some(e) = error.take() {
                    *rest = None;
                    return Poll::Ready(Some(Err(e)));
                }
                if let Some(t) = trailers.take() {
                    return Poll::Ready(Some(Ok(Frame::trailers(*t))));
                }
                match rest {
                    Some(body) => body.as_mut().poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Stream { body } => body.is_end_stream(),
            Kind::Prefixed {
                prefix,
                trailers,
                error,
                rest,
            } => {
                prefix.is_none()
                    && trailers.is_none()
                    && error.is_none()
                    && rest.as_ref().is_none_or(|b| b.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Stream { body } => body.size_hint(),
            Kind::Prefixed { prefix, rest, .. } => {
                let done = prefix.as_ref().map_or(0, |p| p.len() as u64);
                let rest = rest
                    .as_ref()
                    .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint());
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + done);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + done);
                }
                hint
            }
        }
    }
}

/// A body read into memory, or as much of it as was read before stopping.
pub(crate) enum Collected<B: Body> {
    Complete(Bytes),
    Partial {
        prefix: Bytes,
        trailers: Option<HeaderMap>,
        error: Option<B::Error>,
        rest: Option<Pin<Box<B>>>,
    },
}

/// Reads a body into memory up to `max` bytes; stops at the first byte over, a trailer or an
/// error. Polled by the cache's miss path and by the ETag layer's response future.
pub(crate) struct Collector<B> {
    body: Option<Pin<Box<B>>>,
    max: usize,
    /// The first frame, kept as is while it is the only one (no copy).
    first: Option<Bytes>,
    /// The frames joined, from the second on.
    joined: Option<BytesMut>,
}

impl<B: Body<Data = Bytes>> Collector<B> {
    pub(crate) fn new(body: B, max: usize) -> Self {
        Self {
            body: Some(Box::pin(body)),
            max,
            first: None,
            joined: None,
        }
    }

    fn read(&mut self) -> Bytes {
        self.joined
            .take()
            .map(BytesMut::freeze)
            .or_else(|| self.first.take())
            .unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.joined
            .as_ref()
            .map_or(self.first.as_ref().map_or(0, Bytes::len), BytesMut::len)
    }

    fn push(&mut self, data: Bytes) {
        match (&self.first, &mut self.joined) {
            (None, None) => self.first = Some(data),
            (_, Some(joined)) => joined.extend_from_slice(&data),
            (Some(first), None) => {
                let mut joined = BytesMut::with_capacity(first.len() + data.len());
                joined.extend_from_slice(first);
                joined.extend_from_slice(&data);
                self.first = None;
                self.joined = Some(joined);
            }
        }
    }

    /// Polls the body until it is read whole or reading stops. Must not be polled again after it
    /// returned `Ready`.
    pub(crate) fn poll_collect(&mut self, cx: &mut Context<'_>) -> Poll<Collected<B>> {
        loop {
            let Some(body) = self.body.as_mut() else {
                return Poll::Ready(Collected::Complete(self.read()));
            };
            let frame = match ready!(body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(Collected::Complete(self.read())),
                Some(Err(error)) => {
                    return Poll::Ready(Collected::Partial {
                        prefix: self.read(),
                        trailers: None,
                        error: Some(error),
                        rest: None,
                    });
                }
                Some(Ok(frame)) => frame,
            };
            match frame.into_data() {
                Ok(data) if self.len() + data.len() > self.max => {
                    self.push(data);
                    return Poll::Ready(Collected::Partial {
                        prefix: self.read(),
                        trailers: None,
                        error: None,
                        rest: self.body.take(),
                    });
                }
                Ok(data) => self.push(data),
                Err(frame) => {
                    return Poll::Ready(Collected::Partial {
                        prefix: self.read(),
                        trailers: frame.into_trailers().ok(),
                        error: None,
                        rest: self.body.take(),
                    });
                }
            }
        }
    }
}

/// Reads the body into memory up to `max` bytes; stops at the first byte over, a trailer or an error.
pub(crate) async fn collect<B: Body<Data = Bytes>>(body: B, max: usize) -> Collected<B> {
    let mut collector = Collector::new(body, max);
    std::future::poll_fn(|cx| collector.poll_collect(cx)).await
}
