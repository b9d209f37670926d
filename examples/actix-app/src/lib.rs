//! The actix-web example app: CONTRACT.md's `/auth` routes plus the demo page at `/`, `/health`,
//! `/signup`, `/me` and `/admin/users/{id}/logout`. What it shares with the
//! axum app (configuration, wiring, the app's own endpoints) lives in
//! `example-common`; this crate is only the actix-web glue.
#![forbid(unsafe_code)]

use std::net::TcpListener;

use actix_web::web::{self, ThinData};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use example_common::{ADMIN_ROLE, AppState, PASSWORD_CHANGE_MAX_AGE};
use reissue_actix::{AuthUser, BufferedRequest, RecentAuth, ReissueMiddleware, into_response};
use reissue_core::UserClaims;

/// Serves the app on `listener` until the server is stopped (Ctrl-C, or the
/// process ends). Call it inside an actix System, e.g.
/// `actix_web::rt::System::new().block_on(serve(listener, state))`.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    HttpServer::new(move || {
        let verifier = state.reissue.verifier().clone();
        App::new()
            .app_data(ThinData(state.clone()))
            // Resources rather than `App::route`, so that a wrong method is
            // 405 (with `Allow`), not 404; the middleware goes on the route,
            // so that it does not answer 401 before that.
            .service(web::resource("/").route(web::get().to(demo_page)))
            .service(web::resource("/health").route(web::get().to(health)))
            .service(web::resource("/metrics").route(web::get().to(metrics)))
            .service(web::resource("/openapi.json").route(web::get().to(openapi)))
            .service(web::resource("/signup").route(web::post().to(signup)))
            .service(
                web::resource("/me").route(
                    web::get()
                        .to(me)
                        .wrap(ReissueMiddleware::new(verifier.clone())),
                ),
            )
            .service(
                web::resource("/account/password").route(
                    web::post()
                        .to(change_password)
                        .wrap(ReissueMiddleware::new(verifier.clone())),
                ),
            )
            .service(
                web::resource("/admin/users/{id}/logout").route(
                    web::post()
                        .to(admin_logout)
                        .wrap(ReissueMiddleware::new(verifier).require_role(ADMIN_ROLE)),
                ),
            )
            .configure(reissue_actix::configure(state.reissue.clone()))
    })
    // Two cores on the machines this runs on; tests start many servers.
    .workers(2)
    .listen(listener)?
    .run()
    .await
}

async fn demo_page() -> HttpResponse {
    into_response(AppState::demo_page())
}

async fn health() -> HttpResponse {
    into_response(AppState::health())
}

async fn metrics(state: ThinData<AppState>) -> HttpResponse {
    into_response(state.metrics())
}

async fn openapi(state: ThinData<AppState>) -> HttpResponse {
    into_response(state.openapi())
}

async fn signup(state: ThinData<AppState>, req: BufferedRequest) -> HttpResponse {
    into_response(state.signup(&req, req.body()).await)
}

async fn me(user: AuthUser<UserClaims>) -> HttpResponse {
    into_response(AppState::me(&user))
}

async fn change_password(
    state: ThinData<AppState>,
    user: RecentAuth<UserClaims, PASSWORD_CHANGE_MAX_AGE>,
    req: BufferedRequest,
) -> HttpResponse {
    into_response(state.change_password(&user, &req, req.body()).await)
}

async fn admin_logout(state: ThinData<AppState>, req: HttpRequest) -> HttpResponse {
    let user_id = req.match_info().get("id").unwrap_or_default();
    into_response(state.admin_logout(user_id).await)
}
