//! The `/auth` endpoints of CONTRACT.md, as framework-neutral functions:
//! an [`HttpRequest`] and the body in, a [`Reply`] out. The adapters route to
//! these and render the reply; they hold no logic of their own.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use crate::audit::record_session;
use crate::http::request::{HttpRequest, bearer_token, dpop_proof, is_json};
use crate::{
    Authenticator, Confirmation, CookieTransport, DpopProof, Error, Reply, Result, SessionId,
    TokenCodec, TokenPair,
};

/// Bodies larger than this are refused before parsing (credentials and a
/// refresh token fit in far less).
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// The JSON body of `POST /auth/reissue` and `POST /auth/logout` when the
/// refresh token travels neither in `Authorization` nor in the cookie.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct RefreshBody {
    /// The refresh token (not empty).
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    refresh_token: Option<String>,
}

/// Parses a JSON request body the way every reissue endpoint does: at most
/// [`MAX_BODY_LEN`] bytes, a JSON content type, else 400 `invalid_request`.
/// The error never quotes the body: serde's messages can echo a field's
/// value, which may be a password.
pub fn json_body<T: DeserializeOwned>(req: &impl HttpRequest, body: &[u8]) -> Result<T> {
    if body.len() > MAX_BODY_LEN {
        return Err(Error::InvalidRequest(
            "the request body is too large".into(),
        ));
    }
    if !is_json(req.header("content-type")) {
        return Err(Error::InvalidRequest(
            "the request body must be JSON (Content-Type: application/json)".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|_| {
        Error::InvalidRequest(
            "the request body is not a JSON object with the expected fields".into(),
        )
    })
}

/// A refresh token from the `Authorization` header (the seed's flow) or, when
/// there is none, from a JSON body or the cookie.
fn refresh_token_of<'r>(
    req: &'r impl HttpRequest,
    body: &'r [u8],
    cookies: &CookieTransport,
) -> Result<Cow<'r, str>> {
    match bearer_token(req) {
        Ok(t) => Ok(t.into()),
        Err(Error::MissingToken) => body_or_cookie_token(req, body, cookies).map(Cow::Owned),
        Err(e) => Err(e),
    }
}

/// A refresh token from a JSON body `{"refresh_token": ...}` or, when the
/// body names none, from the cookie, which only a same-site request that
/// opted into the cookie transport may use. Neither: [`Error::MissingToken`]
/// for an empty body, 400 for a body without the field.
fn body_or_cookie_token(
    req: &impl HttpRequest,
    body: &[u8],
    cookies: &CookieTransport,
) -> Result<String> {
    let from_body = if body.is_empty() {
        None
    } else {
        let b: RefreshBody = json_body(req, body)?;
        match b.refresh_token {
            Some(t) if t.is_empty() => {
                return Err(Error::InvalidRequest("refresh_token is empty".into()));
            }
            Some(t) => return Ok(t),
            None => Some(()),
        }
    };
    match cookies.token(req)? {
        Some(token) => {
            cookies.check_same_site(req)?;
            Ok(token)
        }
        None if from_body.is_some() => Err(Error::InvalidRequest(
            "the request body is not a JSON object with the expected fields".into(),
        )),
        None => Err(Error::MissingToken),
    }
}

/// The token response without `refresh_token`, which travels in the cookie.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct CookieTokenResponse<'a> {
    /// The access token.
    access_token: &'a str,
    /// Always `Bearer`.
    #[cfg_attr(feature = "openapi", schema(example = "Bearer"))]
    token_type: &'a str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Seconds until the refresh token (in the cookie) expires unless used.
    refresh_expires_in: u64,
}

/// `GET /auth/sessions`: the caller's live sessions.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct SessionList<'a> {
    /// One entry per live session of the caller.
    sessions: Vec<SessionView<'a>>,
}

/// One live session.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct SessionView<'a> {
    /// The session id: `DELETE /auth/sessions/{sid}` ends it.
    sid: &'a str,
    /// When the session began (login), Unix seconds.
    created_at: u64,
    /// When its refresh token was last used, Unix seconds.
    last_used_at: u64,
    /// The client address at the last login or reissue.
    ip: Option<String>,
    /// The ISO 3166 country of that address, when known.
    country: Option<&'a str>,
    /// The `User-Agent` at the last login or reissue.
    user_agent: Option<&'a str>,
    /// Whether this is the session of the access token that asked.
    current: bool,
}

/// The span of one `/auth` operation: `reissue.<op>`, with the session id
/// once known and the outcome (`ok` or the error code of CONTRACT.md's
/// table). Never a token, a password or a typed email: the user is the id
/// the store knows, or nothing.
macro_rules! operation_span {
    ($name:literal) => {
        tracing::info_span!(
            target: "reissue",
            $name,
            session_id = tracing::field::Empty,
            user_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
            detail = tracing::field::Empty,
        )
    };
}

impl<A: Authenticator> crate::Reissue<A> {
    /// The client of a request: its address (after the trusted-proxy rule),
    /// country and user agent.
    pub fn client_of(&self, req: &impl HttpRequest) -> crate::store::ClientMeta {
        let xff: Vec<&[u8]> = req.header_values("x-forwarded-for").collect();
        let ua = req
            .header("user-agent")
            .and_then(|v| std::str::from_utf8(v).ok());
        self.client_from(req.peer_addr(), &xff, ua)
    }

    fn respond(&self, span: &tracing::Span, result: Result<Reply>) -> Reply {
        match result {
            Ok(reply) => {
                span.record("outcome", "ok");
                reply
            }
            Err(e) => {
                span.record("outcome", e.code());
                self.reply(&e)
            }
        }
    }

    fn cookies(&self) -> &CookieTransport {
        &self.config().cookies
    }

    /// The 200 token response: the JSON pair, or, for a client that opted into
    /// the cookie transport, the pair without `refresh_token` plus the cookie.
    fn token_reply(&self, req: &impl HttpRequest, pair: &TokenPair) -> Reply {
        if !self.cookies().requested(req) {
            return Reply::json(200, pair).no_store();
        }
        let body = CookieTokenResponse {
            access_token: &pair.access_token,
            token_type: pair.token_type,
            expires_in: pair.expires_in,
            refresh_expires_in: pair.refresh_expires_in,
        };
        let cookie = self
            .cookies()
            .set(req, &pair.refresh_token, pair.refresh_expires_in);
        let mut reply = Reply::json(200, &body).no_store();
        reply.headers.push(("set-cookie", cookie));
        reply
    }

    /// The request's DPoP proof, if it carries one, for a `POST` (every
    /// `/auth` route that takes one but the session list's `DELETE`).
    fn proof_of<'r>(&'r self, req: &'r impl HttpRequest) -> Option<DpopProof<'r>> {
        self.proof_for(req, "POST")
    }

    fn proof_for<'r>(
        &'r self,
        req: &'r impl HttpRequest,
        method: &'static str,
    ) -> Option<DpopProof<'r>> {
        dpop_proof(req, method, self.config().dpop.public_origin.as_ref())
    }

    /// The DPoP binding of the access token of a request that the verifier
    /// has just accepted.
    fn access_binding(req: &impl HttpRequest) -> Result<Option<Confirmation>> {
        TokenCodec::binding_of_verified(bearer_token(req)?)
    }

    /// In cookie mode, removes the cookie from a reply whose status is one of
    /// `statuses`; never for a refused DPoP proof, which leaves the session
    /// as it was (and the request may have come from elsewhere).
    fn clear_cookie_on(&self, req: &impl HttpRequest, mut reply: Reply, statuses: &[u16]) -> Reply {
        let dpop_refused = reply
            .headers
            .iter()
            .any(|(name, value)| *name == "www-authenticate" && value.starts_with("DPoP "));
        if statuses.contains(&reply.status) && !dpop_refused && self.cookies().requested(req) {
            reply
                .headers
                .push(("set-cookie", self.cookies().clear(req)));
        }
        reply
    }

    /// `POST /auth/login`: JSON credentials → 200 token pair (the refresh
    /// token as a cookie for a client that asks for the cookie transport).
    pub async fn serve_login(&self, req: &impl HttpRequest, body: &[u8]) -> Reply {
        let span = operation_span!("reissue.login");
        self.respond(
            &span,
            async {
                if self.cookies().requested(req) {
                    // Login CSRF: another site must not plant its session here.
                    self.cookies().check_same_site(req)?;
                }
                let credentials: A::Credentials = json_body(req, body)?;
                let device = req
                    .header("reissue-device")
                    .and_then(|v| std::str::from_utf8(v).ok());
                let proof = self.proof_of(req);
                let pair = self
                    .login_with_proof(credentials, &self.client_of(req), device, proof.as_ref())
                    .await?;
                Ok(self.token_reply(req, &pair))
            }
            .instrument(span.clone())
            .await,
        )
    }

    /// `POST /auth/reissue`: a refresh token (header, JSON body or cookie) →
    /// 200 a new pair; in cookie mode a 401 also removes the cookie.
    pub async fn serve_reissue(&self, req: &impl HttpRequest, body: &[u8]) -> Reply {
        let span = operation_span!("reissue.reissue");
        let reply = self.respond(
            &span,
            async {
                if self.cookies().requested(req) {
                    // The answer sets the cookie, wherever the token came
                    // from: another site must not plant its session here.
                    self.cookies().check_same_site(req)?;
                }
                let token = refresh_token_of(req, body, self.cookies())?;
                let proof = self.proof_of(req);
                let pair = self
                    .reissue_with_proof(&token, &self.client_of(req), proof.as_ref())
                    .await?;
                Ok(self.token_reply(req, &pair))
            }
            .instrument(span.clone())
            .await,
        );
        self.clear_cookie_on(req, reply, &[401])
    }

    /// `POST /auth/reauthenticate`: the access token and the login's JSON
    /// credentials → 200 a new pair for the same session, with a fresh
    /// `auth_time` (step-up, RFC 9470).
    pub async fn serve_reauthenticate(&self, req: &impl HttpRequest, body: &[u8]) -> Reply {
        let span = operation_span!("reissue.reauthenticate");
        self.respond(
            &span,
            async {
                let id = self.verifier().authenticate_live(req).await?;
                record_session(&id.user_id, &id.session_id);
                let bound = Self::access_binding(req)?;
                let credentials: A::Credentials = json_body(req, body)?;
                let device = req
                    .header("reissue-device")
                    .and_then(|v| std::str::from_utf8(v).ok());
                let proof = self.proof_of(req);
                let pair = self
                    .reauthenticate(
                        &id.user_id,
                        &id.session_id,
                        credentials,
                        &self.client_of(req),
                        device,
                        bound.as_ref(),
                        proof.as_ref(),
                    )
                    .await?;
                Ok(self.token_reply(req, &pair))
            }
            .instrument(span.clone())
            .await,
        )
    }

    /// `POST /auth/logout`: the access token, or a refresh token in JSON or
    /// the cookie → 204; in cookie mode the cookie is removed (also on 401:
    /// a session that cannot be named is over for this browser).
    pub async fn serve_logout(&self, req: &impl HttpRequest, body: &[u8]) -> Reply {
        let span = operation_span!("reissue.logout");
        let reply = self.respond(
            &span,
            async {
                let (user_id, sid, bound) = match bearer_token(req) {
                    Ok(token) => {
                        let id = self.verifier().verify(token)?;
                        let bound = TokenCodec::binding_of_verified(token)?;
                        (id.user_id.clone(), id.session_id.clone(), bound)
                    }
                    Err(Error::MissingToken) => {
                        let token = body_or_cookie_token(req, body, self.cookies())?;
                        let rt = self.tokens().verify_refresh_for_logout(&token)?;
                        (rt.sub, rt.sid, rt.authentication.cnf)
                    }
                    Err(e) => return Err(e),
                };
                record_session(&user_id, &sid);
                // A thief without the key must not log the user out either.
                let jkt = bound.as_ref().map(|b| b.jkt.as_str());
                let proof = self.proof_of(req);
                self.check_proof(jkt, proof.as_ref(), &user_id, &sid, &self.client_of(req))
                    .await?;
                self.logout(&user_id, &sid).await?;
                Ok(Reply::no_content())
            }
            .instrument(span.clone())
            .await,
        );
        self.clear_cookie_on(req, reply, &[204, 401])
    }

    /// `POST /auth/logout-all`: the access token → 204, every session ended;
    /// in cookie mode the cookie is removed (also on 401).
    pub async fn serve_logout_all(&self, req: &impl HttpRequest) -> Reply {
        let span = operation_span!("reissue.logout_all");
        let reply = self.respond(
            &span,
            async {
                let id = self.verifier().authenticate_live(req).await?;
                record_session(&id.user_id, &id.session_id);
                let bound = Self::access_binding(req)?;
                let jkt = bound.as_ref().map(|b| b.jkt.as_str());
                let proof = self.proof_of(req);
                let client = self.client_of(req);
                self.check_proof(jkt, proof.as_ref(), &id.user_id, &id.session_id, &client)
                    .await?;
                self.logout_all(&id.user_id).await?;
                Ok(Reply::no_content())
            }
            .instrument(span.clone())
            .await,
        );
        self.clear_cookie_on(req, reply, &[204, 401])
    }

    /// `GET /auth/sessions`: the caller's live sessions.
    pub async fn serve_sessions(&self, req: &impl HttpRequest) -> Reply {
        let span = operation_span!("reissue.sessions");
        self.respond(
            &span,
            async {
                let id = self.verifier().authenticate_live(req).await?;
                record_session(&id.user_id, &id.session_id);
                let sessions = self.sessions(&id.user_id).await?;
                let view: Vec<SessionView<'_>> = sessions
                    .iter()
                    .map(|s| SessionView {
                        sid: s.sid.as_str(),
                        created_at: s.created_at,
                        last_used_at: s.last_used_at,
                        ip: s.client.ip.map(|ip| ip.to_string()),
                        country: s.client.country.as_ref().map(|c| c.as_str()),
                        user_agent: s.client.user_agent.as_deref(),
                        current: s.sid == id.session_id,
                    })
                    .collect();
                Ok(Reply::json(200, &SessionList { sessions: view }).no_store())
            }
            .instrument(span.clone())
            .await,
        )
    }

    /// `DELETE /auth/sessions/{sid}` → 204, or 404 when `sid` is not one of
    /// the caller's live sessions.
    pub async fn serve_revoke_session(&self, req: &impl HttpRequest, sid: &str) -> Reply {
        let span = operation_span!("reissue.revoke");
        self.respond(
            &span,
            async {
                let id = self.verifier().authenticate_live(req).await?;
                record_session(&id.user_id, &id.session_id);
                // Ending a session is a logout: a bound session's caller
                // proves its key, so that its access token alone cannot.
                let bound = Self::access_binding(req)?;
                let jkt = bound.as_ref().map(|b| b.jkt.as_str());
                let proof = self.proof_for(req, "DELETE");
                let client = self.client_of(req);
                self.check_proof(jkt, proof.as_ref(), &id.user_id, &id.session_id, &client)
                    .await?;
                let sid = SessionId::parse(sid).ok_or(Error::NotFound)?;
                if self.revoke_session(&id.user_id, &sid).await? {
                    Ok(Reply::no_content())
                } else {
                    Err(Error::NotFound)
                }
            }
            .instrument(span.clone())
            .await,
        )
    }

    /// `GET /auth/jwks.json`: the public keys; 404 when only HMAC keys exist.
    pub fn serve_jwks(&self) -> Reply {
        match self.tokens().keys().jwks() {
            Some(set) => {
                let mut reply = Reply::json(200, &set);
                reply
                    .headers
                    .push(("cache-control", "public, max-age=300".to_owned()));
                reply
            }
            None => self.reply(&Error::NoPublicKeys),
        }
    }
}
