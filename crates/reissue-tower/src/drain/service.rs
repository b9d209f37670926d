use std::task::{Context, Poll};

use axum::body::Body;
use http::Request;
use http_body::Body as _;
use tower_service::Service;

use super::DrainFuture;
use super::body::SharedBody;

/// The service of [`DrainBodyLayer`](super::DrainBodyLayer).
#[derive(Debug, Clone)]
pub struct DrainBody<S> {
    inner: S,
    limit: usize,
}

impl<S> DrainBody<S> {
    pub(crate) fn new(inner: S, limit: usize) -> Self {
        Self { inner, limit }
    }
}

impl<S> Service<Request<Body>> for DrainBody<S>
where
    S: Service<Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = DrainFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let body = req.body();
        if body.is_end_stream() || body.size_hint().lower() > self.limit as u64 {
            return DrainFuture::passthrough(self.inner.call(req));
        }
        let (parts, body) = req.into_parts();
        let shared = SharedBody::new(body);
        let future = self
            .inner
            .call(Request::from_parts(parts, Body::new(shared.clone())));
        DrainFuture::shared(future, shared, self.limit)
    }
}
