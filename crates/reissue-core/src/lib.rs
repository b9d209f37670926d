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
mod claims;
mod config;
mod cookie_transport;
mod credentials;
mod endpoint;
mod error;
mod ids;
mod jws;
mod keys;
mod live_batch;
mod metering;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod policy;
mod reissue;
mod reply;
mod request;
mod revocation;
pub mod store;
mod token;
mod token_cache;
mod user_agent;
mod verifier;

pub use audit::{AuditEvent, AuditKind, AuditSink};
pub use claims::{AccessClaims, Claims, RefreshClaims, UserClaims};
pub use config::Config;
pub use cookie_transport::{CookieTransport, Origin, REFRESH_COOKIE, TRANSPORT_HEADER};
pub use credentials::{Authenticated, Authenticator};
pub use endpoint::{MAX_BODY_LEN, json_body};
pub use error::{Error, Result, TokenRejection};
pub use ids::{Country, SessionId};
pub use keys::{Key, KeySet};
pub use metering::SharedRecorder;
pub use reissue::{Reissue, ReissueBuilder, TokenPair};
pub use reply::Reply;
pub use request::{HttpRequest, bearer_token};
pub use revocation::{RevocationMode, Revocations};
pub use token::{ACCESS_TOKEN_TYPE, MAX_TOKEN_LEN, REFRESH_TOKEN_TYPE, TokenCodec};
pub use verifier::{Access, Identity, Verifier};

pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::JwkSet;

/// The realm of `WWW-Authenticate` challenges unless configured.
pub const DEFAULT_REALM: &str = "reissue";
