//! The gate of a protected route: one call that verifies a request's token
//! once and decides, or hands back the already-verified identity for the one
//! store round trip that strict mode (or instant mode out of sync) needs.
//! Both adapters' middleware only ask the gate and await what it returns;
//! neither holds a copy of "verify, then maybe confirm in the store".

use std::sync::Arc;

use crate::http::request::HttpRequest;
use crate::{Claims, Error, Identity, Reply, Result, Verifier};

/// What a protected route asks of a request: a valid access token (or, on
/// optional routes, none at all) and roles. Both adapters' middleware hold one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Access {
    optional: bool,
    roles: Vec<String>,
}

impl Access {
    /// A valid access token is required (the default).
    pub fn required() -> Self {
        Self::default()
    }

    /// Requests without credentials pass anonymously; a token that is present
    /// must still be valid. With a required role, anonymous requests are refused.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The caller must hold `role` (403 `insufficient_scope` otherwise).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Whether anonymous requests pass.
    pub fn is_optional(&self) -> bool {
        self.optional
    }
}

/// A protected route's gate: a [`Verifier`] and the route's [`Access`] rule.
/// Cheap to clone (one [`Arc`]); made by [`Verifier::gate`].
pub struct Gate<C> {
    inner: Arc<GateInner<C>>,
}

struct GateInner<C> {
    verifier: Verifier<C>,
    access: Access,
}

impl<C> Clone for Gate<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<C> std::fmt::Debug for Gate<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("verifier", &self.inner.verifier)
            .field("access", &self.inner.access)
            .finish()
    }
}

/// What a [`Gate`] says about a request.
#[must_use = "an admission decides whether the request goes on"]
pub enum Admission<C> {
    /// Decided without waiting: `Ok(Some(identity))` goes on as that user,
    /// `Ok(None)` goes on anonymously (an optional route without
    /// credentials), `Err` is refused.
    Ready(Result<Option<Arc<Identity<C>>>>),
    /// The token verified, and only the store can say whether its session
    /// lives: await [`Pending::confirm`].
    Pending(Pending<C>),
}

impl<C> std::fmt::Debug for Admission<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready(Ok(Some(_))) => f.write_str("Admission::Ready(Ok(Some(..)))"),
            Self::Ready(Ok(None)) => f.write_str("Admission::Ready(Ok(None))"),
            Self::Ready(Err(e)) => f.debug_tuple("Admission::Ready").field(e).finish(),
            Self::Pending(_) => f.write_str("Admission::Pending(..)"),
        }
    }
}

/// A request whose token verified, waiting for the store to confirm its
/// session. Holds the verified identity: confirming never verifies again.
#[must_use = "a pending admission decides nothing until confirmed"]
pub struct Pending<C> {
    gate: Gate<C>,
    identity: Arc<Identity<C>>,
}

impl<C> std::fmt::Debug for Pending<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("session_id", &self.identity.session_id)
            .finish_non_exhaustive()
    }
}

impl<C: Claims> Gate<C> {
    /// The gate of a route that `verifier` protects with `access`.
    pub fn new(verifier: Verifier<C>, access: Access) -> Self {
        Self {
            inner: Arc::new(GateInner { verifier, access }),
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier<C> {
        &self.inner.verifier
    }

    /// The access rule.
    pub fn access(&self) -> &Access {
        &self.inner.access
    }

    /// Verifies the request's bearer token (once) and decides what can be
    /// decided without waiting: the token, the session as far as this
    /// instance knows it, the roles.
    pub fn admit(&self, req: &impl HttpRequest) -> Admission<C> {
        let access = &self.inner.access;
        let identity = match self.inner.verifier.identify_bearer(req) {
            Ok(identity) => identity,
            Err(Error::MissingToken) if access.optional && access.roles.is_empty() => {
                return Admission::Ready(Ok(None));
            }
            Err(e) => return Admission::Ready(Err(e)),
        };
        match self.inner.verifier.live_now(&identity) {
            // An ended session is 401 whatever roles the token claims.
            Some(live) => Admission::Ready(live.and_then(|()| self.with_roles(identity).map(Some))),
            None => Admission::Pending(Pending {
                gate: self.clone(),
                identity,
            }),
        }
    }

    /// [`Gate::admit`], awaited to the end.
    pub async fn decide(&self, req: &impl HttpRequest) -> Result<Option<Arc<Identity<C>>>> {
        match self.admit(req) {
            Admission::Ready(decided) => decided,
            Admission::Pending(pending) => pending.confirm().await.map(Some),
        }
    }

    fn with_roles(&self, identity: Arc<Identity<C>>) -> Result<Arc<Identity<C>>> {
        identity.require_roles(&self.inner.access.roles)?;
        Ok(identity)
    }

    /// Renders an error with the verifier's realm.
    pub fn reply(&self, error: &Error) -> Reply {
        self.inner.verifier.reply(error)
    }
}

impl<C: Claims> Pending<C> {
    /// The verified identity whose session waits for the store.
    pub fn identity(&self) -> &Identity<C> {
        &self.identity
    }

    /// Asks the store whether the session lives (instant mode's outage rule
    /// applied), then checks the roles.
    pub async fn confirm(self) -> Result<Arc<Identity<C>>> {
        let Self { gate, identity } = self;
        gate.inner.verifier.confirm_in_store(&identity).await?;
        gate.with_roles(identity)
    }
}
