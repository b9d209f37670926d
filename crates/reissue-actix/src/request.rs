//! actix-web's request, as reissue-core sees it.

use std::net::IpAddr;

/// An actix-web request seen through reissue-core's
/// [`HttpRequest`](reissue_core::HttpRequest): its headers and socket peer
/// address. For calling core directly, e.g. `reissue.client_of(&RequestHead::from(&req))`.
///
/// The peer is [`actix_web::HttpRequest::peer_addr`], never the
/// `X-Forwarded-For`-derived `realip_remote_addr`: core applies the
/// trusted-proxy rule itself.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a>(&'a actix_web::HttpRequest);

impl<'a> From<&'a actix_web::HttpRequest> for RequestHead<'a> {
    fn from(req: &'a actix_web::HttpRequest) -> Self {
        Self(req)
    }
}

impl reissue_core::HttpRequest for RequestHead<'_> {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.0.headers().get_all(name).map(|value| value.as_bytes())
    }

    fn peer_addr(&self) -> Option<IpAddr> {
        self.0.peer_addr().map(|addr| addr.ip())
    }

    fn path(&self) -> Option<&str> {
        Some(self.0.path())
    }
}
