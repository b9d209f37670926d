//! # reissue-core
//!
//! JWT login sessions: short-lived access tokens, long-lived refresh tokens
//! kept in a store (Redis or memory), rotation with reuse detection, logout,
//! logout everywhere and forced logout. No HTTP types: the `reissue-tower` and
//! `reissue-actix` adapters translate between their framework and this crate,
//! and mount the `/auth` routes that call it.
//!
//! ## Example
//!
//! [`Reissue::builder`] takes the [`Config`], the signing [`KeySet`], a
//! store ([`store::MemoryStore`] here, [`store::RedisStore`] with the `redis`
//! feature) and your user database: an [`Authenticator`], here over a
//! `HashMap`, with passwords hashed by the `password` feature's
//! `password::PasswordHasher` (an unknown email costs the same argon2 work as
//! a wrong password, so timing tells nothing).
//!
//! ```rust
//! # #[cfg(feature = "password")]
//! # mod example {
//! use std::collections::HashMap;
//! use std::sync::Arc;
//!
//! use reissue_core::password::PasswordHasher;
//! use reissue_core::store::MemoryStore;
//! use reissue_core::{
//!     Algorithm, Authenticated, Authenticator, Config, Error, Key, KeySet, Reissue, Result,
//!     UserClaims,
//! };
//!
//! /// What `POST /auth/login` deserializes its JSON body into.
//! #[derive(serde::Deserialize)]
//! pub struct Login {
//!     email: String,
//!     password: String,
//! }
//!
//! /// Normalised email → (user id, argon2 hash).
//! pub struct Users {
//!     hasher: PasswordHasher,
//!     by_email: HashMap<String, (String, String)>,
//! }
//!
//! impl Authenticator for Users {
//!     type Credentials = Login;
//!     type Claims = UserClaims;
//!
//!     fn account_key(&self, login: &Login) -> Result<String> {
//!         Ok(login.email.trim().to_lowercase()) // login attempts are counted per account key
//!     }
//!
//!     async fn authenticate(&self, login: Login) -> Result<Authenticated<UserClaims>> {
//!         let email = self.account_key(&login)?;
//!         let user = self.by_email.get(&email);
//!         // No early return for an unknown email: `None` costs what a wrong password costs.
//!         let verified = self.hasher.verify(&login.password, user.map(|(_, h)| h.as_str())).await?;
//!         match user {
//!             Some((id, _)) if verified.is_match() => {
//!                 Ok(Authenticated::new(id.clone(), UserClaims::new(email, vec![])))
//!             }
//!             _ => Err(Error::InvalidCredentials),
//!         }
//!     }
//! }
//!
//! #[tokio::main]
//! pub async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//!     // Cheap argon2 parameters for the example; keep the default in an app.
//!     let params = reissue_core::password::Argon2Params::new(64, 1, 1)?;
//!     let hasher = PasswordHasher::builder().params(params).build()?;
//!     let hash = hasher.hash("correct horse battery").await?;
//!     let users = Users {
//!         hasher,
//!         by_email: HashMap::from([("ada@example.com".into(), ("1".into(), hash))]),
//!     };
//!
//!     let key = Key::hmac("k1", Algorithm::HS256, b"a secret of at least thirty-two bytes")?;
//!     let store = Arc::new(MemoryStore::new()); // or RedisStore::connect(..) (feature `redis`)
//!     let reissue = Reissue::builder(Config::new("my-app", "my-app"), KeySet::new(key)?, store, users)
//!         .build()?;
//!
//!     // What the adapters' `/auth` routes and middleware do for you:
//!     let client = reissue.client_at(None, None); // the peer address and User-Agent
//!     let login = Login { email: "ada@example.com".into(), password: "correct horse battery".into() };
//!     let pair = reissue.login(login, &client).await?;
//!     let me = reissue.verifier().verify(&pair.access_token)?;
//!     assert_eq!(me.user_id, "1");
//!
//!     let next = reissue.reissue(&pair.refresh_token, &client).await?; // rotation
//!     reissue.logout(&me.user_id, &me.session_id).await?;
//!     assert!(reissue.reissue(&next.refresh_token, &client).await.is_err());
//!     Ok(())
//! }
//! # }
//! # #[cfg(feature = "password")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> { example::main() }
//! # #[cfg(not(feature = "password"))]
//! # fn main() {}
//! ```
//!
//! ## Map
//!
//! - [`Reissue`]: login, reissue (rotation, grace, reuse detection), logout,
//!   sessions; [`Verifier`] checks access tokens per request, in the
//!   [`RevocationMode`] of the [`Config`].
//! - [`Authenticator`]: your user database, behind login.
//! - [`store`]: where sessions live ([`store::RefreshStore`] and its parts).
//! - [`policy`]: the address and country policy.
//! - [`Error`] knows its HTTP meaning ([`Reply`]), which both adapters render.
//! - With the `openapi` feature, [`openapi::AuthApi`] is the OpenAPI 3.1
//!   document of the `/auth` routes the adapters mount.
//!
//! ## Features
//!
//! The list comes from the crate's `Cargo.toml`.
#![doc = document_features::document_features!()]
#![cfg_attr(
    not(feature = "openapi"),
    doc = "",
    doc = "[`openapi::AuthApi`]: https://docs.rs/reissue-core/0.1.0/reissue_core/openapi/struct.AuthApi.html"
)]
#![cfg_attr(
    not(feature = "redis"),
    doc = "",
    doc = "[`store::RedisStore`]: https://docs.rs/reissue-core/0.1.0/reissue_core/store/struct.RedisStore.html"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

// The README's examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod audit;
mod client;
mod clock;
mod config;
mod credentials;
mod dpop;
mod error;
pub mod fuzzing;
mod http;
mod ids;
mod metering;
#[cfg(feature = "password")]
pub mod password;
pub mod policy;
mod session;
pub mod store;
mod tokens;
mod verification;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use audit::{AuditEvent, AuditKind, AuditSink};
pub use config::Config;
pub use credentials::{Authenticated, Authenticator};
pub use dpop::{DpopAlgorithms, DpopMode, DpopProof, MAX_PROOF_LEN, ProofRejection};
pub use error::{Error, Result, TokenRejection};
#[cfg(feature = "openapi")]
pub use http::openapi;
pub use http::routes;
pub use http::{
    CookieTransport, HttpRequest, MAX_BODY_LEN, Origin, REFRESH_COOKIE, Reply, TRANSPORT_HEADER,
    bearer_token, json_body,
};
pub use ids::{Country, SessionId};
pub use metering::SharedRecorder;
pub use session::{Reissue, ReissueBuilder, TokenPair};
pub use tokens::{
    ACCESS_TOKEN_TYPE, AccessClaims, Authentication, Claims, Confirmation, Key, KeySet,
    MAX_TOKEN_LEN, REFRESH_TOKEN_TYPE, RESERVED_CLAIMS, RefreshClaims, TokenCodec, UserClaims,
};
pub use verification::{
    Access, Admission, Gate, Identity, Pending, RevocationMode, Revocations, Verifier,
};

#[cfg(feature = "redis")]
pub use fred;
pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::JwkSet;

/// The realm of `WWW-Authenticate` challenges unless configured.
pub const DEFAULT_REALM: &str = "reissue";
