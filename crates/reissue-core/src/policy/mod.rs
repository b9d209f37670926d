//! The address and country policy: the seed's "unwanted foreign IP".
//!
//! A [`Policy`] is consulted at login and at reissue with the client address,
//! its country, the user agent and the session. The built-in rules are
//! [`CidrRules`], [`CountryRule`] and [`CountryChanged`], combined in order by
//! [`PolicySet`]; [`client_ip`] resolves the client address behind
//! [`TrustedProxies`]; with the `geoip` feature, `GeoIp` looks countries up in
//! a MaxMind database.
//!
//! ```
//! use reissue_core::policy::{CidrRules, CountryChanged, CountryRule, PolicySet};
//!
//! # fn main() -> Result<(), reissue_core::Error> {
//! let policy = PolicySet::new()
//!     .with(CidrRules::parse("", "203.0.113.0/24")?)
//!     .with(CountryRule::parse_allow("DE, AT, CH")?)
//!     .with(CountryChanged);
//! # assert_eq!(policy.len(), 3);
//! # Ok(())
//! # }
//! ```

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
    /// The user; at login, the account as the credentials name it
    /// ([`Authenticator::account_key`](crate::Authenticator::account_key)),
    /// since the policy runs before the password is checked (a refused
    /// client costs no password check and learns nothing about it).
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

impl<'a> PolicyContext<'a> {
    /// A context at `stage` for `user_id` at `ip`, with nothing else known;
    /// the setters below fill in the rest (custom policies' tests need this,
    /// the struct being `#[non_exhaustive]`).
    pub fn new(stage: Stage, user_id: &'a str, ip: IpAddr) -> Self {
        Self {
            stage,
            user_id,
            session_id: None,
            ip,
            country: None,
            user_agent: None,
            login_country: None,
        }
    }

    /// The session.
    #[must_use]
    pub fn session_id(mut self, session_id: &'a SessionId) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// The client address's country.
    #[must_use]
    pub fn country(mut self, country: impl Into<Option<Country>>) -> Self {
        self.country = country.into();
        self
    }

    /// The `User-Agent` header.
    #[must_use]
    pub fn user_agent(mut self, user_agent: &'a str) -> Self {
        self.user_agent = Some(user_agent);
        self
    }

    /// The country recorded at login.
    #[must_use]
    pub fn login_country(mut self, country: impl Into<Option<Country>>) -> Self {
        self.login_country = country.into();
        self
    }
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
    /// The contract's refusal at `stage`: [`Decision::Deny`] at login,
    /// [`Decision::RevokeSession`] at reissue (a refused reissue is a forced
    /// logout). The built-in rules refuse with this.
    pub fn refusal(stage: Stage, rule: impl Into<Cow<'static, str>>) -> Self {
        let rule = rule.into();
        match stage {
            Stage::Login => Self::Deny { rule },
            Stage::Reissue => Self::RevokeSession { rule },
        }
    }

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

#[cfg(feature = "geoip")]
mod geoip;
mod rules;

pub use crate::client::{TrustedProxies, client_ip};
#[cfg(feature = "geoip")]
pub use geoip::GeoIp;
pub use rules::{CidrRules, CountryChanged, CountryRule, PolicySet};
