//! The `/auth` endpoints of the contract: one resource per row of core's
//! [route table](reissue_core::routes::ROUTES), each handed to core's `serve`.

use actix_web::Scope;
use actix_web::web::{self, ServiceConfig, ThinData};
use reissue_core::routes::{self, Method, ROUTES, SESSION_PARAM};
use reissue_core::{Authenticator, Reissue};

use crate::{BufferedRequest, into_response};

/// Where [`configure`] mounts the endpoints.
pub const DEFAULT_PREFIX: &str = routes::DEFAULT_PREFIX;

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
    ROUTES.iter().fold(
        web::scope(prefix.trim_end_matches('/')).app_data(ThinData(reissue)),
        |scope, route| {
            let endpoint = route.endpoint;
            let method = match route.method {
                Method::Get => web::get(),
                Method::Post => web::post(),
                Method::Delete => web::delete(),
                _ => unreachable!("every method of the route table is mapped"),
            };
            let handler = move |reissue: ThinData<Reissue<A>>, req: BufferedRequest| async move {
                let sid = req
                    .request()
                    .match_info()
                    .get(SESSION_PARAM)
                    .unwrap_or_default();
                into_response(reissue.serve(endpoint, &req, req.body(), sid).await)
            };
            scope.service(web::resource(route.path).route(method.to(handler)))
        },
    )
}

/// The endpoints under [`DEFAULT_PREFIX`], for `App::configure`; see [`scope`].
pub fn configure<A: Authenticator>(reissue: Reissue<A>) -> impl FnOnce(&mut ServiceConfig) {
    move |config| {
        config.service(scope(DEFAULT_PREFIX, reissue));
    }
}
