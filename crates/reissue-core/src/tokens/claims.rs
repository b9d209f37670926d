//! The token claims: the registered ones reissue manages and the application's own.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::SessionId;

/// The application's own claims, carried in every access token.
///
/// Implement [`Claims::has_role`] to use role requirements
/// (403 `insufficient_scope`).
///
/// The claims are written into the access token beside the registered ones,
/// so they must not use a reserved member name ([`RESERVED_CLAIMS`](crate::RESERVED_CLAIMS)):
/// `iss`, `aud`, `sub`, `sid`, `jti`, `iat`, `exp`, `nbf`, `typ`, `gen`,
/// `app`, `client_id`, `auth_time`, `amr`, `cnf`. A claims type with such a
/// field is refused by [`ReissueBuilder::build`](crate::ReissueBuilder::build),
/// naming the member; claims that name no fields (a JSON value) are checked
/// each time a token is minted.
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
    /// The client the token was issued to (RFC 9068 §2.2;
    /// [`Config::client_id`](crate::Config::client_id)). `None` only in a
    /// token minted before reissue set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// When the user last proved themselves in this session (the login that
    /// started it), Unix seconds; the same across rotations. `None` only in
    /// a token minted before reissue set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// How they proved themselves (RFC 8176, e.g. `["pwd"]`), where the
    /// authenticator said so; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The key the session is bound to (RFC 7800 `cnf`, RFC 9449 §6:
    /// `{"jkt": ...}`); `None` for an unbound session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The application's claims.
    #[serde(flatten)]
    pub app: C,
}

/// The key a session is bound to (RFC 7800 `cnf`): the RFC 7638 thumbprint
/// of its DPoP key (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Confirmation {
    /// The key's thumbprint: base64url of its SHA-256, 43 characters.
    pub jkt: String,
}

impl Confirmation {
    /// A binding to the key of thumbprint `jkt`.
    pub fn new(jkt: impl Into<String>) -> Self {
        Self { jkt: jkt.into() }
    }
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
    /// When and how the user proved themselves; carried into every
    /// successor unchanged. Empty in a token minted before reissue set it.
    #[serde(flatten)]
    pub authentication: Authentication,
}

/// When and how the user proved themselves in a session: `auth_time` and
/// `amr` of its access tokens. A refresh token carries it, so that every
/// rotation, and every replay on any instance, hands the same one on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Authentication {
    /// When, Unix seconds (`None` in a session started before reissue
    /// recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// How (RFC 8176 method names, e.g. `["pwd"]`); empty when the
    /// authenticator did not say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The DPoP key the session is bound to, if it is: every token of the
    /// session carries it (`cnf`), and every successor copies it, so that a
    /// bound session stays bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl Authentication {
    /// An authentication at `auth_time` (Unix seconds) by the methods `amr`.
    pub fn new(auth_time: u64, amr: Vec<String>) -> Self {
        Self {
            auth_time: Some(auth_time),
            amr,
            cnf: None,
        }
    }

    /// This authentication, of a session bound to `cnf` (or unbound: `None`).
    #[must_use]
    pub fn bound(mut self, cnf: Option<Confirmation>) -> Self {
        self.cnf = cnf;
        self
    }

    /// The thumbprint of the key the session is bound to.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().map(|c| c.jkt.as_str())
    }
}
