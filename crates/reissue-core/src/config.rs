//! Lifetimes, limits and names: everything about sessions that is configured.

use std::time::Duration;

use crate::policy::TrustedProxies;
use crate::{CookieTransport, Error, Result};

/// Session and token settings. Defaults follow CONTRACT.md: access tokens live
/// 5 minutes, refresh tokens 14 days idle, sessions 30 days at most, a 10 s
/// grace window for spent refresh tokens.
#[derive(Debug, Clone)]
#[must_use]
pub struct Config {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) realm: String,
    pub(crate) access_ttl: Duration,
    pub(crate) refresh_ttl: Duration,
    pub(crate) session_max_age: Duration,
    pub(crate) reuse_grace: Duration,
    pub(crate) leeway: Duration,
    pub(crate) strict_revocation: bool,
    pub(crate) max_sessions_per_user: usize,
    pub(crate) login_max_failures: u32,
    pub(crate) login_lockout: Duration,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) verified_token_cache: usize,
    pub(crate) cookies: CookieTransport,
}

impl Config {
    /// Settings for tokens issued by `issuer` for `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            realm: crate::DEFAULT_REALM.to_owned(),
            access_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(14 * 24 * 3600),
            session_max_age: Duration::from_secs(30 * 24 * 3600),
            reuse_grace: Duration::from_secs(10),
            leeway: Duration::from_secs(5),
            strict_revocation: false,
            max_sessions_per_user: 32,
            login_max_failures: 5,
            login_lockout: Duration::from_secs(300),
            trusted_proxies: TrustedProxies::default(),
            verified_token_cache: crate::verifier::DEFAULT_CACHE_CAPACITY,
            cookies: CookieTransport::off(),
        }
    }

    /// The realm of `WWW-Authenticate` challenges (default `reissue`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Access token lifetime (default 300 s).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Refresh idle lifetime: a session unused this long ends; each reissue
    /// renews it (default 14 days).
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Absolute session lifetime, never extended by reissues (default 30 days).
    pub fn session_max_age(mut self, age: Duration) -> Self {
        self.session_max_age = age;
        self
    }

    /// How long a spent refresh token still receives the same successor
    /// (default 10 s; zero is strict: any second use is theft).
    pub fn reuse_grace(mut self, grace: Duration) -> Self {
        self.reuse_grace = grace;
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 5 s, at most 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Strict revocation: protected routes also check that the session is
    /// live in the store (one store round trip per request), and fail closed
    /// with 503 while it is unreachable (default off).
    pub fn strict_revocation(mut self, strict: bool) -> Self {
        self.strict_revocation = strict;
        self
    }

    /// At most this many sessions per user; a new login evicts the oldest (default 32).
    pub fn max_sessions_per_user(mut self, n: usize) -> Self {
        self.max_sessions_per_user = n;
        self
    }

    /// Failed logins per account before 429, and for how long (default 5, 300 s).
    pub fn login_lockout(mut self, max_failures: u32, lockout: Duration) -> Self {
        self.login_max_failures = max_failures;
        self.login_lockout = lockout;
        self
    }

    /// Proxies whose `X-Forwarded-For` is believed (default none).
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// How many verified access tokens to remember until they expire, so a
    /// token presented again skips signature verification (default 8192; 0
    /// turns the cache off). Only a byte-identical token can hit, and expiry is
    /// re-checked on every hit.
    pub fn verified_token_cache(mut self, capacity: usize) -> Self {
        self.verified_token_cache = capacity;
        self
    }

    /// The browser transport of the refresh token: an `HttpOnly` cookie for
    /// clients that ask for it (default off; see [`CookieTransport`]).
    pub fn cookie_transport(mut self, cookies: CookieTransport) -> Self {
        self.cookies = cookies;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_owned()));
        if self.issuer.is_empty() || self.audience.is_empty() {
            return bad("issuer and audience must not be empty");
        }
        if self.access_ttl.as_secs() == 0 || self.refresh_ttl.as_secs() == 0 {
            return bad("token lifetimes must be at least one second");
        }
        if self.session_max_age < self.refresh_ttl.min(self.session_max_age)
            || self.session_max_age.as_secs() == 0
        {
            return bad("the absolute session lifetime must be at least one second");
        }
        if self.leeway > Duration::from_secs(30) {
            return bad("the leeway must be at most 30 seconds");
        }
        if self.max_sessions_per_user == 0 {
            return bad("max_sessions_per_user must be at least 1");
        }
        self.cookies.validate()?;
        Ok(())
    }
}
