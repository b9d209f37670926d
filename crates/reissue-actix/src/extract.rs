//! Extractors: the authenticated caller, and the request body for the endpoints.

use std::future::Future;
use std::net::IpAddr;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use actix_web::dev::Payload;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::Stream;
use futures_util::future::{Ready, ready as ready_future};
use reissue_core::{Claims, Error, Gate, Identity, MAX_BODY_LEN};

use crate::{ReissueError, RequestHead};

/// Left in the extensions by an optional middleware for an anonymous request,
/// so that [`AuthUser`] answers 401 (with the verifier's realm) rather than
/// the 500 of a missing middleware.
pub(crate) struct Anonymous<C>(pub(crate) Gate<C>);

/// The caller of a route behind [`ReissueMiddleware`](crate::ReissueMiddleware):
/// the verified [`Identity`] of the access token. Derefs to it.
///
/// On a route where login is optional, take `Option<AuthUser<C>>`: it is
/// `None` exactly when no identity is attached to the request. (actix-web
/// turns every extractor error into `None` there, so that includes the
/// missing-middleware mistake; take `AuthUser<C>` on required routes to
/// have that reported.)
///
/// It holds the middleware's `Arc<Identity<C>>`: extracting it clones an
/// `Arc`, never the identity.
///
/// Without the middleware, extracting `AuthUser<C>` fails with a 500 whose
/// message says to add it.
///
/// ```no_run
/// use reissue_actix::AuthUser;
/// use reissue_core::UserClaims;
///
/// async fn me(user: AuthUser<UserClaims>) -> String {
///     format!("{} ({})", user.user_id, user.claims.email)
/// }
///
/// async fn home(user: Option<AuthUser<UserClaims>>) -> String {
///     match user {
///         Some(user) => format!("welcome back, {}", user.claims.email),
///         None => "welcome, stranger".to_owned(),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser<C>(pub Arc<Identity<C>>);

impl<C> AuthUser<C> {
    /// The identity.
    pub fn into_inner(self) -> Arc<Identity<C>> {
        self.0
    }
}

impl<C> Deref for AuthUser<C> {
    type Target = Identity<C>;

    fn deref(&self) -> &Identity<C> {
        &self.0
    }
}

impl<C: Claims> FromRequest for AuthUser<C> {
    type Error = ReissueError;
    type Future = Ready<Result<Self, ReissueError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        ready_future(
            if let Some(identity) = extensions.get::<Arc<Identity<C>>>() {
                Ok(Self(identity.clone()))
            } else if let Some(Anonymous(gate)) = extensions.get::<Anonymous<C>>() {
                Err(ReissueError::new(Error::MissingToken, gate.verifier()))
            } else {
                Err(ReissueError::missing_middleware::<C>())
            },
        )
    }
}

/// The realm of the middleware that admitted the request, for the step-up
/// guard's challenge.
#[derive(Clone)]
pub(crate) struct Realm(pub(crate) Arc<str>);

/// [`AuthUser`] on a route that needs a recent login (step-up, RFC 9470):
/// the user proved themselves (logged in or reauthenticated) within the
/// last `MAX_AGE` seconds, by the token's `auth_time`. Otherwise 401
/// `insufficient_user_authentication` with
/// `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=MAX_AGE`.
///
/// ```no_run
/// use reissue_actix::RecentAuth;
/// use reissue_core::UserClaims;
///
/// async fn change_password(user: RecentAuth<UserClaims, 300>) -> String {
///     format!("{} may change the password", user.user_id)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentAuth<C, const MAX_AGE: u64>(pub AuthUser<C>);

impl<C, const MAX_AGE: u64> Deref for RecentAuth<C, MAX_AGE> {
    type Target = Identity<C>;

    fn deref(&self) -> &Identity<C> {
        &self.0
    }
}

impl<C: Claims, const MAX_AGE: u64> FromRequest for RecentAuth<C, MAX_AGE> {
    type Error = ReissueError;
    type Future = Ready<Result<Self, ReissueError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        let Some(identity) = extensions.get::<Arc<Identity<C>>>() else {
            drop(extensions);
            return AuthUser::<C>::from_request(req, &mut Payload::None)
                .into_inner()
                .map(Self)
                .map_or_else(|e| ready_future(Err(e)), |u| ready_future(Ok(u)));
        };
        ready_future(match identity.require_recent_auth(MAX_AGE) {
            Ok(()) => Ok(Self(AuthUser(identity.clone()))),
            Err(e) => {
                let realm = extensions
                    .get::<Realm>()
                    .map_or(reissue_core::DEFAULT_REALM, |r| &*r.0);
                Err(ReissueError::with_realm(e, realm))
            }
        })
    }
}

/// A request with its body read into memory, as reissue-core's endpoint
/// functions take it (`&impl HttpRequest` and `&[u8]`).
///
/// Extraction never fails on the body's content: at most
/// [`MAX_BODY_LEN`]` + 1` bytes are read, whatever the `Content-Type`, and core
/// decides what is acceptable (400 `invalid_request` JSON), instead of
/// actix-web's plain-text payload errors. A body that cannot be read at all
/// (the connection broke) is 400 `invalid_request`.
///
/// ```no_run
/// use actix_web::HttpResponse;
/// use actix_web::web::ThinData;
/// use reissue_actix::{BufferedRequest, into_response};
/// # use reissue_core::{Authenticator, Reissue};
///
/// async fn login<A: Authenticator>(reissue: ThinData<Reissue<A>>, req: BufferedRequest) -> HttpResponse {
///     into_response(reissue.serve_login(&req, req.body()).await)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct BufferedRequest {
    req: HttpRequest,
    body: Bytes,
}

impl BufferedRequest {
    /// The body, truncated after `MAX_BODY_LEN + 1` bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The request line, headers and extensions.
    pub fn request(&self) -> &HttpRequest {
        &self.req
    }
}

impl reissue_core::HttpRequest for BufferedRequest {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.req
            .headers()
            .get_all(name)
            .map(|value| value.as_bytes())
    }

    fn peer_addr(&self) -> Option<IpAddr> {
        reissue_core::HttpRequest::peer_addr(&RequestHead::from(&self.req))
    }

    fn path(&self) -> Option<&str> {
        Some(self.req.path())
    }
}

impl FromRequest for BufferedRequest {
    type Error = ReissueError;
    type Future = BufferedRequestFuture;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        BufferedRequestFuture {
            req: Some(req.clone()),
            payload: payload.take(),
            body: BytesMut::new(),
        }
    }
}

/// Reads a [`BufferedRequest`].
pub struct BufferedRequestFuture {
    req: Option<HttpRequest>,
    payload: Payload,
    body: BytesMut,
}

impl std::fmt::Debug for BufferedRequestFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedRequestFuture")
            .field("read", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Future for BufferedRequestFuture {
    type Output = Result<BufferedRequest, ReissueError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while this.body.len() <= MAX_BODY_LEN {
            match ready!(Pin::new(&mut this.payload).poll_next(cx)) {
                Some(Ok(chunk)) => {
                    // One byte past the limit is enough for core to see that
                    // the body is too large; the rest is never read or held.
                    let take = chunk.len().min(MAX_BODY_LEN + 1 - this.body.len());
                    this.body.extend_from_slice(&chunk[..take]);
                }
                Some(Err(_)) => {
                    let error = Error::InvalidRequest("the request body could not be read".into());
                    return Poll::Ready(Err(error.into()));
                }
                None => break,
            }
        }
        let req = this
            .req
            .take()
            .expect("BufferedRequestFuture polled after completion");
        Poll::Ready(Ok(BufferedRequest {
            req,
            body: std::mem::take(&mut this.body).freeze(),
        }))
    }
}
