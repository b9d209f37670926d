//! Verifying access tokens on protected routes.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::request::{HttpRequest, bearer_token};
use crate::store::RefreshStore;
use crate::{Claims, Error, Reply, Result, SessionId, TokenCodec, TokenRejection};

/// The verified identity behind an access token: what handlers receive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity<C> {
    /// The user id (`sub`).
    pub user_id: String,
    /// The session id (`sid`).
    pub session_id: SessionId,
    /// The token id (`jti`).
    pub token_id: String,
    /// When the access token expires, Unix seconds.
    pub expires_at: u64,
    /// The application's claims.
    pub claims: C,
}

impl<C: Claims> Identity<C> {
    /// Fails with [`Error::InsufficientScope`] (403) unless every role is held.
    pub fn require_roles<S: AsRef<str>>(&self, roles: &[S]) -> Result<()> {
        match roles.iter().find(|r| !self.claims.has_role(r.as_ref())) {
            Some(missing) => Err(Error::InsufficientScope(missing.as_ref().to_owned())),
            None => Ok(()),
        }
    }
}

pub(crate) struct VerifierInner {
    pub(crate) codec: TokenCodec,
    pub(crate) store: Option<Arc<dyn RefreshStore>>,
    pub(crate) strict: bool,
    pub(crate) realm: String,
}

/// Verifies access tokens: what the tower layer and the actix middleware call
/// on every protected request. Cheap to clone.
pub struct Verifier<C> {
    pub(crate) inner: Arc<VerifierInner>,
    _claims: PhantomData<fn() -> C>,
}

impl<C> Clone for Verifier<C> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), _claims: PhantomData }
    }
}

impl<C> std::fmt::Debug for Verifier<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("codec", &self.inner.codec)
            .field("strict", &self.inner.strict)
            .field("realm", &self.inner.realm)
            .finish_non_exhaustive()
    }
}

impl<C: Claims> Verifier<C> {
    pub(crate) fn from_inner(inner: Arc<VerifierInner>) -> Self {
        Self { inner, _claims: PhantomData }
    }

    /// A stateless verifier for a service that only checks tokens (a resource
    /// server); sessions are managed by [`Reissue`](crate::Reissue).
    pub fn stateless(codec: TokenCodec, realm: impl Into<String>) -> Self {
        Self::from_inner(Arc::new(VerifierInner { codec, store: None, strict: false, realm: realm.into() }))
    }

    /// Verifies a token string: signature, type, issuer, audience, lifetimes.
    /// Does not consult the store.
    pub fn verify(&self, token: &str) -> Result<Identity<C>> {
        let c = self.inner.codec.verify_access::<C>(token)?;
        Ok(Identity { user_id: c.sub, session_id: c.sid, token_id: c.jti, expires_at: c.exp, claims: c.app })
    }

    /// Authenticates a request by its bearer token; in strict mode also checks
    /// that the session is live (503 while the store is unreachable).
    pub async fn authenticate(&self, req: &impl HttpRequest) -> Result<Identity<C>> {
        let identity = self.verify(bearer_token(req)?)?;
        if self.inner.strict {
            if let Some(store) = &self.inner.store {
                if !store.is_live(&identity.user_id, &identity.session_id).await? {
                    return Err(Error::InvalidToken(TokenRejection::SessionRevoked));
                }
            }
        }
        Ok(identity)
    }

    /// Like [`Verifier::authenticate`], but a request without credentials is
    /// anonymous (`None`) rather than an error. A token that is present but
    /// invalid is still an error: the client believes it is logged in and
    /// should learn otherwise.
    pub async fn authenticate_optional(&self, req: &impl HttpRequest) -> Result<Option<Identity<C>>> {
        match self.authenticate(req).await {
            Err(Error::MissingToken) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Renders an error with this verifier's realm.
    pub fn reply(&self, error: &Error) -> Reply {
        error.reply(&self.inner.realm)
    }

    /// Whether strict revocation is on.
    pub fn is_strict(&self) -> bool {
        self.inner.strict
    }
}
