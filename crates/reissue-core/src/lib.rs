//! # reissue-core
//!
//! JWT login sessions: short-lived access tokens, long-lived refresh tokens
//! kept in a store (Redis or memory), rotation with reuse detection, logout,
//! logout everywhere and forced logout. No HTTP types: the `reissue-tower` and
//! `reissue-actix` adapters translate between their framework and this crate.
#![forbid(unsafe_code)]

mod audit;
mod claims;
mod credentials;
mod error;
mod ids;
pub mod policy;
mod reply;

pub use audit::{AuditEvent, AuditKind, AuditSink};
pub use claims::{AccessClaims, Claims, RefreshClaims, UserClaims};
pub use credentials::{Authenticated, Authenticator};
pub use error::{Error, Result, TokenRejection};
pub use ids::{Country, SessionId};
pub use reply::Reply;

/// The realm of `WWW-Authenticate` challenges unless configured.
pub const DEFAULT_REALM: &str = "reissue";
