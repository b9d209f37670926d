//! # reissue-tower
//!
//! [reissue](reissue_core) for tower and axum: a [`ReissueLayer`] that
//! verifies bearer access tokens on any http 1 tower stack, and, with the
//! `axum` feature (default), the [`AuthUser`] extractor and the `/auth`
//! [`router`] of login, reissue, logout and sessions.
//!
//! Everything that decides lives in `reissue-core`; this crate only
//! translates between `http`/axum and core, so the actix adapter answers with
//! the same bytes.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//!
//! use axum::{Router, routing::get};
//! use reissue_core::password::PasswordHasher; // feature "password"
//! use reissue_core::store::MemoryStore;
//! use reissue_core::{Algorithm, Authenticated, Authenticator, Config, Error, Key, KeySet, Reissue, UserClaims};
//! use reissue_tower::{AuthUser, DrainBodyLayer, ReissueLayer};
//!
//! #[derive(serde::Deserialize)]
//! struct Login {
//!     email: String,
//!     password: String,
//! }
//!
//! /// The application's user database: one user here. `reissue_core::Authenticator`'s
//! /// docs have a whole store; `examples/sqlx-app` keeps its users in Postgres.
//! struct Users {
//!     hasher: PasswordHasher,
//!     /// ada@example.com's argon2 hash, as a user table holds it.
//!     ada: String,
//! }
//!
//! impl Authenticator for Users {
//!     type Credentials = Login;
//!     type Claims = UserClaims;
//!
//!     fn account_key(&self, login: &Login) -> reissue_core::Result<String> {
//!         Ok(login.email.to_lowercase())
//!     }
//!
//!     async fn authenticate(&self, login: Login) -> reissue_core::Result<Authenticated<UserClaims>> {
//!         // An unknown email is verified against `None`: the same work and the
//!         // same answer as a wrong password, so the time tells nothing.
//!         let stored = (login.email == "ada@example.com").then_some(self.ada.as_str());
//!         if self.hasher.verify(&login.password, stored).await?.is_match() {
//!             Ok(Authenticated::new("1", UserClaims::new(login.email, vec![])))
//!         } else {
//!             Err(Error::InvalidCredentials)
//!         }
//!     }
//! }
//!
//! async fn me(user: AuthUser<UserClaims>) -> String {
//!     format!("hello, {} (session {})", user.claims.email, user.session_id.as_str())
//! }
//!
//! async fn home(user: Option<AuthUser<UserClaims>>) -> String {
//!     user.map_or_else(|| "hello, stranger".to_owned(), |u| format!("hello, {}", u.claims.email))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let key = Key::hmac("k1", Algorithm::HS256, b"a secret of at least thirty-two bytes")?;
//!     let config = Config::new("my-app", "my-app");
//!     let hasher = PasswordHasher::default();
//!     let users = Users { ada: hasher.hash("correct horse battery").await?, hasher };
//!     let reissue = Reissue::builder(config, KeySet::new(key)?, Arc::new(MemoryStore::new()), users).build()?;
//!     let verifier = reissue.verifier().clone();
//!
//!     let app = Router::new()
//!         .route("/me", get(me))
//!         .route_layer(ReissueLayer::new(verifier.clone()))
//!         .merge(Router::new().route("/", get(home)).route_layer(ReissueLayer::new(verifier).optional()))
//!         .merge(reissue_tower::router(reissue)) // POST /auth/login, /auth/reissue, ...
//!         .layer(DrainBodyLayer::new()); // oversized bodies still get their 4xx
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     // ConnectInfo gives core the client address (login policy, session list).
//!     axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//!     Ok(())
//! }
//! ```
//!
//! ## Protecting routes
//!
//! [`ReissueLayer::new`] requires a valid access token; failures are answered
//! by the layer as CONTRACT.md says (401 `unauthorized` / `invalid_token`, 400
//! `invalid_request`, 403 `insufficient_scope`, 503 in strict mode while the
//! store is down). [`ReissueLayer::optional`] lets anonymous requests through;
//! [`ReissueLayer::require_role`] demands a role. Use `route_layer` so that
//! unknown paths stay 404.
//!
//! ## Client address
//!
//! Core reads the socket peer address from axum's `ConnectInfo<SocketAddr>`
//! or, on other stacks, from a [`SocketAddr`](std::net::SocketAddr) request
//! extension, then applies the trusted-proxy rule itself.
//!
//! ## Request bodies
//!
//! The `/auth` handlers read at most core's
//! [`MAX_BODY_LEN`](reissue_core::MAX_BODY_LEN)` + 1` bytes and let core
//! refuse larger bodies (400 `invalid_request` JSON, never axum's 413/415/422
//! text). Because hyper resets a connection whose body was left unread, an
//! answer sent early (that 400, the layer's 401, a 404 or 405) can be lost
//! to a client still sending; [`DrainBodyLayer`] reads the rest away first.
//! The router applies it to itself; apply it to the whole application, last.
//!
//! ## OpenAPI
//!
//! With the `openapi` feature, `reissue_core::openapi` describes the
//! router's routes: `reissue.openapi().prefix("/auth").document()` is an
//! OpenAPI 3.1 document to merge into the application's own (the example
//! apps serve theirs at `GET /openapi.json`).
//!
//! ## Features
//!
//! The list comes from the crate's `Cargo.toml`.
#![doc = document_features::document_features!()]
#![cfg_attr(
    not(feature = "axum"),
    doc = "",
    doc = "[`AuthUser`]: https://docs.rs/reissue-tower/0.1.0/reissue_tower/struct.AuthUser.html",
    doc = "[`router`]: https://docs.rs/reissue-tower/0.1.0/reissue_tower/fn.router.html",
    doc = "[`DrainBodyLayer`]: https://docs.rs/reissue-tower/0.1.0/reissue_tower/struct.DrainBodyLayer.html"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

// The README's examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod auth;
#[cfg(feature = "axum")]
mod drain;
#[cfg(feature = "axum")]
mod extract;
mod reply;
mod request;
#[cfg(feature = "axum")]
mod router;

pub use auth::{ReissueLayer, ReissueService, ResponseBody, ResponseFuture};
#[cfg(feature = "axum")]
pub use drain::{DrainBody, DrainBodyLayer, DrainFuture};
#[cfg(feature = "axum")]
pub use extract::{AuthUser, AuthUserRejection, BufferedRequest};
#[cfg(feature = "axum")]
pub use reply::ReplyResponse;
pub use request::RequestHead;
#[cfg(feature = "axum")]
pub use router::{router, router_at};

/// The OpenAPI 3.1 document of the routes [`router_at`] mounts (feature
/// `openapi`): `reissue.openapi().prefix(prefix).document()`, to serve or
/// merge into the application's own; see [`AuthApi`](reissue_core::openapi::AuthApi).
#[cfg(feature = "openapi")]
pub use reissue_core::openapi;

/// reissue-core, for naming its types (`reissue_tower::reissue_core::Config`)
/// without a dependency line of its own that could drift to another version.
pub use reissue_core;
