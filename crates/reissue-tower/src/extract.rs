//! axum extractors: the authenticated user, and a buffered request for
//! core's endpoint functions.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http::request::Parts;
use http_body_util::BodyExt;
use reissue_core::{Claims, Error, HttpRequest, Identity, MAX_BODY_LEN, Reply};

use crate::ReplyResponse;
use crate::auth::Anonymous;

/// The authenticated user of a request that passed [`ReissueLayer`](crate::ReissueLayer).
///
/// `Option<AuthUser<C>>` serves routes where login is optional (a layer with
/// [`optional`](crate::ReissueLayer::optional)): `None` for an anonymous request.
///
/// It holds the layer's `Arc<Identity<C>>`: extracting it clones an `Arc`,
/// never the identity.
///
/// Without the layer on the route, extraction fails with a 500 whose message
/// says to add it.
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

/// Why [`AuthUser`] could not be extracted: an anonymous request on a route
/// that needs a user (401), or no layer on the route (500, a programming
/// mistake whose message says what to add). Like axum's own rejections, it
/// tells its [`status`](Self::status) and [`body_text`](Self::body_text).
#[derive(Debug)]
pub struct AuthUserRejection {
    /// What the log and `Display` say.
    message: String,
    /// What the client gets: core's JSON error.
    reply: Reply,
}

impl AuthUserRejection {
    fn missing_layer<C>() -> Self {
        let message = format!(
            "no reissue identity with claims `{}` on this request: add `reissue_tower::ReissueLayer` to this \
             route (e.g. `.route_layer(ReissueLayer::new(verifier))`), built from the verifier of the same claims",
            std::any::type_name::<C>()
        );
        let reply = Error::Misconfigured(message.clone().into()).reply(reissue_core::DEFAULT_REALM);
        Self { message, reply }
    }

    fn anonymous(reply: Reply) -> Self {
        Self {
            message: "a bearer token is required".to_owned(),
            reply,
        }
    }

    /// The status of the response this rejection becomes: 401 for an
    /// anonymous request on a route that needs a user, 500 for a route
    /// without the layer.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The body of the response this rejection becomes: core's JSON error
    /// (`{"error": ..., "error_description": ...}`).
    pub fn body_text(&self) -> String {
        self.reply.body.clone().unwrap_or_default()
    }
}

impl fmt::Display for AuthUserRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AuthUserRejection {}

impl IntoResponse for AuthUserRejection {
    fn into_response(self) -> Response {
        ReplyResponse(self.reply).into_response()
    }
}

impl<S: Send + Sync, C: Claims> FromRequestParts<S> for AuthUser<C> {
    type Rejection = AuthUserRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match <Self as OptionalFromRequestParts<S>>::from_request_parts(parts, state).await? {
            Some(user) => Ok(user),
            None => {
                let anonymous = parts
                    .extensions
                    .get::<Anonymous<C>>()
                    .expect("checked by the optional extractor");
                Err(AuthUserRejection::anonymous(
                    anonymous.gate.reply(&Error::MissingToken),
                ))
            }
        }
    }
}

impl<S: Send + Sync, C: Claims> OptionalFromRequestParts<S> for AuthUser<C> {
    type Rejection = AuthUserRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(identity) = parts.extensions.get::<Arc<Identity<C>>>() {
            Ok(Some(Self(identity.clone())))
        } else if parts.extensions.get::<Anonymous<C>>().is_some() {
            Ok(None)
        } else {
            Err(AuthUserRejection::missing_layer::<C>())
        }
    }
}

/// The realm of the layer that admitted the request, for the step-up
/// guard's challenge.
#[derive(Clone)]
pub(crate) struct Realm(pub(crate) Arc<str>);

/// [`AuthUser`] on a route that needs a recent login (step-up, RFC 9470):
/// the user proved themselves (logged in or reauthenticated) within the
/// last `MAX_AGE` seconds, by the token's `auth_time`. Otherwise 401
/// `insufficient_user_authentication` with
/// `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=MAX_AGE`:
/// the client asks for the password again (`POST /auth/reauthenticate`)
/// and retries with the new access token.
///
/// ```no_run
/// use reissue_core::UserClaims;
/// use reissue_tower::RecentAuth;
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

impl<S: Send + Sync, C: Claims, const MAX_AGE: u64> FromRequestParts<S> for RecentAuth<C, MAX_AGE> {
    type Rejection = AuthUserRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = <AuthUser<C> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        match user.require_recent_auth(MAX_AGE) {
            Ok(()) => Ok(Self(user)),
            Err(e) => {
                let realm = parts
                    .extensions
                    .get::<Realm>()
                    .map_or(reissue_core::DEFAULT_REALM, |r| &*r.0);
                Err(AuthUserRejection {
                    message: e.to_string(),
                    reply: e.reply(realm),
                })
            }
        }
    }
}

/// A request with its body read into memory, as reissue-core's endpoint
/// functions take it (`&impl HttpRequest` and `&[u8]`).
///
/// Extraction never fails on the body's content: at most
/// [`MAX_BODY_LEN`]` + 1` bytes are read, whatever the `Content-Type`, and core
/// decides what is acceptable (400 `invalid_request` JSON), instead of axum's
/// 413/415/422 text. A body that cannot be read at all (the connection broke)
/// is 400 `invalid_request`.
#[derive(Debug)]
pub struct BufferedRequest {
    parts: Parts,
    body: Bytes,
}

impl BufferedRequest {
    /// The body, truncated after `MAX_BODY_LEN + 1` bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The request line, headers and extensions.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }
}

impl HttpRequest for BufferedRequest {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
    }

    fn peer_addr(&self) -> Option<std::net::IpAddr> {
        crate::request::peer_addr(&self.parts.extensions)
    }

    fn path(&self) -> Option<&str> {
        Some(crate::request::request_path(
            &self.parts.uri,
            &self.parts.extensions,
        ))
    }
}

impl<S: Send + Sync> FromRequest<S> for BufferedRequest {
    type Rejection = ReplyResponse;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        match read_capped(body).await {
            Ok(body) => Ok(Self { parts, body }),
            Err(e) => Err(ReplyResponse(e.reply(reissue_core::DEFAULT_REALM))),
        }
    }
}

/// Reads a body, stopping one byte past the limit: enough for core to see
/// that it is too large, without holding an attacker's megabytes.
async fn read_capped(mut body: axum::body::Body) -> Result<Bytes, Error> {
    let cap = MAX_BODY_LEN + 1;
    let mut buf = BytesMut::new();
    while buf.len() < cap {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame
            .map_err(|_| Error::InvalidRequest("the request body could not be read".into()))?;
        if let Ok(data) = frame.into_data() {
            let take = data.len().min(cap - buf.len());
            buf.extend_from_slice(&data[..take]);
        }
    }
    Ok(buf.freeze())
}
