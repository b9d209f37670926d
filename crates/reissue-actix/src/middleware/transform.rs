use std::fmt;
use std::rc::Rc;

use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use futures_util::future::{Ready, ready};
use reissue_core::{Access, Authenticator, Claims, Reissue, Verifier};

use super::service::ReissueService;

/// Verifies access tokens on the routes it wraps (`App::wrap`, `Scope::wrap`,
/// `Resource::wrap`).
///
/// Required by default: a request without a valid access token gets 401 (or
/// 400 for a malformed `Authorization` header). [`optional`](Self::optional)
/// lets anonymous requests through; [`require_role`](Self::require_role)
/// answers 403 `insufficient_scope` to callers without the role.
///
/// ```no_run
/// # fn f<A: reissue_core::Authenticator<Claims = reissue_core::UserClaims>>(reissue: reissue_core::Reissue<A>) {
/// use actix_web::web;
/// use reissue_actix::ReissueMiddleware;
///
/// let admin = web::scope("/admin").wrap(ReissueMiddleware::new(reissue.verifier().clone()).require_role("admin"));
/// # }
/// ```
#[must_use]
pub struct ReissueMiddleware<C> {
    verifier: Verifier<C>,
    access: Access,
}

impl<C> Clone for ReissueMiddleware<C> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            access: self.access.clone(),
        }
    }
}

impl<C> fmt::Debug for ReissueMiddleware<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReissueMiddleware")
            .field("verifier", &self.verifier)
            .field("access", &self.access)
            .finish()
    }
}

impl<C: Claims> ReissueMiddleware<C> {
    /// Requires a valid access token, checked by `verifier`
    /// (usually [`Reissue::verifier`]).
    pub fn new(verifier: Verifier<C>) -> Self {
        Self {
            verifier,
            access: Access::required(),
        }
    }

    /// Lets requests without credentials through, anonymous: handlers take
    /// `Option<AuthUser<C>>`. A token that is present but invalid is still
    /// refused, so that a client that believes it is logged in learns otherwise.
    pub fn optional(mut self) -> Self {
        self.access = self.access.optional();
        self
    }

    /// Also requires `role` ([`Claims::has_role`]); may be called more than
    /// once, and then every role is required. Anonymous requests are refused
    /// with 401 even when [`optional`](Self::optional).
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.access = self.access.role(role);
        self
    }
}

impl<A: Authenticator> From<&Reissue<A>> for ReissueMiddleware<A::Claims> {
    fn from(reissue: &Reissue<A>) -> Self {
        Self::new(reissue.verifier().clone())
    }
}

impl<S, B, C> Transform<S, ServiceRequest> for ReissueMiddleware<C>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    C: Claims,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = ReissueService<S, C>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let gate = self.verifier.gate(self.access.clone());
        ready(Ok(ReissueService::new(Rc::new(service), gate)))
    }
}
