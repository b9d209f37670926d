use std::fmt;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, forward_ready};
use actix_web::{Error, HttpMessage};
use reissue_core::{Access, Claims, Identity, Reply, Result, Verifier};

use super::future::ResponseFuture;
use crate::RequestHead;
use crate::extract::Anonymous;
use crate::response::into_response;

/// What a [`ReissueMiddleware`](super::ReissueMiddleware) asks of a request.
pub(super) struct Requirement<C> {
    pub(super) verifier: Verifier<C>,
    pub(super) access: Access,
}

impl<C: Claims> Requirement<C> {
    /// Applies core's decision: the identity (or the anonymous marker) into the
    /// extensions, or the refusal as a reply.
    fn settle(
        &self,
        req: &ServiceRequest,
        decision: Result<Option<Identity<C>>>,
    ) -> Result<(), Reply> {
        match decision {
            Ok(Some(identity)) => {
                req.extensions_mut().insert(identity);
            }
            Ok(None) => {
                req.extensions_mut()
                    .insert(Anonymous(self.verifier.clone()));
            }
            Err(e) => return Err(self.verifier.reply(&e)),
        }
        Ok(())
    }
}

/// The service [`ReissueMiddleware`](super::ReissueMiddleware) wraps around a
/// route: asks core to admit each request, then calls the route or answers
/// the refusal.
pub struct ReissueService<S, C> {
    service: Rc<S>,
    requirement: Rc<Requirement<C>>,
}

impl<S, C> ReissueService<S, C> {
    pub(super) fn new(service: Rc<S>, requirement: Rc<Requirement<C>>) -> Self {
        Self {
            service,
            requirement,
        }
    }
}

impl<S, C> fmt::Debug for ReissueService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReissueService")
            .field("verifier", &self.requirement.verifier)
            .field("access", &self.requirement.access)
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
        let requirement = &self.requirement;
        let head = RequestHead::from(req.request());
        // Without strict revocation the decision needs no store round trip:
        // nothing is awaited and nothing is boxed.
        if let Some(decision) = requirement.verifier.admit_now(&head, &requirement.access) {
            return match requirement.settle(&req, decision) {
                Ok(()) => ResponseFuture::inner(self.service.call(req)),
                Err(reply) => ResponseFuture::refused(req.into_response(into_response(reply))),
            };
        }
        let service = Rc::clone(&self.service);
        let requirement = Rc::clone(requirement);
        ResponseFuture::boxed(async move {
            let decision = {
                let head = RequestHead::from(req.request());
                requirement.verifier.admit(&head, &requirement.access).await
            };
            match requirement.settle(&req, decision) {
                Ok(()) => service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_left_body),
                Err(reply) => Ok(req
                    .into_response(into_response(reply))
                    .map_into_right_body()),
            }
        })
    }
}
