//! The token claims: the registered ones reissue manages and the application's own.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::SessionId;

/// The application's own claims, carried in every access token.
///
/// Implement [`Claims::has_role`] to use role requirements
/// (403 `insufficient_scope`).
pub trait Claims: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Whether the user holds `role`. Default: no roles.
    fn has_role(&self, role: &str) -> bool {
        let _ = role;
        false
    }
}

/// Ready-made claims: an email and a list of roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserClaims {
    /// The user's email.
    pub email: String,
    /// The user's roles, e.g. `["admin"]`.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl UserClaims {
    /// Claims with an email and roles.
    pub fn new(email: impl Into<String>, roles: Vec<String>) -> Self {
        Self {
            email: email.into(),
            roles,
        }
    }
}

impl Claims for UserClaims {
    fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Claims that are arbitrary JSON; roles are read from a `roles` array.
impl Claims for serde_json::Value {
    fn has_role(&self, role: &str) -> bool {
        self.get("roles")
            .and_then(|r| r.as_array())
            .is_some_and(|roles| roles.iter().any(|r| r.as_str() == Some(role)))
    }
}

/// The payload of an access token (RFC 9068).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessClaims<C> {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session id.
    pub sid: SessionId,
    /// A unique id of this token.
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// When the user last proved themselves to this session (its login or
    /// a reauthentication), Unix seconds; the same across rotations. Absent
    /// in tokens minted before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The application's claims.
    #[serde(flatten)]
    pub app: C,
}

/// The registered claims of a refresh token: what the store needs to check
/// it. The token also carries the application's claims (its `app` member),
/// which a reissue copies into the successor tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session id.
    pub sid: SessionId,
    /// The generation of the session's refresh token this one is.
    #[serde(rename = "gen")]
    pub generation: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// The session's `auth_time`, carried to the successor tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
}
