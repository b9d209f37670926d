use tower_layer::Layer;

use super::{DEFAULT_LIMIT, DrainBody};

/// Reads what the inner service left of each request body, up to a limit,
/// after it has answered and before the answer is sent.
///
/// hyper closes a connection whose request body was not read to the end; if
/// the client is still sending, the close becomes a reset and the client
/// never sees the answer (a 400 for an oversized body, a 401 from
/// [`ReissueLayer`](crate::ReissueLayer), a 404 or 405). The `/auth`
/// [`router`](crate::router) applies this layer to itself; apply it to the
/// rest of an application with `Router::layer`, last:
///
/// ```
/// use axum::{Router, routing::get};
/// use reissue_tower::DrainBodyLayer;
///
/// let app: Router = Router::new().route("/health", get(|| async { "ok" })).layer(DrainBodyLayer::new());
/// ```
///
/// A request without a body passes straight through, without allocating.
/// A handler that hands the body to a task outliving its answer sees it end
/// early: the drain takes it.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct DrainBodyLayer {
    limit: usize,
}

impl DrainBodyLayer {
    /// Drains up to 2 MiB per request (axum's default body limit).
    pub fn new() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
        }
    }

    /// Drains up to `bytes` per request. A body declared longer than this
    /// (`Content-Length`) is not drained at all: the connection is closed.
    pub fn limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }
}

impl Default for DrainBodyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for DrainBodyLayer {
    type Service = DrainBody<S>;

    fn layer(&self, inner: S) -> DrainBody<S> {
        DrainBody::new(inner, self.limit)
    }
}
