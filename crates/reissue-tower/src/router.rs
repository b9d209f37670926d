//! The `/auth` endpoints of CONTRACT.md as an axum router, one route per
//! row of core's [route table](reissue_core::routes::ROUTES). One handler
//! hands each request to core's `serve` and renders its reply; no logic
//! lives here.

use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, State};
use axum::routing::{MethodFilter, on};
use reissue_core::routes::{self, Method, ROUTES};
use reissue_core::{Authenticator, Reissue};

use crate::{BufferedRequest, DrainBodyLayer, ReplyResponse};

/// The `/auth` endpoints of CONTRACT.md, mounted at `/auth`: login, reissue,
/// logout, logout-all, sessions, revoking a session, and the JWKS.
///
/// Merge it into the application's router (after `with_state`, since it
/// carries its own state). Other methods on these paths get 405. Request
/// bodies are [drained](DrainBodyLayer), so that an oversized one still gets
/// its 400.
pub fn router<A: Authenticator>(reissue: Reissue<A>) -> Router {
    router_at(routes::DEFAULT_PREFIX, reissue)
}

/// [`router`] under another prefix, e.g. `"/api/auth"`; `""` or `"/"` mounts
/// the endpoints at the root (`/login`, ...).
///
/// # Panics
///
/// When a non-empty `prefix` does not start with `/`.
pub fn router_at<A: Authenticator>(prefix: &str, reissue: Reissue<A>) -> Router {
    let Some(p) = routes::normalize_prefix(prefix) else {
        panic!("the /auth router prefix must start with `/`, got {prefix:?}");
    };
    ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            let endpoint = route.endpoint;
            let method = match route.method {
                Method::Get => MethodFilter::GET,
                Method::Post => MethodFilter::POST,
                Method::Delete => MethodFilter::DELETE,
                _ => unreachable!("every method of the route table is mapped"),
            };
            let handler = move |State(reissue): State<Reissue<A>>,
                                params: Result<RawPathParams, RawPathParamsRejection>,
                                req: BufferedRequest| async move {
                // A segment that does not percent-decode to UTF-8 names no
                // session: core still authenticates first, then answers 404
                // for the empty id.
                let sid = params
                    .as_ref()
                    .ok()
                    .and_then(|p| p.iter().next().map(|(_, v)| v))
                    .unwrap_or("");
                ReplyResponse::from(reissue.serve(endpoint, &req, req.body(), sid).await)
            };
            router.route(&format!("{p}{}", route.path), on(method, handler))
        })
        .with_state(reissue)
        .layer(DrainBodyLayer::new())
}
