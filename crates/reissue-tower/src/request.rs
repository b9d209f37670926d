//! The view of an `http` request that reissue-core reads.

use std::net::{IpAddr, SocketAddr};

use http::{Extensions, HeaderMap};
use reissue_core::HttpRequest;

/// The headers and extensions of an `http` request, as reissue-core's
/// [`HttpRequest`]: what the layer and the `/auth` handlers hand to core, and
/// what an application passes to core functions from its own handlers.
///
/// The peer address is read from axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`; serve with `into_make_service_with_connect_info::<SocketAddr>()`),
/// or else from a plain [`SocketAddr`] extension, which any tower stack can insert.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
    path: Option<&'a str>,
}

impl<'a> RequestHead<'a> {
    /// A view of these headers and extensions (with no request path: the
    /// refresh-token cookie is then scoped to the configured path).
    pub fn new(headers: &'a HeaderMap, extensions: &'a Extensions) -> Self {
        Self {
            headers,
            extensions,
            path: None,
        }
    }
}

impl<'a> From<&'a http::request::Parts> for RequestHead<'a> {
    fn from(parts: &'a http::request::Parts) -> Self {
        Self {
            path: Some(request_path(&parts.uri, &parts.extensions)),
            ..Self::new(&parts.headers, &parts.extensions)
        }
    }
}

impl<'a, B> From<&'a http::Request<B>> for RequestHead<'a> {
    fn from(req: &'a http::Request<B>) -> Self {
        Self {
            path: Some(request_path(req.uri(), req.extensions())),
            ..Self::new(req.headers(), req.extensions())
        }
    }
}

impl HttpRequest for RequestHead<'_> {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.headers.get_all(name).iter().map(|v| v.as_bytes())
    }

    fn peer_addr(&self) -> Option<IpAddr> {
        peer_addr(self.extensions)
    }

    fn path(&self) -> Option<&str> {
        self.path
    }
}

/// The path as the client sent it: axum's `OriginalUri` when the router is
/// nested (it strips the outer prefix from the URI), else the URI's.
pub(crate) fn request_path<'a>(uri: &'a http::Uri, extensions: &'a Extensions) -> &'a str {
    #[cfg(feature = "axum")]
    if let Some(original) = extensions.get::<axum::extract::OriginalUri>() {
        return original.0.path();
    }
    let _ = extensions;
    uri.path()
}

pub(crate) fn peer_addr(extensions: &Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}
