//! Reading what a handler left of a request body before answering, so that
//! an early answer is not lost to a connection reset; see [`DrainBodyLayer`].

mod body;
mod future;
mod layer;
mod service;

pub use future::DrainFuture;
pub use layer::DrainBodyLayer;
pub use service::DrainBody;

/// What is drained unless configured: as much as axum's default body limit.
pub(crate) const DEFAULT_LIMIT: usize = 2 * 1024 * 1024;
