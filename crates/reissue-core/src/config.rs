//! Lifetimes, limits and names: everything about sessions that is configured.

use std::time::Duration;

use crate::RevocationMode;
use crate::dpop::{DpopAlgorithms, DpopMode, DpopSettings};
use crate::policy::TrustedProxies;
use crate::{CookieTransport, Error, Origin, Result};

/// The longest duration any setting takes: 100 years.
const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Session and token settings. Defaults follow CONTRACT.md: access tokens live
/// 5 minutes (±10 %), refresh tokens 14 days idle, sessions 30 days at most,
/// and a spent refresh token stays replayable until its successor is used.
#[derive(Debug, Clone)]
#[must_use]
pub struct Config {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) client_id: Option<String>,
    pub(crate) realm: String,
    pub(crate) access_ttl: Duration,
    pub(crate) access_ttl_jitter: f64,
    pub(crate) refresh_ttl: Duration,
    pub(crate) session_max_age: Duration,
    pub(crate) reuse_grace: Option<Duration>,
    pub(crate) leeway: Duration,
    pub(crate) revocation: RevocationMode,
    pub(crate) fail_closed_while_unsure: bool,
    pub(crate) strict_lease: Duration,
    pub(crate) max_sessions_per_user: usize,
    pub(crate) login_max_failures: u32,
    pub(crate) login_account_ceiling: Option<u32>,
    pub(crate) login_network_ceiling: Option<u32>,
    pub(crate) device_token_ttl: Duration,
    pub(crate) login_lockout: Duration,
    pub(crate) allow_unknown_client_address: bool,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) verified_token_cache: usize,
    pub(crate) lost_write_tolerance: u64,
    pub(crate) cookies: CookieTransport,
    pub(crate) dpop: DpopSettings,
}

impl Config {
    /// Settings for tokens issued by `issuer` for `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            client_id: None,
            realm: crate::DEFAULT_REALM.to_owned(),
            access_ttl: Duration::from_secs(300),
            access_ttl_jitter: 0.1,
            refresh_ttl: Duration::from_secs(14 * 24 * 3600),
            session_max_age: Duration::from_secs(30 * 24 * 3600),
            reuse_grace: None,
            leeway: Duration::from_secs(5),
            revocation: RevocationMode::default(),
            fail_closed_while_unsure: false,
            strict_lease: Duration::from_secs(2),
            max_sessions_per_user: 32,
            login_max_failures: 5,
            login_account_ceiling: None,
            login_network_ceiling: None,
            device_token_ttl: Duration::from_secs(180 * 24 * 3600),
            login_lockout: Duration::from_secs(300),
            allow_unknown_client_address: false,
            trusted_proxies: TrustedProxies::default(),
            verified_token_cache: crate::verification::verifier::DEFAULT_CACHE_CAPACITY,
            lost_write_tolerance: 8,
            cookies: CookieTransport::off(),
            dpop: DpopSettings::default(),
        }
    }

    /// The realm of `WWW-Authenticate` challenges (default `reissue`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The `client_id` of access tokens (RFC 9068 §2.2; default the audience).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub(crate) fn client_id_or_audience(&self) -> &str {
        self.client_id.as_deref().unwrap_or(&self.audience)
    }

    /// How much each access token's lifetime varies at random, as a fraction
    /// of [`Config::access_ttl`] either way (default 0.1: ±10 %; 0: none, at
    /// most 0.5), so that sessions started together (after a deploy) do not
    /// all refresh in the same second. `expires_in` tells each token's own.
    pub fn access_ttl_jitter(mut self, fraction: f64) -> Self {
        self.access_ttl_jitter = fraction;
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

    /// A cap on how long a spent refresh token still receives the same
    /// successor. By default (`None`) there is none: it does until its
    /// successor is used (presented to rotate or replay), however late,
    /// within the session's lifetimes; then presenting it is reuse and ends
    /// the session. A duration caps that; zero turns replays off (any second
    /// use is theft). At most the refresh idle lifetime.
    pub fn reuse_grace(mut self, cap: impl Into<Option<Duration>>) -> Self {
        self.reuse_grace = cap.into();
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 5 s, at most 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How protected routes learn that a session has ended (default
    /// [`RevocationMode::Instant`]; see CONTRACT.md, "Revocation of access tokens").
    pub fn revocation(mut self, mode: RevocationMode) -> Self {
        self.revocation = mode;
        self
    }

    /// Instant mode only: while an instance cannot be sure it has heard of
    /// every revocation (its feed was interrupted) *and* the store is
    /// unreachable, answer 503 rather than accepting the access tokens of
    /// sessions not known to have ended (default `false`: accept them).
    pub fn fail_closed_while_unsure(mut self, fail_closed: bool) -> Self {
        self.fail_closed_while_unsure = fail_closed;
        self
    }

    /// Strict mode only: how long an instance's lease on the revocation feed
    /// lasts (default 2 s, renewed every quarter of it). A logout waits at
    /// most this long for an instance that stopped answering; a shorter
    /// lease costs more renewals (DESIGN.md, "Strict revocation by leases").
    /// Between 400 ms and 4 s: an ending call gives up on a holder that
    /// renews without acknowledging after 10 s, which must stay beyond any
    /// holder's lease.
    pub fn strict_lease(mut self, lease: Duration) -> Self {
        self.strict_lease = lease;
        self
    }

    /// At most this many sessions per user; a new login evicts the oldest (default 32).
    pub fn max_sessions_per_user(mut self, n: usize) -> Self {
        self.max_sessions_per_user = n;
        self
    }

    /// Failed login attempts per account and client network (IPv4 /24,
    /// IPv6 /56) before 429, and the window they are counted in (default 5,
    /// 300 s). Attempts are counted before the password is checked.
    pub fn login_lockout(mut self, max_failures: u32, lockout: Duration) -> Self {
        self.login_max_failures = max_failures;
        self.login_lockout = lockout;
        self
    }

    /// Failed login attempts per account from all networks together before
    /// 429 (default 10 × the per-network limit): caps guessing spread over
    /// many networks. It cannot lock out a device that logged in to the
    /// account before (its device token, see [`Config::device_token_ttl`]):
    /// such a device is counted on its own, with the per-network limit.
    pub fn login_account_ceiling(mut self, max_failures: u32) -> Self {
        self.login_account_ceiling = Some(max_failures);
        self
    }

    /// Failed login attempts from one client network across all accounts
    /// before 429 (default 20 × the per-network limit): caps password
    /// spraying, and with it the counters one network can make the store
    /// keep. Known devices are not counted on it.
    pub fn login_network_ceiling(mut self, max_failures: u32) -> Self {
        self.login_network_ceiling = Some(max_failures);
        self
    }

    /// How long a device token stays valid (default 180 days; zero: none are
    /// issued). A successful login answers one (`device_token` in the token
    /// response); a later login that sends it back in the `Reissue-Device`
    /// header, for the same account, is counted per device instead of
    /// against the account and network ceilings, so that an attacker
    /// guessing from many networks cannot keep that device out.
    pub fn device_token_ttl(mut self, ttl: Duration) -> Self {
        self.device_token_ttl = ttl;
        self
    }

    /// With an address or country policy, a login or reissue whose client
    /// address cannot be known (no socket peer, e.g. a Unix socket without a
    /// trusted proxy) is refused with 403; `true` lets it through unchecked
    /// (default `false`).
    pub fn allow_unknown_client_address(mut self, allow: bool) -> Self {
        self.allow_unknown_client_address = allow;
        self
    }

    pub(crate) fn account_ceiling(&self) -> u32 {
        self.login_account_ceiling
            .unwrap_or_else(|| self.login_max_failures.saturating_mul(10))
    }

    pub(crate) fn network_ceiling(&self) -> u32 {
        self.login_network_ceiling
            .unwrap_or_else(|| self.login_max_failures.saturating_mul(20))
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

    /// How many rotations a store may have lost (asynchronous replication
    /// across a failover) before a refresh token ahead of it counts as theft
    /// (default 8; 0: any token ahead of the store is theft). Only a token
    /// signed here, at most this many generations ahead of the store, and
    /// minted no earlier than the store's newest state is taken for a lost
    /// write; the session then goes on from the client's generation
    /// (DESIGN.md, "Failover").
    pub fn lost_write_tolerance(mut self, generations: u64) -> Self {
        self.lost_write_tolerance = generations;
        self
    }

    /// The browser transport of the refresh token: an `HttpOnly` cookie for
    /// clients that ask for it (default off; see [`CookieTransport`]).
    pub fn cookie_transport(mut self, cookies: CookieTransport) -> Self {
        self.cookies = cookies;
        self
    }

    /// Whether logins bind sessions to the key of their `DPoP` proof
    /// (RFC 9449; default [`DpopMode::Optional`]: those that carry one). A
    /// bound session stays bound whatever the mode: each of its reissues,
    /// logouts and reauthentications needs a proof by its key.
    pub fn dpop(mut self, mode: DpopMode) -> Self {
        self.dpop.mode = mode;
        self
    }

    /// The algorithms DPoP proofs may be signed with (default ES256 and EdDSA).
    pub fn dpop_algorithms(mut self, algorithms: DpopAlgorithms) -> Self {
        self.dpop.algorithms = algorithms;
        self
    }

    /// How far a DPoP proof's `iat` may lie from now, either way (default
    /// 60 s, at most 300 s). Its `jti` is remembered twice as long.
    pub fn dpop_window(mut self, window: Duration) -> Self {
        self.dpop.window = window;
        self
    }

    /// The origin clients address, e.g. `https://app.example.com`: a DPoP
    /// proof's `htu` must name it. Without one, the `htu` must name the
    /// request's `Host` (any scheme), which a proxy may rewrite and a client
    /// chooses: set it in production, and always behind a proxy.
    pub fn public_origin(mut self, origin: Origin) -> Self {
        self.dpop.public_origin = Some(origin);
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
        if self.session_max_age.as_secs() == 0 {
            return bad("the absolute session lifetime must be at least one second");
        }
        if !(Duration::from_millis(400)..=Duration::from_secs(4)).contains(&self.strict_lease) {
            return bad("strict_lease must be between 400 ms and 4 s");
        }
        // Far beyond any real lifetime, and far inside what the arithmetic can
        // take: milliseconds plus now stay well below i64::MAX and below 2^53,
        // where Lua numbers in the Redis scripts stop being exact integers.
        for (name, d) in [
            ("access_ttl", self.access_ttl),
            ("refresh_ttl", self.refresh_ttl),
            ("session_max_age", self.session_max_age),
            ("reuse_grace", self.reuse_grace.unwrap_or_default()),
            ("login_lockout", self.login_lockout),
        ] {
            if d > MAX_LIFETIME {
                return Err(Error::Config(format!(
                    "{name} must be at most {} years",
                    MAX_LIFETIME.as_secs() / (365 * 24 * 3600)
                )));
            }
        }
        if let Some(grace) = self.reuse_grace.filter(|g| *g > self.refresh_ttl) {
            return Err(Error::Config(format!(
                "the reuse grace window ({} s) must not exceed the refresh idle lifetime ({} s)",
                grace.as_secs_f64(),
                self.refresh_ttl.as_secs_f64()
            )));
        }
        if !(0.0..=0.5).contains(&self.access_ttl_jitter) {
            return bad("access_ttl_jitter must be between 0 and 0.5");
        }
        if self.client_id.as_deref() == Some("") {
            return bad("client_id must not be empty");
        }
        if self.leeway > Duration::from_secs(30) {
            return bad("the leeway must be at most 30 seconds");
        }
        if self.max_sessions_per_user == 0 {
            return bad("max_sessions_per_user must be at least 1");
        }
        if self.lost_write_tolerance > 1_000_000 {
            return bad("lost_write_tolerance must be at most 1000000 generations");
        }
        if self.dpop.window.is_zero() || self.dpop.window > Duration::from_secs(300) {
            return bad("the DPoP window must be between 1 and 300 seconds");
        }
        self.cookies.validate()?;
        Ok(())
    }
}
