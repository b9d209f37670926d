//! # reissue-core
//!
//! JWT login sessions: short-lived access tokens, long-lived refresh tokens
//! kept in a store (Redis or memory), rotation with reuse detection, logout,
//! logout everywhere and forced logout. No HTTP types: the `reissue-tower` and
//! `reissue-actix` adapters translate between their framework and this crate.
//!
//! With the `openapi` feature, [`openapi::AuthApi`] is the OpenAPI 3.1
//! document of the `/auth` routes the adapters mount.
#![forbid(unsafe_code)]

mod audit;
mod client;
mod clock;
mod config;
mod credentials;
mod error;
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

pub use audit::{AuditEvent, AuditKind, AuditSink};
pub use config::Config;
pub use credentials::{Authenticated, Authenticator};
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
    ACCESS_TOKEN_TYPE, AccessClaims, Authentication, Claims, Key, KeySet, MAX_TOKEN_LEN,
    REFRESH_TOKEN_TYPE, RefreshClaims, TokenCodec, UserClaims,
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
