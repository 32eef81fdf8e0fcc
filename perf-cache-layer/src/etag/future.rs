//! The [`ResponseFuture`] of [`ETag`](super::ETag).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Response, response};
use http_body::Body;
use pin_project_lite::pin_project;

use super::ResponseBody;
use super::layer::{Ask, Start};
use crate::body::Collector;

pin_project! {
    /// Response future of [`ETag`](super::ETag): the inner future, then (for a body to hash)
    /// reading the body.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = ProjReplace]
    enum State<F, B> {
        Inner {
            #[pin]
            future: F,
            ask: Ask,
        },
        Reading {
            parts: Option<response::Parts>,
            collector: Collector<B>,
            ask: Ask,
        },
        Done,
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn new(future: F, ask: Ask) -> Self {
        Self {
            state: State::Inner { future, ask },
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Inner { future, ask } => match ask.start(ready!(future.poll(cx))?) {
                    Start::Done(response) => Ok(response),
                    Start::Collect(parts, collector) => Err((parts, collector)),
                },
                StateProj::Reading {
                    parts,
                    collector,
                    ask,
                } => {
                    let collected = ready!(collector.poll_collect(cx));
                    match parts.take() {
                        Some(parts) => Ok(ask.finish(parts, collected)),
                        None => panic!("ETag response future polled after completion"),
                    }
                }
                StateProj::Done => panic!("ETag response future polled after completion"),
            };
            match next {
                Ok(response) => {
                    state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                Err((parts, collector)) => {
                    let ask = match state.as_mut().project_replace(State::Done) {
                        ProjReplace::Inner { ask, .. } => ask,
                        _ => unreachable!("only the inner state starts reading"),
                    };
                    state.set(State::Reading {
                        parts: Some(parts),
                        collector,
                        ask,
                    });
                }
            }
        }
    }
}
