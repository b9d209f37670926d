//! The `/auth` endpoints of the contract, routed to core's `serve_*`.

use actix_web::web::{self, ServiceConfig, ThinData};
use actix_web::{HttpRequest, HttpResponse, Scope};
use reissue_core::{Authenticator, Reissue};

use crate::{BufferedRequest, RequestHead, into_response};

/// Where [`configure`] mounts the endpoints.
pub const DEFAULT_PREFIX: &str = "/auth";

/// The endpoints under `prefix`, for `App::service` (or inside another scope):
///
/// | route | core |
/// |---|---|
/// | `POST {prefix}/login` | [`Reissue::serve_login`] |
/// | `POST {prefix}/reissue` | [`Reissue::serve_reissue`] |
/// | `POST {prefix}/logout` | [`Reissue::serve_logout`] |
/// | `POST {prefix}/logout-all` | [`Reissue::serve_logout_all`] |
/// | `GET {prefix}/sessions` | [`Reissue::serve_sessions`] |
/// | `DELETE {prefix}/sessions/{sid}` | [`Reissue::serve_revoke_session`] |
/// | `GET {prefix}/jwks.json` | [`Reissue::serve_jwks`] |
///
/// They authenticate by themselves: do not wrap them in the middleware.
/// Other methods on these paths get 405 with `Allow`.
/// A trailing `/` of `prefix` is ignored; `""` or `"/"` mounts them at the root.
pub fn scope<A: Authenticator>(prefix: &str, reissue: Reissue<A>) -> Scope {
    web::scope(prefix.trim_end_matches('/'))
        .app_data(ThinData(reissue))
        .service(web::resource("/login").route(web::post().to(login::<A>)))
        .service(web::resource("/reissue").route(web::post().to(reissue_pair::<A>)))
        .service(web::resource("/logout").route(web::post().to(logout::<A>)))
        .service(web::resource("/logout-all").route(web::post().to(logout_all::<A>)))
        .service(web::resource("/sessions").route(web::get().to(sessions::<A>)))
        .service(web::resource("/sessions/{sid}").route(web::delete().to(revoke_session::<A>)))
        .service(web::resource("/jwks.json").route(web::get().to(jwks::<A>)))
}

/// The endpoints under [`DEFAULT_PREFIX`], for `App::configure`; see [`scope`].
pub fn configure<A: Authenticator>(reissue: Reissue<A>) -> impl FnOnce(&mut ServiceConfig) {
    move |config| {
        config.service(scope(DEFAULT_PREFIX, reissue));
    }
}

async fn login<A: Authenticator>(
    reissue: ThinData<Reissue<A>>,
    req: BufferedRequest,
) -> HttpResponse {
    into_response(reissue.serve_login(&req, req.body()).await)
}

async fn reissue_pair<A: Authenticator>(
    reissue: ThinData<Reissue<A>>,
    req: BufferedRequest,
) -> HttpResponse {
    into_response(reissue.serve_reissue(&req, req.body()).await)
}

async fn logout<A: Authenticator>(
    reissue: ThinData<Reissue<A>>,
    req: BufferedRequest,
) -> HttpResponse {
    into_response(reissue.serve_logout(&req, req.body()).await)
}

async fn logout_all<A: Authenticator>(
    reissue: ThinData<Reissue<A>>,
    req: HttpRequest,
) -> HttpResponse {
    into_response(reissue.serve_logout_all(&RequestHead::from(&req)).await)
}

async fn sessions<A: Authenticator>(
    reissue: ThinData<Reissue<A>>,
    req: HttpRequest,
) -> HttpResponse {
    into_response(reissue.serve_sessions(&RequestHead::from(&req)).await)
}

async fn revoke_session<A: Authenticator>(
    reissue: ThinData<Reissue<A>>,
    req: HttpRequest,
) -> HttpResponse {
    let sid = req.match_info().get("sid").unwrap_or_default();
    into_response(
        reissue
            .serve_revoke_session(&RequestHead::from(&req), sid)
            .await,
    )
}

async fn jwks<A: Authenticator>(reissue: ThinData<Reissue<A>>) -> HttpResponse {
    into_response(reissue.serve_jwks())
}
