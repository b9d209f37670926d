//! Where sessions live: the [`RefreshStore`] trait and its two implementations,
//! [`MemoryStore`] and (feature `redis`) [`RedisStore`].

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use crate::{Country, Result, SessionId};

mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};

/// A session to create at login.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewSession {
    /// The user.
    pub user_id: String,
    /// The new session's id.
    pub sid: SessionId,
    /// Now, in Unix milliseconds.
    pub now_ms: u64,
    /// When the session ends whatever happens, Unix milliseconds.
    pub absolute_expiry_ms: u64,
    /// The idle lifetime: the session ends this long after login or the last reissue.
    pub idle_ttl: Duration,
    /// At most this many sessions per user; the oldest are evicted.
    pub max_sessions: usize,
    /// The client.
    pub client: ClientMeta,
    /// The application's claims, serialized, carried into every access token.
    pub claims: String,
}

impl NewSession {
    /// A session of `user_id` created at `now_ms`, ending after `idle_ttl`
    /// unused and at `absolute_expiry_ms` at the latest. At most 32 sessions
    /// per user, no client and empty claims unless the fields are set.
    pub fn new(
        user_id: impl Into<String>,
        sid: SessionId,
        now_ms: u64,
        absolute_expiry_ms: u64,
        idle_ttl: Duration,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            sid,
            now_ms,
            absolute_expiry_ms,
            idle_ttl,
            max_sessions: 32,
            client: ClientMeta::default(),
            claims: String::new(),
        }
    }
}

/// What is recorded about the client of a login or reissue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientMeta {
    /// The client address.
    pub ip: Option<IpAddr>,
    /// Its country.
    pub country: Option<Country>,
    /// The `User-Agent`, truncated to 256 bytes.
    pub user_agent: Option<String>,
}

impl ClientMeta {
    /// Client metadata; the user agent is truncated to 256 bytes.
    pub fn new(ip: Option<IpAddr>, country: Option<Country>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut end = ua.len().min(256);
            while !ua.is_char_boundary(end) {
                end -= 1;
            }
            ua[..end].to_owned()
        });
        Self {
            ip,
            country,
            user_agent,
        }
    }
}

/// A refresh to check and rotate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RotateRequest<'a> {
    /// The user (from the verified refresh token).
    pub user_id: &'a str,
    /// The session (from the verified refresh token).
    pub sid: &'a SessionId,
    /// The generation the presented refresh token carries.
    pub generation: u64,
    /// Now, Unix milliseconds.
    pub now_ms: u64,
    /// How long a spent token still gets the same successor.
    pub grace: Duration,
    /// The idle lifetime to renew.
    pub idle_ttl: Duration,
    /// The client now.
    pub client: &'a ClientMeta,
}

impl<'a> RotateRequest<'a> {
    /// A rotation of `sid`'s refresh token of `generation`, at `now_ms`.
    pub fn new(
        user_id: &'a str,
        sid: &'a SessionId,
        generation: u64,
        now_ms: u64,
        grace: Duration,
        idle_ttl: Duration,
        client: &'a ClientMeta,
    ) -> Self {
        Self {
            user_id,
            sid,
            generation,
            now_ms,
            grace,
            idle_ttl,
            client,
        }
    }
}

/// The session state a rotation hands back, to mint the successor tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Successor {
    /// The generation of the successor refresh token.
    pub generation: u64,
    /// When that generation was minted, Unix milliseconds (its `iat`).
    pub rotated_at_ms: u64,
    /// The idle lifetime renewed at that time, in milliseconds.
    pub expires_at_ms: u64,
    /// The session's absolute end, Unix milliseconds.
    pub absolute_expiry_ms: u64,
    /// The application's claims, serialized.
    pub claims: String,
    /// The country recorded at login.
    pub login_country: Option<Country>,
}

/// The outcome of [`RefreshStore::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// The presented token was current: it is now spent, and this is its successor.
    Rotated(Successor),
    /// The presented token was spent within the grace window: the same successor
    /// as the first call, nothing changed.
    Replayed(Successor),
    /// A spent token after the grace window, or an older one: the session was revoked.
    Reused,
    /// No such session (logged out, revoked, expired).
    NotFound,
}

/// A session as listed to its user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session id.
    pub sid: SessionId,
    /// Login time, Unix seconds.
    pub created_at: u64,
    /// Last login or reissue, Unix seconds.
    pub last_used_at: u64,
    /// The client at the last login or reissue.
    pub client: ClientMeta,
}

/// Failed-login bookkeeping for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginFailures {
    /// Failures counted in the current window.
    pub count: u32,
    /// Seconds until the count resets.
    pub retry_after: u64,
}

/// Where sessions and failed-login counters live. Every operation is atomic
/// with respect to every other, across any number of application instances
/// sharing the store.
///
/// Implementations must never hold a refresh token: a session is checked by
/// its generation number (the token is a signed JWT carrying it).
#[async_trait]
pub trait RefreshStore: Send + Sync + fmt::Debug + 'static {
    /// Creates a session, then evicts the user's oldest sessions beyond
    /// `max_sessions`; returns the evicted ids.
    async fn create(&self, session: &NewSession) -> Result<Vec<SessionId>>;

    /// Checks the presented generation and rotates, in one atomic step.
    async fn rotate(&self, request: &RotateRequest<'_>) -> Result<Rotation>;

    /// Ends one session; `false` if it did not exist.
    async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool>;

    /// Ends every session of a user; returns how many there were.
    async fn revoke_all(&self, user_id: &str) -> Result<usize>;

    /// The user's live sessions, oldest first.
    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>>;

    /// Whether the session is live (strict revocation mode asks this per request).
    async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool>;

    /// The current failures of an account, if any are counted.
    async fn login_failures(&self, account: &str) -> Result<Option<LoginFailures>>;

    /// Counts one failure; the count resets `window` after the first one.
    async fn record_login_failure(&self, account: &str, window: Duration) -> Result<LoginFailures>;

    /// Forgets an account's failures (after a successful login).
    async fn clear_login_failures(&self, account: &str) -> Result<()>;
}

/// The idle expiry of a session touched at `now_ms`: the idle lifetime,
/// capped by the absolute one.
pub(crate) fn idle_expiry(now_ms: u64, idle_ttl: Duration, absolute_expiry_ms: u64) -> u64 {
    now_ms
        .saturating_add(idle_ttl.as_millis() as u64)
        .min(absolute_expiry_ms)
}
