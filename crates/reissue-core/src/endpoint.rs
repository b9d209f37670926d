//! The `/auth` endpoints of CONTRACT.md, as framework-neutral functions:
//! an [`HttpRequest`] and the body in, a [`Reply`] out. The adapters route to
//! these and render the reply; they hold no logic of their own.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::request::{HttpRequest, bearer_token, is_json};
use crate::{Authenticator, Error, Reply, Result, SessionId};

/// Bodies larger than this are refused before parsing (credentials and a
/// refresh token fit in far less).
pub const MAX_BODY_LEN: usize = 16 * 1024;

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
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
/// there is none, from a JSON body.
fn refresh_token_of<'r>(
    req: &'r impl HttpRequest,
    body: &'r [u8],
) -> Result<std::borrow::Cow<'r, str>> {
    match bearer_token(req) {
        Ok(t) => Ok(t.into()),
        Err(Error::MissingToken) if !body.is_empty() => {
            let b: RefreshBody = json_body(req, body)?;
            if b.refresh_token.is_empty() {
                return Err(Error::InvalidRequest("refresh_token is empty".into()));
            }
            Ok(b.refresh_token.into())
        }
        Err(e) => Err(e),
    }
}

#[derive(serde::Serialize)]
struct SessionView<'a> {
    sid: &'a str,
    created_at: u64,
    last_used_at: u64,
    ip: Option<String>,
    country: Option<&'a str>,
    user_agent: Option<&'a str>,
    current: bool,
}

impl<A: Authenticator> crate::Reissue<A> {
    fn respond(&self, result: Result<Reply>) -> Reply {
        result.unwrap_or_else(|e| self.reply(&e))
    }

    /// `POST /auth/login`: JSON credentials → 200 token pair.
    pub async fn serve_login(&self, req: &impl HttpRequest, body: &[u8]) -> Reply {
        self.respond(
            async {
                let credentials: A::Credentials = json_body(req, body)?;
                let pair = self.login(credentials, &self.client_of(req)).await?;
                Ok(Reply::json(200, &pair).no_store())
            }
            .await,
        )
    }

    /// `POST /auth/reissue`: a refresh token → 200 a new pair.
    pub async fn serve_reissue(&self, req: &impl HttpRequest, body: &[u8]) -> Reply {
        self.respond(
            async {
                let token = refresh_token_of(req, body)?;
                let pair = self.reissue(&token, &self.client_of(req)).await?;
                Ok(Reply::json(200, &pair).no_store())
            }
            .await,
        )
    }

    /// `POST /auth/logout`: the access token, or a refresh token in JSON → 204.
    pub async fn serve_logout(&self, req: &impl HttpRequest, body: &[u8]) -> Reply {
        self.respond(
            async {
                let (user_id, sid) = match bearer_token(req) {
                    Ok(token) => {
                        let id = self.verifier().verify(token)?;
                        (id.user_id, id.session_id)
                    }
                    Err(Error::MissingToken) if !body.is_empty() => {
                        let b: RefreshBody = json_body(req, body)?;
                        let rt = self.tokens().verify_refresh_for_logout(&b.refresh_token)?;
                        (rt.sub, rt.sid)
                    }
                    Err(e) => return Err(e),
                };
                self.logout(&user_id, &sid).await?;
                Ok(Reply::no_content())
            }
            .await,
        )
    }

    /// `POST /auth/logout-all`: the access token → 204, every session ended.
    pub async fn serve_logout_all(&self, req: &impl HttpRequest) -> Reply {
        self.respond(
            async {
                let id = self.verifier().authenticate_live(req).await?;
                self.logout_all(&id.user_id).await?;
                Ok(Reply::no_content())
            }
            .await,
        )
    }

    /// `GET /auth/sessions`: the caller's live sessions.
    pub async fn serve_sessions(&self, req: &impl HttpRequest) -> Reply {
        self.respond(
            async {
                let id = self.verifier().authenticate_live(req).await?;
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
                Ok(Reply::json(200, &serde_json::json!({ "sessions": view })).no_store())
            }
            .await,
        )
    }

    /// `DELETE /auth/sessions/{sid}` → 204, or 404 when `sid` is not one of
    /// the caller's live sessions.
    pub async fn serve_revoke_session(&self, req: &impl HttpRequest, sid: &str) -> Reply {
        self.respond(
            async {
                let id = self.verifier().authenticate_live(req).await?;
                let sid = SessionId::parse(sid).ok_or(Error::NotFound)?;
                if self.revoke_session(&id.user_id, &sid).await? {
                    Ok(Reply::no_content())
                } else {
                    Err(Error::NotFound)
                }
            }
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
