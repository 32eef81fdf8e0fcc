//! The [`ResponseFuture`] of [`Perf`](crate::Perf).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::body::ResponseBody;
use crate::hooks::{OnComplete, Outcome};
use crate::record::Record;
use crate::server_timing;

pin_project! {
    /// Response future of [`Perf`](crate::Perf). Dropping it before it resolves records the
    /// request as cancelled.
    pub struct ResponseFuture<F, H: OnComplete> {
        #[pin]
        inner: F,
        record: Option<Record<H>>,
        total_start: Option<Instant>,
    }
}

impl<F, H: OnComplete> ResponseFuture<F, H> {
    pub(crate) fn new(inner: F, record: Option<Record<H>>, total_start: Option<Instant>) -> Self {
        Self {
            inner,
            record,
            total_start,
        }
    }
}

impl<F: std::fmt::Debug, H: OnComplete> std::fmt::Debug for ResponseFuture<F, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<F, B, E, H> Future for ResponseFuture<F, H>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
    H: OnComplete,
{
    type Output = Result<Response<ResponseBody<B, H>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(mut record) = this.record.take() else {
            // An ignored route: pass the response through untouched (apart from the body type).
            return Poll::Ready(result.map(|res| res.map(|body| ResponseBody::new(body, None))));
        };
        match result {
            Ok(mut res) => {
                let now = Instant::now();
                record.headers_at = Some(now);
                record.status = Some(res.status());
                if let Some(total_start) = *this.total_start {
                    server_timing::append_total_app(
                        res.headers_mut(),
                        now.saturating_duration_since(total_start),
                        now.saturating_duration_since(record.start),
                    );
                }
                let record = if res.body().is_end_stream() {
                    record.finish(Outcome::Completed);
                    None
                } else {
                    Some(record)
                };
                Poll::Ready(Ok(res.map(|body| ResponseBody::new(body, record))))
            }
            Err(e) => {
                record.finish(Outcome::ServiceError);
                Poll::Ready(Err(e))
            }
        }
    }
}
