use std::fmt;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, forward_ready};
use actix_web::{Error, HttpMessage};
use reissue_core::{Admission, Claims, Gate};

use super::future::ResponseFuture;
use crate::RequestHead;
use crate::extract::{Anonymous, Realm};
use crate::response::into_response;

/// The service [`ReissueMiddleware`](super::ReissueMiddleware) wraps around a
/// route: asks core's [`Gate`] about each request, then calls the route or
/// answers the refusal.
pub struct ReissueService<S, C> {
    service: Rc<S>,
    gate: Gate<C>,
}

impl<S, C> ReissueService<S, C> {
    pub(super) fn new(service: Rc<S>, gate: Gate<C>) -> Self {
        Self { service, gate }
    }
}

impl<S, C> fmt::Debug for ReissueService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReissueService")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl<S, B, C> Service<ServiceRequest> for ReissueService<S, C>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    C: Claims,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let admission = self.gate.admit(&RequestHead::from(req.request()));
        match admission {
            // Decided without a store round trip: nothing is awaited and
            // nothing is boxed.
            Admission::Ready(Ok(Some(identity))) => {
                req.extensions_mut().insert(identity);
                req.extensions_mut()
                    .insert(Realm(self.gate.verifier().realm()));
                ResponseFuture::inner(self.service.call(req))
            }
            Admission::Ready(Ok(None)) => {
                req.extensions_mut().insert(Anonymous(self.gate.clone()));
                ResponseFuture::inner(self.service.call(req))
            }
            Admission::Ready(Err(e)) => {
                ResponseFuture::refused(req.into_response(into_response(self.gate.reply(&e))))
            }
            Admission::Pending(pending) => {
                // The store must confirm the session of the verified token.
                let service = Rc::clone(&self.service);
                let gate = self.gate.clone();
                ResponseFuture::boxed(async move {
                    match pending.confirm().await {
                        Ok(identity) => {
                            req.extensions_mut().insert(identity);
                            req.extensions_mut().insert(Realm(gate.verifier().realm()));
                            service
                                .call(req)
                                .await
                                .map(ServiceResponse::map_into_left_body)
                        }
                        Err(e) => Ok(req
                            .into_response(into_response(gate.reply(&e)))
                            .map_into_right_body()),
                    }
                })
            }
        }
    }
}
