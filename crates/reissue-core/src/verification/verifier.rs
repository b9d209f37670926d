//! Verifying access tokens on protected routes.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::clock::now_secs;
use crate::http::request::{HttpRequest, bearer_candidate, bearer_token};
use crate::verification::gate::{Access, Gate};
use crate::verification::live_batch::LiveChecks;
use crate::verification::token_cache::TokenCache;
use crate::{
    Claims, Error, Reply, Result, RevocationMode, Revocations, SessionId, TokenCodec,
    TokenRejection,
};

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
    /// When the user last proved themselves in this session (`auth_time`),
    /// Unix seconds; `None` for a token minted before reissue set it.
    pub auth_time: Option<u64>,
    /// How they did (`amr`, RFC 8176); empty when not known.
    pub amr: Vec<String>,
    /// The application's claims.
    pub claims: C,
}

impl<C: Claims> Identity<C> {
    /// [`require_recent_auth_at`](Self::require_recent_auth_at) now, by the
    /// system clock: what the step-up guards of the adapters call.
    pub fn require_recent_auth(&self, max_age: u64) -> Result<()> {
        self.require_recent_auth_at(max_age, crate::clock::now_secs())
    }

    /// Fails with [`Error::InsufficientUserAuthentication`] (401, RFC 9470)
    /// unless the user proved themselves within the last `max_age` seconds
    /// by `now` (Unix seconds). A token without `auth_time` is not recent.
    /// (One whose `auth_time` lies in the future never verifies.)
    pub fn require_recent_auth_at(&self, max_age: u64, now: u64) -> Result<()> {
        match self.auth_time {
            Some(t) if now.saturating_sub(t) <= max_age => Ok(()),
            _ => Err(Error::InsufficientUserAuthentication { max_age }),
        }
    }

    /// Fails with [`Error::InsufficientScope`] (403) unless every role is held.
    pub fn require_roles<S: AsRef<str>>(&self, roles: &[S]) -> Result<()> {
        match roles.iter().find(|r| !self.claims.has_role(r.as_ref())) {
            Some(missing) => Err(Error::InsufficientScope(missing.as_ref().to_owned())),
            None => Ok(()),
        }
    }
}

/// Verified tokens remembered per verifier unless configured otherwise.
pub(crate) const DEFAULT_CACHE_CAPACITY: usize = 8192;

pub(crate) struct VerifierInner {
    pub(crate) codec: TokenCodec,
    /// The store's liveness checks, batched across concurrent requests.
    pub(crate) store: Option<LiveChecks>,
    pub(crate) mode: RevocationMode,
    /// Instant mode: the ended sessions this instance has heard of.
    pub(crate) revocations: Option<Arc<Revocations>>,
    pub(crate) fail_closed_while_unsure: bool,
    pub(crate) realm: Arc<str>,
}

/// What a protected request's session is known to be, without waiting.
enum Liveness {
    Live,
    Ended,
    /// Unknown, and the store is down: instant mode's fail-closed answer.
    Unavailable,
    /// Only the store can tell.
    AskStore,
}

/// Verifies access tokens: what the tower layer and the actix middleware call
/// on every protected request. Cheap to clone.
pub struct Verifier<C> {
    pub(crate) inner: Arc<VerifierInner>,
    cache: Option<Arc<TokenCache<Arc<Identity<C>>>>>,
    _claims: PhantomData<fn() -> C>,
}

impl<C> Clone for Verifier<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            cache: self.cache.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> std::fmt::Debug for Verifier<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("codec", &self.inner.codec)
            .field("mode", &self.inner.mode)
            .field("realm", &self.inner.realm)
            .finish_non_exhaustive()
    }
}

impl<C: Claims> Verifier<C> {
    pub(crate) fn from_inner(inner: Arc<VerifierInner>, cache_capacity: usize) -> Self {
        Self {
            inner,
            cache: TokenCache::new(cache_capacity).map(Arc::new),
            _claims: PhantomData,
        }
    }

    /// A stateless verifier for a service that only checks tokens (a resource
    /// server); sessions are managed by [`Reissue`](crate::Reissue).
    pub fn stateless(codec: TokenCodec, realm: impl Into<String>) -> Self {
        Self::from_inner(
            Arc::new(VerifierInner {
                codec,
                store: None,
                mode: RevocationMode::Stateless,
                revocations: None,
                fail_closed_while_unsure: false,
                realm: realm.into().into(),
            }),
            DEFAULT_CACHE_CAPACITY,
        )
    }

    /// Verifies a token string: signature, type, issuer, audience, lifetimes.
    /// Does not consult the store.
    ///
    /// Tokens that verified are remembered until they expire (see
    /// [`Config::verified_token_cache`](crate::Config::verified_token_cache)),
    /// so a client presenting the same token again costs a map look-up and
    /// the clone of an [`Arc`].
    pub fn verify(&self, token: &str) -> Result<Arc<Identity<C>>> {
        if let Some(identity) = self.cached(token.as_bytes()) {
            return Ok(identity);
        }
        self.verify_and_remember(token)
    }

    /// The identity of a token that verified before and has not expired.
    fn cached(&self, token: &[u8]) -> Option<Arc<Identity<C>>> {
        let cache = self.cache.as_ref()?;
        cache.get(token, now_secs(), self.inner.codec.leeway())
    }

    fn verify_and_remember(&self, token: &str) -> Result<Arc<Identity<C>>> {
        let c = self.inner.codec.verify_access::<C>(token)?;
        let identity = Arc::new(Identity {
            user_id: c.sub,
            session_id: c.sid,
            token_id: c.jti,
            expires_at: c.exp,
            auth_time: c.auth_time,
            amr: c.amr,
            claims: c.app,
        });
        if let Some(cache) = &self.cache {
            cache.insert(token, identity.clone(), identity.expires_at, now_secs());
        }
        Ok(identity)
    }

    /// The identity behind a request's bearer token. A token byte-identical
    /// to one that verified is found in the cache before the header is
    /// checked character by character: it passed those checks when it was
    /// verified, and the rest of the header is ASCII whitespace and the
    /// scheme, so the full reading would accept it too.
    pub(crate) fn identify_bearer(&self, req: &impl HttpRequest) -> Result<Arc<Identity<C>>> {
        if let Some(identity) = bearer_candidate(req).and_then(|t| self.cached(t)) {
            return Ok(identity);
        }
        let token = bearer_token(req)?;
        if let Some(identity) = self.cached(token.as_bytes()) {
            return Ok(identity);
        }
        self.verify_and_remember(token)
    }

    /// Authenticates a request by its bearer token, and checks its session
    /// as the revocation mode says: not at all (stateless), against what the
    /// instance has heard (instant), or in the store (strict; 503 while it is
    /// unreachable).
    pub async fn authenticate(&self, req: &impl HttpRequest) -> Result<Arc<Identity<C>>> {
        let identity = self.identify_bearer(req)?;
        self.check_live(&identity).await?;
        Ok(identity)
    }

    /// Authenticates a request and checks in the store that its session is
    /// live, whatever the mode: for the endpoints that act on a user's
    /// sessions, which a leftover access token of an ended session must not
    /// reach even in stateless mode.
    pub async fn authenticate_live(&self, req: &impl HttpRequest) -> Result<Arc<Identity<C>>> {
        let identity = self.identify_bearer(req)?;
        if let Liveness::Ended = self.liveness_now(&identity) {
            return Err(Error::InvalidToken(TokenRejection::SessionRevoked));
        }
        self.ask_store(&identity).await?;
        Ok(identity)
    }

    fn liveness_now(&self, identity: &Identity<C>) -> Liveness {
        match (self.inner.mode, &self.inner.revocations) {
            (RevocationMode::Strict, Some(r)) if r.contains(&identity.session_id) => {
                Liveness::Ended
            }
            // The lease first: while it holds, every ending that returned
            // reached this set before it returned (DESIGN.md, "Strict
            // revocation by leases").
            (RevocationMode::Strict, Some(r)) if r.holds_lease() && r.is_synced() => Liveness::Live,
            (RevocationMode::Strict, _) => Liveness::AskStore,
            (RevocationMode::Instant, Some(r)) => {
                if r.contains(&identity.session_id) {
                    Liveness::Ended
                } else if r.is_synced() {
                    Liveness::Live
                } else if r.store_recently_failed() {
                    if self.inner.fail_closed_while_unsure {
                        Liveness::Unavailable
                    } else {
                        Liveness::Live
                    }
                } else {
                    Liveness::AskStore
                }
            }
            _ => Liveness::Live,
        }
    }

    /// Whether the session lives, as far as this instance can tell without
    /// waiting; `None` when only the store can.
    pub(crate) fn live_now(&self, identity: &Identity<C>) -> Option<Result<()>> {
        match self.liveness_now(identity) {
            Liveness::Live => Some(Ok(())),
            Liveness::Ended => Some(Err(Error::InvalidToken(TokenRejection::SessionRevoked))),
            Liveness::Unavailable => Some(Err(Error::unavailable(
                "the revocation feed is interrupted and the store is unreachable",
            ))),
            Liveness::AskStore => None,
        }
    }

    async fn check_live(&self, identity: &Identity<C>) -> Result<()> {
        match self.live_now(identity) {
            Some(decided) => decided,
            None => self.confirm_in_store(identity).await,
        }
    }

    /// The store's answer on a session only the store can vouch for, with
    /// instant mode's outage rule applied.
    pub(crate) async fn confirm_in_store(&self, identity: &Identity<C>) -> Result<()> {
        match (self.ask_store(identity).await, &self.inner.revocations) {
            // Instant mode, out of sync, store down: the outage rule.
            // (Strict mode answers 503, whatever that setting says.)
            (Err(Error::Unavailable(e)), Some(r)) if self.inner.mode == RevocationMode::Instant => {
                r.store_failed();
                if self.inner.fail_closed_while_unsure {
                    Err(Error::Unavailable(e))
                } else {
                    Ok(())
                }
            }
            (result, _) => result,
        }
    }

    async fn ask_store(&self, identity: &Identity<C>) -> Result<()> {
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        if store
            .is_live(&identity.user_id, &identity.session_id)
            .await?
        {
            return Ok(());
        }
        if let Some(r) = &self.inner.revocations {
            r.insert(identity.session_id.clone());
        }
        Err(Error::InvalidToken(TokenRejection::SessionRevoked))
    }

    /// Like [`Verifier::authenticate`], but a request without credentials is
    /// anonymous (`None`) rather than an error. A token that is present but
    /// invalid is still an error: the client believes it is logged in and
    /// should learn otherwise.
    pub async fn authenticate_optional(
        &self,
        req: &impl HttpRequest,
    ) -> Result<Option<Arc<Identity<C>>>> {
        match self.authenticate(req).await {
            Err(Error::MissingToken) => Ok(None),
            other => other.map(Some),
        }
    }

    /// The gate of a protected route with this access rule: what both
    /// adapters' middleware hold, and ask about every request.
    pub fn gate(&self, access: Access) -> Gate<C> {
        Gate::new(self.clone(), access)
    }

    /// The realm its challenges name, shared: the step-up guards render
    /// their 401 with it.
    pub fn realm(&self) -> Arc<str> {
        self.inner.realm.clone()
    }

    /// Renders an error with this verifier's realm.
    pub fn reply(&self, error: &Error) -> Reply {
        error.reply(&self.inner.realm)
    }

    /// The revocation mode.
    pub fn revocation_mode(&self) -> RevocationMode {
        self.inner.mode
    }

    /// What this instance knows of ended sessions: in instant mode, from the
    /// store's feed (and what it ended itself); in strict mode, the sessions
    /// it has seen end, remembered until their access tokens expire. `None`
    /// in stateless mode.
    pub fn revocations(&self) -> Option<&Arc<Revocations>> {
        self.inner.revocations.as_ref()
    }
}
