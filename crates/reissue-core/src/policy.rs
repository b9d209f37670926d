//! The address and country policy: the seed's "unwanted foreign IP".
//!
//! A [`Policy`] is consulted at login and at reissue with the client address,
//! its country, the user agent and the session. Built-in rules live in
//! [`rules`]; [`client_ip`] resolves the client address behind trusted proxies;
//! with the `geoip` feature, [`GeoIp`] looks countries up in a MaxMind database.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use crate::{Country, SessionId};

/// Where in the session's life the policy is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Credentials were accepted; no session exists yet.
    Login,
    /// A refresh token is being exchanged.
    Reissue,
}

/// What the policy sees.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PolicyContext<'a> {
    /// Login or reissue.
    pub stage: Stage,
    /// The user.
    pub user_id: &'a str,
    /// The session (`None` at login).
    pub session_id: Option<&'a SessionId>,
    /// The client address (after the trusted-proxy rule).
    pub ip: IpAddr,
    /// The client address's country, if the database knows it.
    pub country: Option<Country>,
    /// The `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// The country recorded when the session logged in (`None` at login, or unknown).
    pub login_country: Option<Country>,
}

/// A policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Go on.
    Allow,
    /// Refuse with 403 `access_denied`. At reissue every refusal also revokes the
    /// session (the contract's forced logout), so `Deny` and `RevokeSession` differ
    /// only at login.
    Deny {
        /// The rule that refused, for the audit trail (e.g. `country_not_allowed`).
        rule: Cow<'static, str>,
    },
    /// Refuse and revoke the session.
    RevokeSession {
        /// The rule that refused.
        rule: Cow<'static, str>,
    },
    /// Refuse and revoke every session of the user.
    RevokeUser {
        /// The rule that refused.
        rule: Cow<'static, str>,
    },
}

impl Decision {
    /// The refusing rule, `None` for [`Decision::Allow`].
    pub fn rule(&self) -> Option<&str> {
        match self {
            Self::Allow => None,
            Self::Deny { rule } | Self::RevokeSession { rule } | Self::RevokeUser { rule } => {
                Some(rule)
            }
        }
    }
}

/// Decides whether a login or reissue may go on. Called on the request path:
/// keep it fast and free of I/O (look-ups are in memory).
pub trait Policy: Send + Sync + fmt::Debug + 'static {
    /// Decides.
    fn check(&self, ctx: &PolicyContext<'_>) -> Decision;
}

/// Finds the country of an address.
pub trait CountryLookup: Send + Sync + fmt::Debug + 'static {
    /// The country, `None` when unknown (loopback, private ranges, not in the database).
    fn country(&self, ip: IpAddr) -> Option<Country>;
}

mod address;
pub use address::{TrustedProxies, client_ip};
