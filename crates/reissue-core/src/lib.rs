//! # reissue-core
//!
//! JWT login sessions: short-lived access tokens, long-lived refresh tokens
//! kept in a store (Redis or memory), rotation with reuse detection, logout,
//! logout everywhere and forced logout. No HTTP types: the `reissue-tower` and
//! `reissue-actix` adapters translate between their framework and this crate.
//!
//! With the `openapi` feature, [`openapi::AuthApi`] is the OpenAPI 3.1
//! document of the `/auth` routes the adapters mount.
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
mod error;
mod http;
mod ids;
mod metering;
pub mod policy;
mod session;
pub mod store;
mod tokens;
mod verification;

pub use audit::{AuditEvent, AuditKind, AuditSink};
pub use config::Config;
pub use credentials::{Authenticated, Authenticator};
pub use error::{Error, Result, TokenRejection};
#[cfg(feature = "openapi")]
pub use http::openapi;
pub use http::{
    CookieTransport, HttpRequest, MAX_BODY_LEN, Origin, REFRESH_COOKIE, Reply, TRANSPORT_HEADER,
    bearer_token, json_body,
};
pub use ids::{Country, SessionId};
pub use metering::SharedRecorder;
pub use session::{Reissue, ReissueBuilder, TokenPair};
pub use tokens::{
    ACCESS_TOKEN_TYPE, AccessClaims, Claims, Key, KeySet, MAX_TOKEN_LEN, REFRESH_TOKEN_TYPE,
    RefreshClaims, TokenCodec, UserClaims,
};
pub use verification::{Access, Identity, RevocationMode, Revocations, Verifier};

#[cfg(feature = "redis")]
pub use fred;
pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::JwkSet;

/// The realm of `WWW-Authenticate` challenges unless configured.
pub const DEFAULT_REALM: &str = "reissue";
