use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use reissue_core::{Claims, Gate, Identity, Pending, Reply, Result};
use tower_service::Service;

use super::ResponseBody;
use super::service::settle;
use crate::reply::to_response;

/// The store's answer on an identity the gate already verified.
type Confirmation<C> = Pin<Box<dyn Future<Output = Result<Arc<Identity<C>>>> + Send>>;

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
        // Strict mode: waiting for the store to confirm the session of the
        // verified token, holding the request and the ready inner service.
        Confirming {
            confirmation: Confirmation<C>,
            req: Option<Request<ReqBody>>,
            service: S,
            gate: Gate<C>,
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

    pub(crate) fn confirming(
        req: Request<ReqBody>,
        service: S,
        gate: Gate<C>,
        pending: Pending<C>,
    ) -> Self {
        Self {
            state: State::Confirming {
                confirmation: Box::pin(pending.confirm()),
                req: Some(req),
                service,
                gate,
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
                StateProj::Confirming {
                    confirmation,
                    req,
                    service,
                    gate,
                } => {
                    let next = match ready!(confirmation.as_mut().poll(cx)) {
                        Ok(identity) => {
                            let mut req = req.take().expect("the request is taken once");
                            settle(gate, &mut req, Some(identity));
                            State::Called {
                                future: service.call(req),
                            }
                        }
                        Err(e) => State::Refused {
                            reply: Some(gate.reply(&e)),
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
            State::Confirming { .. } => "confirming",
            State::Called { .. } => "called",
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
