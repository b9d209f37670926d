use std::fmt;

use reissue_core::{Access, Claims, Verifier};
use tower_layer::Layer;

use super::ReissueService;

/// Verifies the bearer access token of every request and puts the
/// [`Identity`](reissue_core::Identity) in the request extensions; see the
/// [module docs](crate#protecting-routes).
///
/// Required by default: a request without a valid token is answered by the
/// layer (401, 400, 403 or 503, per CONTRACT.md) and never reaches the inner
/// service.
#[must_use]
pub struct ReissueLayer<C> {
    verifier: Verifier<C>,
    access: Access,
}

impl<C: Claims> ReissueLayer<C> {
    /// A layer verifying tokens with `verifier` (e.g. `reissue.verifier().clone()`).
    ///
    /// On an axum router, `route_layer` puts it on the routes above it only
    /// (an unknown path stays 404, not 401):
    ///
    /// ```
    /// # #[cfg(feature = "axum")]
    /// # mod example {
    /// use axum::Router;
    /// use axum::routing::get;
    /// use reissue_core::{UserClaims, Verifier};
    /// use reissue_tower::{AuthUser, ReissueLayer};
    ///
    /// async fn me(user: AuthUser<UserClaims>) -> String {
    ///     user.user_id.clone()
    /// }
    ///
    /// pub fn routes(verifier: Verifier<UserClaims>) -> Router {
    ///     let admin = Router::new()
    ///         .route("/admin/users", get(me))
    ///         .route_layer(ReissueLayer::new(verifier.clone()).require_role("admin"));
    ///     Router::new()
    ///         .route("/me", get(me))
    ///         .route_layer(ReissueLayer::new(verifier))
    ///         .merge(admin)
    /// }
    /// # }
    /// ```
    pub fn new(verifier: Verifier<C>) -> Self {
        Self {
            verifier,
            access: Access::required(),
        }
    }

    /// Lets requests without credentials through, anonymous: no
    /// [`Identity`](reissue_core::Identity) is inserted. A token that is
    /// present but invalid is still refused (401): the client believes it is
    /// logged in and should learn otherwise.
    ///
    /// A layer that also [requires a role](Self::require_role) refuses
    /// anonymous requests all the same (401): a role needs a user.
    pub fn optional(mut self) -> Self {
        self.access = self.access.optional();
        self
    }

    /// Requires a role (403 `insufficient_scope` when the user lacks it).
    /// Called more than once, every role is required.
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.access = self.access.role(role);
        self
    }
}

impl<C> Clone for ReissueLayer<C> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            access: self.access.clone(),
        }
    }
}

impl<C> fmt::Debug for ReissueLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReissueLayer")
            .field("verifier", &self.verifier)
            .field("access", &self.access)
            .finish()
    }
}

impl<S, C: Claims> Layer<S> for ReissueLayer<C> {
    type Service = ReissueService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ReissueService::new(inner, self.verifier.gate(self.access.clone()))
    }
}
