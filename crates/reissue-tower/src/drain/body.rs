use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// The request body, shared between the handler, which reads what it wants,
/// and the drain, which takes what is left once the handler has answered.
#[derive(Clone)]
pub(crate) struct SharedBody(Arc<Mutex<Option<Body>>>);

impl SharedBody {
    pub(crate) fn new(body: Body) -> Self {
        Self(Arc::new(Mutex::new(Some(body))))
    }

    fn lock(&self) -> MutexGuard<'_, Option<Body>> {
        // Polling a body cannot leave the Option half-updated.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the body from the handler's side: it reads an ended body from now on.
    pub(crate) fn take(&self) -> Option<Body> {
        self.lock().take()
    }
}

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.lock().as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.lock()
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.lock()
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}
