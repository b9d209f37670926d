use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::request::Parts;
use http::{Request, Response};
use pin_project_lite::pin_project;
use reissue_core::{Claims, Identity, Reply, Result};
use tower_service::Service;

use super::ResponseBody;
use super::layer::Guard;
use crate::RequestHead;
use crate::reply::to_response;

type Verdict<C> = Pin<Box<dyn Future<Output = (Parts, Result<Option<Identity<C>>>)> + Send>>;

pin_project! {
    /// The response future of [`ReissueService`](super::ReissueService).
    pub struct ResponseFuture<S, ReqBody, C>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, C>
    where
        S: Service<Request<ReqBody>>,
    {
        // Strict mode: waiting for core's session check, holding the body
        // and the ready inner service until it answers.
        Authenticating {
            verdict: Verdict<C>,
            body: Option<ReqBody>,
            service: S,
            guard: Arc<Guard<C>>,
        },
        Called { #[pin] future: S::Future },
        Refused { reply: Option<Reply> },
    }
}

impl<S, ReqBody, C> ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
    C: Claims,
{
    pub(crate) fn called(future: S::Future) -> Self {
        Self {
            state: State::Called { future },
        }
    }

    pub(crate) fn refused(reply: Reply) -> Self {
        Self {
            state: State::Refused { reply: Some(reply) },
        }
    }

    pub(crate) fn authenticating(req: Request<ReqBody>, service: S, guard: Arc<Guard<C>>) -> Self {
        let (parts, body) = req.into_parts();
        let admitting = guard.clone();
        let verdict = Box::pin(async move {
            let verdict = admitting
                .verifier
                .admit(&RequestHead::from(&parts), &admitting.access)
                .await;
            (parts, verdict)
        });
        Self {
            state: State::Authenticating {
                verdict,
                body: Some(body),
                service,
                guard,
            },
        }
    }
}

impl<S, ReqBody, ResBody, C> Future for ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Claims,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Called { future } => {
                    return future.poll(cx).map_ok(|res| res.map(ResponseBody::inner));
                }
                StateProj::Refused { reply } => {
                    let reply = reply
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(to_response(reply, ResponseBody::reply)));
                }
                StateProj::Authenticating {
                    verdict,
                    body,
                    service,
                    guard,
                } => {
                    let (parts, verdict) = ready!(verdict.as_mut().poll(cx));
                    let next = match verdict {
                        Ok(identity) => {
                            let body = body.take().expect("the body is taken once");
                            let mut req = Request::from_parts(parts, body);
                            guard.settle(&mut req, identity);
                            State::Called {
                                future: service.call(req),
                            }
                        }
                        Err(e) => State::Refused {
                            reply: Some(guard.verifier.reply(&e)),
                        },
                    };
                    state.set(next);
                }
            }
        }
    }
}

impl<S, ReqBody, C> fmt::Debug for ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Authenticating { .. } => "authenticating",
            State::Called { .. } => "called",
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
