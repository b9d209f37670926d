//! reissue's axum example: the HTTP contract of CONTRACT.md, served by
//! `reissue-tower` over the shared `example-common` wiring.
//!
//! The framework glue is all there is here: routing, the layer on protected
//! routes, and rendering the framework-neutral replies of `example-common`
//! and `reissue-core`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, State};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use example_common::{ADMIN_ROLE, AppState, PASSWORD_CHANGE_MAX_AGE};
use reissue_core::UserClaims;
use reissue_tower::{
    AuthUser, BufferedRequest, DrainBodyLayer, RecentAuth, ReissueLayer, ReplyResponse,
};

/// The application: the demo page at `/`, `/health`, `/metrics`,
/// `/openapi.json`, `/signup`, `/me`, `/admin/users/{id}/logout` and the
/// `/auth` endpoints.
pub fn app(state: AppState) -> Router {
    let verifier = state.reissue.verifier().clone();
    let protected = Router::new()
        .route("/me", get(me))
        .route("/account/password", post(change_password))
        .route_layer(ReissueLayer::new(verifier.clone()));
    let admin = Router::new()
        .route("/admin/users/{id}/logout", post(admin_logout))
        .route_layer(ReissueLayer::new(verifier).require_role(ADMIN_ROLE));
    let auth = reissue_tower::router(state.reissue.clone());
    Router::new()
        .route("/", get(demo_page))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/signup", post(signup))
        .merge(protected)
        .merge(admin)
        .with_state(state)
        .merge(auth)
        // Last, so that it also covers the layer's refusals, 404 and 405:
        // an oversized body is read away and the client gets its answer.
        .layer(DrainBodyLayer::new())
}

/// Serves [`app`] on `listener` until the process ends, with the peer
/// address of each connection available to reissue (client address policy,
/// session list).
pub async fn serve(listener: std::net::TcpListener, state: AppState) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    // Small JSON replies on kept-alive connections: don't let Nagle hold them back.
    let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

async fn demo_page() -> ReplyResponse {
    AppState::demo_page().into()
}

async fn health() -> ReplyResponse {
    AppState::health().into()
}

async fn metrics(State(state): State<AppState>) -> ReplyResponse {
    state.metrics().into()
}

async fn openapi(State(state): State<AppState>) -> ReplyResponse {
    state.openapi().into()
}

async fn signup(State(state): State<AppState>, req: BufferedRequest) -> ReplyResponse {
    state.signup(&req, req.body()).await.into()
}

async fn me(user: AuthUser<UserClaims>) -> ReplyResponse {
    AppState::me(&user).into()
}

async fn change_password(
    State(state): State<AppState>,
    user: RecentAuth<UserClaims, PASSWORD_CHANGE_MAX_AGE>,
    req: BufferedRequest,
) -> ReplyResponse {
    state.change_password(&user, &req, req.body()).await.into()
}

async fn admin_logout(
    State(state): State<AppState>,
    params: Result<RawPathParams, RawPathParamsRejection>,
) -> ReplyResponse {
    // An id that does not percent-decode to UTF-8 names no user: forcing it
    // out ends nothing.
    let id = params
        .as_ref()
        .ok()
        .and_then(|p| p.iter().next().map(|(_, v)| v))
        .unwrap_or("");
    state.admin_logout(id).await.into()
}
