use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use http_body::Body as _;
use pin_project_lite::pin_project;

use super::body::SharedBody;

pin_project! {
    /// The response future of [`DrainBody`](super::DrainBody).
    pub struct DrainFuture<F>
    where
        F: Future,
    {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F>
    where
        F: Future,
    {
        Passthrough { #[pin] future: F },
        Answering { #[pin] future: F, shared: SharedBody, limit: usize },
        Draining { body: Option<Body>, left: usize, output: Option<F::Output> },
    }
}

impl<F: Future> DrainFuture<F> {
    pub(crate) fn passthrough(future: F) -> Self {
        Self {
            state: State::Passthrough { future },
        }
    }

    pub(crate) fn shared(future: F, shared: SharedBody, limit: usize) -> Self {
        Self {
            state: State::Answering {
                future,
                shared,
                limit,
            },
        }
    }
}

impl<F: Future> Future for DrainFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Passthrough { future } => return future.poll(cx),
                StateProj::Answering {
                    future,
                    shared,
                    limit,
                } => {
                    let output = ready!(future.poll(cx));
                    let next = State::Draining {
                        body: shared.take(),
                        left: *limit,
                        output: Some(output),
                    };
                    state.set(next);
                }
                StateProj::Draining { body, left, output } => {
                    while let Some(b) = body.as_mut() {
                        match ready!(Pin::new(b).poll_frame(cx)) {
                            Some(Ok(frame)) => {
                                let len = frame.data_ref().map_or(0, |d| d.len());
                                match left.checked_sub(len) {
                                    Some(l) => *left = l,
                                    // Over the limit: give up, hyper closes the connection.
                                    None => *body = None,
                                }
                            }
                            Some(Err(_)) | None => *body = None,
                        }
                    }
                    return Poll::Ready(
                        output.take().expect("DrainFuture polled after completion"),
                    );
                }
            }
        }
    }
}

impl<F: Future> fmt::Debug for DrainFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Passthrough { .. } => "passthrough",
            State::Answering { .. } => "answering",
            State::Draining { .. } => "draining",
        };
        f.debug_struct("DrainFuture")
            .field("state", &state)
            .finish()
    }
}
