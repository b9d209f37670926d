//! The middleware that authenticates protected routes.
//!
//! [`ReissueMiddleware`] verifies the request's bearer access token with core's
//! [`Verifier`](reissue_core::Verifier) and stores the
//! [`Identity`](reissue_core::Identity) in the request's extensions, where the
//! [`AuthUser`](crate::AuthUser) extractor finds it. A refused request never
//! reaches the handler: it gets core's error reply (JSON body,
//! `WWW-Authenticate`, `Retry-After`).
//!
//! Each request is decided by core's [`Gate`](reissue_core::Gate), which
//! verifies the token once. With strict revocation off that decides,
//! synchronously inside `call`, without allocating; with it on, the store
//! round trip on the already-verified identity runs in a boxed future.

mod future;
mod service;
mod transform;

pub use future::ResponseFuture;
pub use service::ReissueService;
pub use transform::ReissueMiddleware;
