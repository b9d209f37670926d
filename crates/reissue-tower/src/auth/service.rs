use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use reissue_core::{Claims, Identity};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::Guard;
use super::{Anonymous, ResponseBody};
use crate::RequestHead;

/// The service of [`ReissueLayer`](super::ReissueLayer): authenticates, then
/// calls the inner service or answers with the error.
pub struct ReissueService<S, C> {
    inner: S,
    guard: Arc<Guard<C>>,
}

impl<S, C> ReissueService<S, C> {
    pub(crate) fn new(inner: S, guard: Arc<Guard<C>>) -> Self {
        Self { inner, guard }
    }
}

impl<S: Clone, C> Clone for ReissueService<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            guard: self.guard.clone(),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for ReissueService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReissueService")
            .field("inner", &self.inner)
            .field("verifier", &self.guard.verifier)
            .field("access", &self.guard.access)
            .finish()
    }
}

impl<C: Claims> Guard<C> {
    /// Puts core's admission into the request: the identity, or the marker
    /// of an anonymous request on an optional route.
    pub(crate) fn settle<B>(&self, req: &mut Request<B>, identity: Option<Identity<C>>) {
        match identity {
            Some(identity) => {
                req.extensions_mut().insert(identity);
            }
            None => {
                req.extensions_mut().insert(Anonymous {
                    verifier: self.verifier.clone(),
                });
            }
        }
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for ReissueService<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    C: Claims,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let guard = &self.guard;
        // Stateless: core decides without a store round trip, so the inner
        // service is called directly and nothing is boxed.
        match guard
            .verifier
            .admit_now(&RequestHead::from(&req), &guard.access)
        {
            Some(Ok(identity)) => {
                guard.settle(&mut req, identity);
                ResponseFuture::called(self.inner.call(req))
            }
            Some(Err(e)) => ResponseFuture::refused(guard.verifier.reply(&e)),
            None => {
                // Strict: the session check is a store round trip; the request
                // waits for it inside the future, with the service made ready.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::authenticating(req, ready, self.guard.clone())
            }
        }
    }
}
