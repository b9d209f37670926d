//! The `/auth` endpoints of CONTRACT.md as an axum router. Each handler
//! hands the request to the matching `serve_*` of reissue-core and renders
//! its reply; no logic lives here.

use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::routing::{delete, get, post};
use reissue_core::{Authenticator, Reissue};

use crate::{BufferedRequest, DrainBodyLayer, ReplyResponse, RequestHead};

/// The `/auth` endpoints of CONTRACT.md, mounted at `/auth`: login, reissue,
/// logout, logout-all, sessions, revoking a session, and the JWKS.
///
/// Merge it into the application's router (after `with_state`, since it
/// carries its own state). Other methods on these paths get 405. Request
/// bodies are [drained](DrainBodyLayer), so that an oversized one still gets
/// its 400.
pub fn router<A: Authenticator>(reissue: Reissue<A>) -> Router {
    router_at("/auth", reissue)
}

/// [`router`] under another prefix, e.g. `"/api/auth"`; `""` or `"/"` mounts
/// the endpoints at the root (`/login`, ...).
///
/// # Panics
///
/// When a non-empty `prefix` does not start with `/`.
pub fn router_at<A: Authenticator>(prefix: &str, reissue: Reissue<A>) -> Router {
    let p = prefix.trim_end_matches('/');
    assert!(
        p.is_empty() || p.starts_with('/'),
        "the /auth router prefix must start with `/`, got {prefix:?}"
    );
    Router::new()
        .route(&format!("{p}/login"), post(login::<A>))
        .route(&format!("{p}/reissue"), post(reissue_pair::<A>))
        .route(&format!("{p}/logout"), post(logout::<A>))
        .route(&format!("{p}/logout-all"), post(logout_all::<A>))
        .route(&format!("{p}/sessions"), get(sessions::<A>))
        .route(
            &format!("{p}/sessions/{{sid}}"),
            delete(revoke_session::<A>),
        )
        .route(&format!("{p}/jwks.json"), get(jwks::<A>))
        .with_state(reissue)
        .layer(DrainBodyLayer::new())
}

async fn login<A: Authenticator>(
    State(reissue): State<Reissue<A>>,
    req: BufferedRequest,
) -> ReplyResponse {
    reissue.serve_login(&req, req.body()).await.into()
}

async fn reissue_pair<A: Authenticator>(
    State(reissue): State<Reissue<A>>,
    req: BufferedRequest,
) -> ReplyResponse {
    reissue.serve_reissue(&req, req.body()).await.into()
}

async fn logout<A: Authenticator>(
    State(reissue): State<Reissue<A>>,
    req: BufferedRequest,
) -> ReplyResponse {
    reissue.serve_logout(&req, req.body()).await.into()
}

async fn logout_all<A: Authenticator>(
    State(reissue): State<Reissue<A>>,
    req: Request,
) -> ReplyResponse {
    let (parts, _) = req.into_parts();
    reissue
        .serve_logout_all(&RequestHead::from(&parts))
        .await
        .into()
}

async fn sessions<A: Authenticator>(
    State(reissue): State<Reissue<A>>,
    req: Request,
) -> ReplyResponse {
    let (parts, _) = req.into_parts();
    reissue
        .serve_sessions(&RequestHead::from(&parts))
        .await
        .into()
}

async fn revoke_session<A: Authenticator>(
    State(reissue): State<Reissue<A>>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
) -> ReplyResponse {
    let (parts, _) = req.into_parts();
    // A segment that does not percent-decode to UTF-8 names no session: core
    // still authenticates first, then answers 404 for the empty id.
    let sid = params
        .as_ref()
        .ok()
        .and_then(|p| p.iter().next().map(|(_, v)| v))
        .unwrap_or("");
    reissue
        .serve_revoke_session(&RequestHead::from(&parts), sid)
        .await
        .into()
}

async fn jwks<A: Authenticator>(State(reissue): State<Reissue<A>>) -> ReplyResponse {
    reissue.serve_jwks().into()
}
