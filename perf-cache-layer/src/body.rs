//! The response body: a stored body, or the inner body streamed through.

use std::pin::Pin;
use std::task::{Context, Poll};

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

/// Reads the body into memory up to `max` bytes; stops at the first byte over, a trailer or an error.
pub(crate) async fn collect<B: Body<Data = Bytes>>(body: B, max: usize) -> Collected<B> {
    let mut body = Box::pin(body);
    let (mut first, mut buf): (Option<Bytes>, Option<BytesMut>) = (None, None);
    let prefix = |first: Option<Bytes>, buf: Option<BytesMut>| {
        buf.map(BytesMut::freeze).or(first).unwrap_or_default()
    };
    loop {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        let frame = match frame {
            None => return Collected::Complete(prefix(first, buf)),
            Some(Err(e)) => {
                return Collected::Partial {
                    prefix: prefix(first, buf),
                    trailers: None,
                    error: Some(e),
                    rest: None,
                };
            }
            Some(Ok(frame)) => frame,
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                let trailers = frame.into_trailers().ok();
                return Collected::Partial {
                    prefix: prefix(first, buf),
                    trailers,
                    error: None,
                    rest: Some(body),
                };
            }
        };
        let len = buf
            .as_ref()
            .map_or(first.as_ref().map_or(0, Bytes::len), BytesMut::len);
        if len + data.len() > max {
            let mut joined = BytesMut::from(&prefix(first, buf)[..]);
            joined.extend_from_slice(&data);
            return Collected::Partial {
                prefix: joined.freeze(),
                trailers: None,
                error: None,
                rest: Some(body),
            };
        }
        match (&mut first, &mut buf) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let mut b = BytesMut::with_capacity(f.len() + data.len());
                b.extend_from_slice(f);
                b.extend_from_slice(&data);
                buf = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&data),
        }
    }
}
