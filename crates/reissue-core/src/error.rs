//! The one error type of reissue, and its HTTP meaning as plain data.

use std::borrow::Cow;
use std::fmt;

/// Why a token was refused. Carried by [`Error::InvalidToken`]; the description
/// is safe to show a client (it never contains the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenRejection {
    /// Not three base64url parts, bad JSON, or otherwise unparsable.
    Malformed,
    /// Longer than the 8 KiB limit; refused before any parsing.
    TooLong,
    /// The signature does not verify with the key named by `kid`.
    BadSignature,
    /// The header's `alg` is not the algorithm of the key (includes `none`).
    AlgorithmNotAllowed,
    /// `kid` missing, or not one of the configured keys.
    UnknownKey,
    /// Past `exp` (plus leeway).
    Expired,
    /// Before `nbf` (minus leeway).
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    WrongAudience,
    /// A required claim (`exp`, `iss`, `aud`, `sub`, `sid`...) is missing or mistyped.
    MissingClaim,
    /// An access token where a refresh token is expected, or the reverse.
    WrongTokenType,
    /// The session has ended (logout, forced logout, expiry) or the refresh token is spent.
    SessionRevoked,
    /// A spent refresh token was presented after the grace window: the session is revoked.
    ReuseDetected,
    /// The header has a `crit` parameter: it names extensions that must be
    /// understood, and none is (RFC 7515 §4.1.11).
    CriticalHeader,
    /// An access token whose `iat` lies in the future beyond the leeway.
    IssuedInFuture,
}

impl TokenRejection {
    /// One human sentence, safe to send to a client.
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "the token is malformed",
            Self::TooLong => "the token is too long",
            Self::BadSignature => "the token signature is invalid",
            Self::AlgorithmNotAllowed => "the token algorithm is not allowed",
            Self::UnknownKey => "the token was signed by an unknown key",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::WrongIssuer => "the token issuer is not accepted",
            Self::WrongAudience => "the token audience is not accepted",
            Self::MissingClaim => "the token lacks a required claim",
            Self::WrongTokenType => "the token is of the wrong type for this use",
            Self::SessionRevoked => "the session has ended",
            Self::ReuseDetected => {
                "the refresh token was already used; the session has been revoked"
            }
            Self::CriticalHeader => "the token header has a crit parameter, which is not supported",
            Self::IssuedInFuture => "the token was issued in the future",
        }
    }
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in reissue, named by what went wrong.
///
/// Each variant knows its HTTP meaning ([`Error::status`], [`Error::code`],
/// [`Error::description`]); both adapters render that one mapping, so they
/// cannot drift apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `Authorization` header, or a scheme other than Bearer.
    #[error("no bearer token was presented")]
    MissingToken,
    /// A `Bearer` header that is empty, has two tokens, non-ASCII bytes or is over 8 KiB.
    #[error("malformed Authorization header: {0}")]
    MalformedAuthorization(&'static str),
    /// A token failed verification.
    #[error("invalid token: {0}")]
    InvalidToken(TokenRejection),
    /// Authenticated, but a required role is missing.
    #[error("the `{0}` role is required")]
    InsufficientScope(String),
    /// Login with an unknown account or a wrong password (never says which).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The route needs a login within the last `max_age` seconds and the
    /// token's `auth_time` is older (or absent): 401
    /// `insufficient_user_authentication` (RFC 9470), whose challenge names
    /// `max_age` so the client knows to reauthenticate.
    #[error("a login within the last {max_age} s is required")]
    InsufficientUserAuthentication {
        /// The most seconds since the login the route accepts.
        max_age: u64,
    },
    /// A DPoP proof was needed and is missing or invalid (RFC 9449): 401
    /// `invalid_dpop_proof`, or 400 at login (a token request), with a
    /// `DPoP` challenge naming the accepted algorithms. Nothing was spent,
    /// rotated or revoked.
    #[error("invalid DPoP proof: {why}")]
    InvalidDpopProof {
        /// What was wrong.
        why: crate::ProofRejection,
        /// The algorithms the challenge names.
        algorithms: crate::DpopAlgorithms,
        /// At login (400) rather than on a bound session (401).
        login: bool,
    },
    /// Too many failed logins for this account.
    #[error("too many failed logins; retry after {retry_after} s")]
    TooManyAttempts {
        /// Seconds until the lockout ends.
        retry_after: u64,
    },
    /// The request body is unusable.
    #[error("invalid request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// The client address is refused by the address or country policy.
    #[error("access denied by policy")]
    AccessDenied,
    /// A request that would spend or set the refresh-token cookie is
    /// cross-site or lacks `X-Reissue-Transport: cookie` (403 `access_denied`).
    #[error("refresh-token cookie refused: {0}")]
    CookieRefused(&'static str),
    /// The named resource (a session) does not exist for this caller.
    #[error("not found")]
    NotFound,
    /// `/auth/jwks.json` when only HMAC keys are configured: there is no
    /// public key to publish (a shared secret never is).
    #[error("no public keys are configured")]
    NoPublicKeys,
    /// The token store (or the user database) is unreachable or timing out.
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    /// Too much work is already waiting, e.g. the password checks' bounded
    /// queue is full: 503 `temporarily_unavailable` with `Retry-After`,
    /// answered at once instead of after a wait without end.
    #[error("overloaded; retry after {retry_after} s")]
    Overloaded {
        /// Seconds after which a retry is likely to be admitted.
        retry_after: u64,
    },
    /// The application is wired wrong, e.g. an extractor used on a route the
    /// middleware does not cover. The message is for the developer and says
    /// what to add; it is shown as is (it never holds request data).
    #[error("misconfigured: {0}")]
    Misconfigured(Cow<'static, str>),
    /// Invalid configuration; raised at start-up, never per request.
    #[error("configuration error: {0}")]
    Config(String),
    /// A server-side failure that is not the client's doing (e.g. signing failed).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps a store or database failure as [`Error::Unavailable`].
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }

    /// The HTTP status code of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingToken
            | Self::InvalidToken(_)
            | Self::InvalidCredentials
            | Self::InsufficientUserAuthentication { .. } => 401,
            Self::InvalidDpopProof { login, .. } => {
                if *login {
                    400
                } else {
                    401
                }
            }
            Self::MalformedAuthorization(_) | Self::InvalidRequest(_) => 400,
            Self::InsufficientScope(_) | Self::AccessDenied | Self::CookieRefused(_) => 403,
            Self::NotFound | Self::NoPublicKeys => 404,
            Self::TooManyAttempts { .. } => 429,
            Self::Unavailable(_) | Self::Overloaded { .. } => 503,
            Self::Misconfigured(_) | Self::Config(_) | Self::Internal(_) => 500,
        }
    }

    /// The `error` code of the JSON body (RFC 6749 / 6750 vocabulary).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "unauthorized",
            Self::MalformedAuthorization(_) | Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidToken(_) => "invalid_token",
            Self::InvalidDpopProof { .. } => "invalid_dpop_proof",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InsufficientUserAuthentication { .. } => "insufficient_user_authentication",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::AccessDenied | Self::CookieRefused(_) => "access_denied",
            Self::NotFound | Self::NoPublicKeys => "not_found",
            Self::Unavailable(_) | Self::Overloaded { .. } => "temporarily_unavailable",
            Self::Misconfigured(_) | Self::Config(_) | Self::Internal(_) => "server_error",
        }
    }

    /// One human sentence for `error_description`. Never contains a token,
    /// a password or a dependency's error text.
    pub fn description(&self) -> Cow<'static, str> {
        match self {
            Self::MissingToken => "a bearer token is required".into(),
            Self::MalformedAuthorization(why) => Cow::Borrowed(why),
            Self::InvalidToken(why) => why.description().into(),
            Self::InvalidDpopProof { why, .. } => why.description().into(),
            Self::InsufficientScope(role) => format!("the `{role}` role is required").into(),
            Self::InvalidCredentials => "the email or password is incorrect".into(),
            Self::InsufficientUserAuthentication { max_age } => {
                format!("a login within the last {max_age} seconds is required; reauthenticate")
                    .into()
            }
            Self::TooManyAttempts { .. } => "too many failed logins; try again later".into(),
            Self::InvalidRequest(why) => why.clone(),
            Self::AccessDenied => "access from this address is not allowed".into(),
            Self::CookieRefused(why) => Cow::Borrowed(why),
            Self::NotFound => "no such session".into(),
            Self::NoPublicKeys => "no public keys are configured (HMAC keys only)".into(),
            Self::Unavailable(_) => "the service is temporarily unavailable; retry shortly".into(),
            Self::Overloaded { .. } => "the service is busy; retry shortly".into(),
            Self::Misconfigured(what) => what.clone(),
            Self::Config(_) | Self::Internal(_) => "internal server error".into(),
        }
    }

    /// Seconds for a `Retry-After` header, where one belongs.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyAttempts { retry_after } | Self::Overloaded { retry_after } => {
                Some((*retry_after).max(1))
            }
            Self::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), for the errors of the
    /// bearer scheme; `None` for the others.
    pub fn www_authenticate(&self, realm: &str) -> Option<String> {
        let realm = quoted(realm);
        match self {
            Self::MissingToken => Some(format!("Bearer realm=\"{realm}\"")),
            Self::MalformedAuthorization(_) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\""
            )),
            Self::InvalidToken(why) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                why.description()
            )),
            Self::InsufficientScope(_) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\""
            )),
            Self::InsufficientUserAuthentication { max_age } => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_user_authentication\", max_age={max_age}"
            )),
            Self::InvalidDpopProof { algorithms, .. } => Some(format!(
                "DPoP error=\"invalid_dpop_proof\", algs=\"{algorithms}\""
            )),
            _ => None,
        }
    }

    /// The JSON body: `{"error": ..., "error_description": ...}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.code(), "error_description": self.description() })
            .to_string()
    }

    /// The whole response as framework-neutral data.
    pub fn reply(&self, realm: &str) -> crate::Reply {
        let mut headers = Vec::with_capacity(3);
        headers.push((
            crate::http::reply::CONTENT_TYPE,
            crate::http::reply::JSON.to_owned(),
        ));
        if let Some(challenge) = self.www_authenticate(realm) {
            headers.push(("www-authenticate", challenge));
        }
        if let Some(secs) = self.retry_after() {
            headers.push(("retry-after", secs.to_string()));
        }
        // A full queue is load, not a fault: a flood would log one error per
        // request. The login metric counts it (outcome "overloaded").
        if self.status() >= 500 && !matches!(self, Self::Overloaded { .. }) {
            tracing::error!(error = %self, source = ?std::error::Error::source(self), "request failed");
        }
        crate::Reply {
            status: self.status(),
            headers,
            body: Some(self.body()),
        }
    }
}

/// `Retry-After` seconds for a store outage.
pub(crate) const UNAVAILABLE_RETRY_AFTER: u64 = 2;

/// Makes `s` safe inside a quoted-string of an HTTP header.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
        .collect()
}

/// `Result` with reissue's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
