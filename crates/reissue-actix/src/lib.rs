//! # reissue-actix
//!
//! [reissue](reissue_core) for actix-web: a middleware that verifies access
//! tokens on protected routes, extractors for the verified caller, and the
//! `/auth` endpoints (login, reissue, logout, logout everywhere, sessions,
//! JWKS). Every decision is reissue-core's; this crate only translates
//! between actix-web and core, so it answers exactly as `reissue-tower` does.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use reissue_actix::{AuthUser, ReissueMiddleware};
//! use reissue_core::{Authenticator, Reissue, UserClaims};
//!
//! async fn me(user: AuthUser<UserClaims>) -> String {
//!     format!("hello, {}", user.claims.email)
//! }
//!
//! async fn run<A: Authenticator<Claims = UserClaims>>(reissue: Reissue<A>) -> std::io::Result<()> {
//!     HttpServer::new(move || {
//!         App::new()
//!             // POST /auth/login, /auth/reissue, /auth/logout, ...
//!             .configure(reissue_actix::configure(reissue.clone()))
//!             .service(
//!                 web::scope("/api")
//!                     .wrap(ReissueMiddleware::new(reissue.verifier().clone()))
//!                     .route("/me", web::get().to(me)),
//!             )
//!     })
//!     .bind("127.0.0.1:3000")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! - [`ReissueMiddleware`] (`wrap` an app, scope or resource): required by
//!   default, [`optional`](ReissueMiddleware::optional), or with
//!   [`require_role`](ReissueMiddleware::require_role).
//! - [`AuthUser`], and `Option<AuthUser<C>>` where login is optional.
//! - [`configure`] / [`scope`]: the `/auth` endpoints under a prefix.
//! - [`BufferedRequest`] and [`RequestHead`]: an actix-web request as core's
//!   [`HttpRequest`](reissue_core::HttpRequest), for calling core yourself.
//! - [`into_response`] and [`ReissueError`]: core's replies and errors as
//!   actix-web responses, byte for byte what core says.
//! - With the `openapi` feature, `reissue_core::openapi`: the OpenAPI 3.1 document of
//!   these routes, `reissue.openapi().prefix(DEFAULT_PREFIX).document()`.
//!
//! ## Features
//!
//! The list comes from the crate's `Cargo.toml`.
#![doc = document_features::document_features!()]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

// The README's examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod extract;
mod middleware;
mod request;
mod response;
mod routes;

pub use extract::{AuthUser, BufferedRequest, BufferedRequestFuture};
pub use middleware::{ReissueMiddleware, ReissueService, ResponseFuture};
pub use request::RequestHead;
pub use response::{ReissueError, into_response};
pub use routes::{DEFAULT_PREFIX, configure, scope};

/// The OpenAPI 3.1 document of the routes [`scope`] mounts (feature
/// `openapi`): `reissue.openapi().prefix(prefix).document()`, to serve or
/// merge into the application's own; see [`AuthApi`](reissue_core::openapi::AuthApi).
#[cfg(feature = "openapi")]
pub use reissue_core::openapi;

pub use reissue_core;
