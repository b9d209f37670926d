use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use reissue_core::{Admission, Claims, Gate, Identity};
use tower_service::Service;

use super::future::ResponseFuture;
use super::{Anonymous, ResponseBody};
use crate::RequestHead;

/// The service of [`ReissueLayer`](super::ReissueLayer): asks core's
/// [`Gate`] about each request, then calls the inner service or answers with
/// the refusal.
pub struct ReissueService<S, C> {
    inner: S,
    gate: Gate<C>,
}

impl<S, C> ReissueService<S, C> {
    pub(crate) fn new(inner: S, gate: Gate<C>) -> Self {
        Self { inner, gate }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, this one dropped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C> Clone for ReissueService<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for ReissueService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReissueService")
            .field("inner", &self.inner)
            .field("gate", &self.gate)
            .finish()
    }
}

/// Puts the gate's admission into the request: the identity, or the marker
/// of an anonymous request on an optional route.
pub(crate) fn settle<B, C: Claims>(
    gate: &Gate<C>,
    req: &mut Request<B>,
    identity: Option<Arc<Identity<C>>>,
) {
    match identity {
        Some(identity) => {
            req.extensions_mut().insert(identity);
            // for the axum step-up guard's challenge (RecentAuth)
            #[cfg(feature = "axum")]
            req.extensions_mut()
                .insert(crate::extract::Realm(gate.verifier().realm()));
        }
        None => {
            req.extensions_mut()
                .insert(Anonymous { gate: gate.clone() });
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
        match self.gate.admit(&RequestHead::from(&req)) {
            // Decided without a store round trip: the inner service is
            // called directly and nothing is boxed.
            Admission::Ready(Ok(identity)) => {
                settle(&self.gate, &mut req, identity);
                ResponseFuture::called(self.inner.call(req))
            }
            Admission::Ready(Err(e)) => ResponseFuture::refused(self.gate.reply(&e)),
            Admission::Pending(pending) => {
                // The store must confirm the session; the request waits for
                // it inside the future, with the service made ready.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::confirming(req, ready, self.gate.clone(), pending)
            }
        }
    }
}
