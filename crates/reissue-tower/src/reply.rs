//! Rendering core's [`Reply`] as an `http` response: the one place it happens.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use reissue_core::Reply;

/// Builds a response from a reply; `body` turns the reply's bytes (`None`
/// for no body) into the response body type.
pub(crate) fn to_response<B>(
    reply: Reply,
    body: impl FnOnce(Option<Bytes>) -> B,
) -> http::Response<B> {
    let mut headers = HeaderMap::with_capacity(reply.headers.len());
    for (name, value) in reply.headers {
        // Core only writes static lower-case names and printable values; a
        // header that does not convert is dropped rather than failing the reply.
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::try_from(value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => tracing::warn!(
                header = name,
                "dropping a reply header that is not valid HTTP"
            ),
        }
    }
    let mut response = http::Response::new(body(reply.body.map(Bytes::from)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *response.headers_mut() = headers;
    response
}

#[cfg(feature = "axum")]
mod axum_impl {
    use axum::body::Body;
    use axum::response::{IntoResponse, Response};
    use reissue_core::Reply;

    /// A core [`Reply`] as an axum response: what handlers return after
    /// calling a framework-neutral function of reissue-core (or of an
    /// application built the same way).
    ///
    /// ```
    /// use reissue_core::Reply;
    /// use reissue_tower::ReplyResponse;
    ///
    /// async fn health() -> ReplyResponse {
    ///     Reply::json(200, &serde_json::json!({ "status": "ok" })).into()
    /// }
    /// ```
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ReplyResponse(pub Reply);

    impl From<Reply> for ReplyResponse {
        fn from(reply: Reply) -> Self {
            Self(reply)
        }
    }

    impl IntoResponse for ReplyResponse {
        fn into_response(self) -> Response {
            super::to_response(self.0, |body| body.map_or_else(Body::empty, Body::from))
        }
    }
}

#[cfg(feature = "axum")]
pub use axum_impl::ReplyResponse;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_all_go_out() {
        let mut reply = Reply::with_body(200, "text/plain", "x");
        reply.headers.push(("set-cookie", "a=1".to_owned()));
        reply.headers.push(("set-cookie", "b=2".to_owned()));
        let response = to_response(reply, |b| b);
        let all: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
        assert_eq!(all, ["a=1", "b=2"]);
    }
}
