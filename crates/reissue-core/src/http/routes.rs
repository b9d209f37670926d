//! The `/auth` routes of CONTRACT.md as one table: method, path (under the
//! prefix), endpoint. axum's router, actix-web's scope and the OpenAPI
//! document all read [`ROUTES`], so a path is spelled once.

use crate::http::request::HttpRequest;
use crate::{Authenticator, Reissue, Reply};

/// Where the routes are mounted unless the application says otherwise.
pub const DEFAULT_PREFIX: &str = "/auth";

/// The HTTP method of a [`Route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name, e.g. `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

/// What a [`Route`] serves: one of [`Reissue`]'s `serve_*` functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// [`Reissue::serve_login`]
    Login,
    /// [`Reissue::serve_reissue`]
    Reissue,
    /// [`Reissue::serve_logout`]
    Logout,
    /// [`Reissue::serve_logout_all`]
    LogoutAll,
    /// [`Reissue::serve_sessions`]
    Sessions,
    /// [`Reissue::serve_revoke_session`]; its path has the
    /// [`SESSION_PARAM`] segment.
    RevokeSession,
    /// [`Reissue::serve_jwks`]
    Jwks,
    /// [`Reissue::serve_reauthenticate`]
    Reauthenticate,
}

/// One route: `method` on `prefix + path` is served by `endpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path under the prefix, starting with `/`. A path parameter is
    /// written `{name}`, as axum 0.8, actix-web and OpenAPI all write it.
    pub path: &'static str,
    /// What serves it.
    pub endpoint: Endpoint,
}

/// The name of the path parameter of [`Endpoint::RevokeSession`].
pub const SESSION_PARAM: &str = "sid";

/// Every route, in the order CONTRACT.md lists them.
pub const ROUTES: &[Route] = &[
    route(Method::Post, "/login", Endpoint::Login),
    route(Method::Post, "/reissue", Endpoint::Reissue),
    route(Method::Post, "/logout", Endpoint::Logout),
    route(Method::Post, "/logout-all", Endpoint::LogoutAll),
    route(Method::Get, "/sessions", Endpoint::Sessions),
    route(Method::Delete, "/sessions/{sid}", Endpoint::RevokeSession),
    route(Method::Get, "/jwks.json", Endpoint::Jwks),
    route(Method::Post, "/reauthenticate", Endpoint::Reauthenticate),
];

const fn route(method: Method, path: &'static str, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

/// A prefix as the routes are mounted under it: a trailing `/` dropped,
/// `""` or `"/"` for the root. `None` when a non-empty prefix does not
/// start with `/`.
pub fn normalize_prefix(prefix: &str) -> Option<&str> {
    let p = prefix.trim_end_matches('/');
    (p.is_empty() || p.starts_with('/')).then_some(p)
}

impl<A: Authenticator> Reissue<A> {
    /// Serves `endpoint`: what an adapter's one handler calls for every
    /// route of [`ROUTES`]. `body` is the request body (at most
    /// [`MAX_BODY_LEN`](crate::MAX_BODY_LEN)` + 1` bytes; endpoints without
    /// a body ignore it); `sid` is the [`SESSION_PARAM`] segment, `""` for
    /// the other routes or when it did not decode.
    pub async fn serve(
        &self,
        endpoint: Endpoint,
        req: &impl HttpRequest,
        body: &[u8],
        sid: &str,
    ) -> Reply {
        match endpoint {
            Endpoint::Login => self.serve_login(req, body).await,
            Endpoint::Reissue => self.serve_reissue(req, body).await,
            Endpoint::Logout => self.serve_logout(req, body).await,
            Endpoint::LogoutAll => self.serve_logout_all(req).await,
            Endpoint::Sessions => self.serve_sessions(req).await,
            Endpoint::RevokeSession => self.serve_revoke_session(req, sid).await,
            Endpoint::Jwks => self.serve_jwks(),
            Endpoint::Reauthenticate => self.serve_reauthenticate(req, body).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_once_each_path_once() {
        let mut endpoints: Vec<_> = ROUTES.iter().map(|r| r.endpoint).collect();
        endpoints.dedup();
        assert_eq!(endpoints.len(), 8);
        let mut paths: Vec<_> = ROUTES.iter().map(|r| r.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ROUTES.len());
        let revoke = ROUTES
            .iter()
            .find(|r| r.endpoint == Endpoint::RevokeSession)
            .unwrap();
        assert!(revoke.path.contains(&format!("{{{SESSION_PARAM}}}")));
    }

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("/auth/"), Some("/auth"));
        assert_eq!(normalize_prefix("/"), Some(""));
        assert_eq!(normalize_prefix(""), Some(""));
        assert_eq!(normalize_prefix("auth"), None);
    }
}
