//! Protecting routes: a tower layer that verifies bearer access tokens.
//!
//! [`ReissueLayer`] reads `Authorization: Bearer <access token>`, has
//! reissue-core's [`Verifier`](reissue_core::Verifier) check it, and puts the
//! [`Identity`](reissue_core::Identity) in the request extensions, as an
//! `Arc<Identity<C>>` (the verified-token cache's own, shared, not copied). Failures are
//! core's replies (JSON body, `WWW-Authenticate`, `Retry-After`), so every
//! adapter answers with the same bytes.
//!
//! It works on any http 1 tower stack, not only axum:
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use http::{Request, Response};
//! use reissue_core::{Identity, UserClaims, Verifier};
//! use reissue_tower::ReissueLayer;
//! use tower::{ServiceBuilder, service_fn};
//!
//! fn protect(verifier: Verifier<UserClaims>) {
//!     let service = ServiceBuilder::new()
//!         .layer(ReissueLayer::new(verifier).require_role("admin"))
//!         .service(service_fn(|req: Request<String>| async move {
//!             let user = req.extensions().get::<Arc<Identity<UserClaims>>>().expect("the layer inserted it");
//!             Ok::<_, Infallible>(Response::new(format!("hello, {}", user.claims.email)))
//!         }));
//!     # drop(service);
//! }
//! ```
//!
//! Each request is decided by core's [`Gate`](reissue_core::Gate), which
//! verifies the token once. In stateless mode (the default) that decides:
//! the layer calls the inner service directly and its response future only
//! wraps the inner one. In strict mode the session check is a store round
//! trip, which the response future awaits (on the identity already
//! verified) before calling the inner service.

mod body;
mod future;
mod layer;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::ReissueLayer;
pub use service::ReissueService;

/// Marks a request the layer let through without credentials (optional
/// mode), so that extractors can tell "anonymous" from "no layer".
#[derive(Clone)]
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) struct Anonymous<C> {
    pub(crate) gate: reissue_core::Gate<C>,
}
