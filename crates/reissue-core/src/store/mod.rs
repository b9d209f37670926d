//! Where sessions live. A store has four capabilities, one trait each:
//! [`SessionStore`] (the sessions themselves), [`LoginThrottle`] (counting
//! login attempts), [`RevocationFeed`] (telling every instance which
//! sessions ended) and [`ProofReplay`] (the DPoP proofs already accepted).
//! [`RefreshStore`] is all four, and what
//! [`Reissue::builder`](crate::Reissue::builder) takes; a wrapper that only
//! changes one capability implements that trait and is installed with
//! [`ReissueBuilder::sessions`](crate::ReissueBuilder::sessions).
//!
//! Two stores implement all four: [`MemoryStore`] (one process) and, with
//! feature `redis`, [`RedisStore`].
#![cfg_attr(
    not(feature = "redis"),
    doc = "",
    doc = "[`RedisStore`]: https://docs.rs/reissue-core/0.1.0/reissue_core/store/struct.RedisStore.html"
)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use crate::client::ClientMeta;
use crate::verification::revocation::Revocations;
use crate::{Country, Result, SessionId};

mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "fuzzing")]
pub(crate) use redis::{decode_client, encode_client, expiries, successor};

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{Deployment, Eviction, RedisStore, RedisStoreBuilder, Replication, dangerous};

/// A session to create at login. Its times come from the store's clock.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewSession {
    /// The user.
    pub user_id: String,
    /// The new session's id.
    pub sid: SessionId,
    /// The absolute lifetime: the session ends this long after login whatever happens.
    pub max_age: Duration,
    /// The idle lifetime: the session ends this long after login or the last reissue.
    pub idle_ttl: Duration,
    /// At most this many sessions per user; the oldest others are evicted
    /// (never the new one).
    pub max_sessions: usize,
    /// The client.
    pub client: ClientMeta,
}

impl NewSession {
    /// A session of `user_id` ending after `idle_ttl` unused and `max_age`
    /// after login at the latest. At most 32 sessions per user and no client
    /// unless the fields are set.
    pub fn new(
        user_id: impl Into<String>,
        sid: SessionId,
        max_age: Duration,
        idle_ttl: Duration,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            sid,
            max_age,
            idle_ttl,
            max_sessions: 32,
            client: ClientMeta::default(),
        }
    }
}

/// What [`SessionStore::create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Created {
    /// The session's first state (generation 1), in the store's time.
    pub first: Successor,
    /// Sessions of the user evicted to respect `max_sessions`.
    pub evicted: Vec<SessionId>,
}

/// A refresh to check and rotate. The store judges time by its own clock.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RotateRequest<'a> {
    /// The user (from the verified refresh token).
    pub user_id: &'a str,
    /// The session (from the verified refresh token).
    pub sid: &'a SessionId,
    /// The generation the presented refresh token carries.
    pub generation: u64,
    /// A cap on how long the predecessor of the current token (spent, its
    /// successor never presented) still gets that successor: `None`, until
    /// the successor is used, within the session's lifetimes; zero, never.
    pub grace: Option<Duration>,
    /// The idle lifetime to renew.
    pub idle_ttl: Duration,
    /// The client now.
    pub client: &'a ClientMeta,
    /// When the presented token's generation was minted (its `iat`), Unix
    /// milliseconds: the store's clock at that rotation, to the second.
    pub issued_at_ms: u64,
    /// How many generations ahead of the store a presented token may be and
    /// still count as a write the store lost (0: never; see
    /// [`Config::lost_write_tolerance`](crate::Config::lost_write_tolerance)).
    pub max_ahead: u64,
}

impl<'a> RotateRequest<'a> {
    /// A rotation of `sid`'s refresh token of `generation`.
    pub fn new(
        user_id: &'a str,
        sid: &'a SessionId,
        generation: u64,
        grace: impl Into<Option<Duration>>,
        idle_ttl: Duration,
        client: &'a ClientMeta,
    ) -> Self {
        Self {
            user_id,
            sid,
            generation,
            grace: grace.into(),
            idle_ttl,
            client,
            issued_at_ms: 0,
            max_ahead: 0,
        }
    }
}

/// A session to rotate without a presented refresh token
/// ([`SessionStore::renew`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenewRequest<'a> {
    /// The user (from the verified access token).
    pub user_id: &'a str,
    /// The session (from the verified access token).
    pub sid: &'a SessionId,
    /// The idle lifetime to renew.
    pub idle_ttl: Duration,
    /// The client now.
    pub client: &'a ClientMeta,
}

impl<'a> RenewRequest<'a> {
    /// A renewal of `sid`.
    pub fn new(
        user_id: &'a str,
        sid: &'a SessionId,
        idle_ttl: Duration,
        client: &'a ClientMeta,
    ) -> Self {
        Self {
            user_id,
            sid,
            idle_ttl,
            client,
        }
    }
}

/// Whether a presented generation ahead of the store's is a write the store
/// lost rather than a forgery or a copy: at most `max_ahead` generations
/// ahead, and minted (to the second, as `iat` says) no earlier than the
/// store's newest rotation, so that no rotation the store has seen since can
/// have made it stale.
pub(crate) fn lost_write(r: &RotateRequest<'_>, generation: u64, rotated_at_ms: u64) -> bool {
    r.generation > generation
        && r.generation - generation <= r.max_ahead
        && r.issued_at_ms.saturating_add(999) >= rotated_at_ms
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
    /// The country recorded at login.
    pub login_country: Option<Country>,
}

/// The outcome of [`SessionStore::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// The presented token was current: it is now spent, and this is its successor.
    Rotated(Successor),
    /// The presented token was spent and its successor never presented
    /// (within the cap, if one is configured): the same successor as the
    /// first call, nothing changed.
    Replayed(Successor),
    /// A spent token whose successor was presented (or past the cap), or an
    /// older one: the session was revoked.
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
    /// The client at the last login or reissue; its user agent is the
    /// stored summary ("Firefox 128 / Windows 10", or an unknown client's
    /// header cut to 48 bytes).
    pub client: ClientMeta,
}

/// One login attempt to count before the password is checked (CONTRACT.md,
/// "Login throttling"). The keys are digests, never the text a user typed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct LoginAttempt<'a> {
    /// A digest of the account the credentials name.
    pub account: &'a str,
    /// The client network (IPv4 /24, IPv6 /56), as text.
    pub network: &'a str,
    /// The device, when the attempt carries a valid device token for this
    /// account (a device that logged in to it before): it is then counted
    /// per device only, so that no amount of attempts from elsewhere keeps
    /// it out.
    pub device: Option<&'a str>,
    /// At most this many failed attempts per account and network (or per
    /// device) in the window.
    pub max_per_network: u32,
    /// At most this many per account, from all networks together.
    pub max_per_account: u32,
    /// At most this many from one network, across all accounts (password
    /// spraying); it also bounds the counters one network can create.
    pub max_per_client_network: u32,
    /// The window: a counter resets this long after its first attempt.
    pub window: Duration,
}

impl<'a> LoginAttempt<'a> {
    /// An attempt on `account` from `network`, counted in `window`, with the
    /// default limits (5 per network, 50 per account, 100 per network
    /// across accounts) and no device.
    pub fn new(account: &'a str, network: &'a str, window: Duration) -> Self {
        Self {
            account,
            network,
            device: None,
            max_per_network: 5,
            max_per_account: 50,
            max_per_client_network: 100,
            window,
        }
    }

    /// The counters this attempt is counted on, each with its limit: from a
    /// known device, that device's; else the account and network pair, the
    /// account, and the network across accounts. The first is cleared by a
    /// success; the others take the attempt back. Every store counts so.
    pub fn counters(&self) -> Vec<(Counter<'a>, u32)> {
        match self.device {
            Some(device) => vec![(
                Counter::Device {
                    account: self.account,
                    device,
                },
                self.max_per_network,
            )],
            None => vec![
                (
                    Counter::AccountNetwork {
                        account: self.account,
                        network: self.network,
                    },
                    self.max_per_network,
                ),
                (Counter::Account(self.account), self.max_per_account),
                (Counter::Network(self.network), self.max_per_client_network),
            ],
        }
    }
}

/// A login-attempt counter ([`LoginAttempt::counters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Counter<'a> {
    /// One account from one network.
    AccountNetwork {
        /// The account digest.
        account: &'a str,
        /// The network.
        network: &'a str,
    },
    /// One account from all networks.
    Account(&'a str),
    /// One network, all accounts.
    Network(&'a str),
    /// One account from one known device.
    Device {
        /// The account digest.
        account: &'a str,
        /// The device id its device token names.
        device: &'a str,
    },
}

/// Whether a login attempt may go on to the password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Counted; check the password.
    Allowed,
    /// Over a limit: answer 429, counting nothing more.
    Throttled {
        /// Seconds until the counter that refused resets.
        retry_after: u64,
    },
}

/// How an admitted login attempt ended, when it was not a wrong password
/// (which stays counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptEnd {
    /// The right password: the first counter (the pair's, or the device's)
    /// is cleared and the attempt leaves the others.
    Succeeded,
    /// Neither right nor wrong (the user database failed): the attempt is
    /// taken back from every counter.
    Undecided,
}

/// How long a store keeps what instant revocation needs.
/// [`Reissue`](crate::Reissue) tells its store at build time
/// ([`RevocationFeed::retain`]); a store shared by several instances keeps
/// the longest it was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// How long an ended session is remembered in the revocation log: the
    /// access-token lifetime plus the leeway (its access tokens are dead by then).
    pub revoked: Duration,
}

impl Retention {
    /// Ended sessions remembered for `revoked`.
    pub fn new(revoked: Duration) -> Self {
        Self { revoked }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self::new(Duration::from_secs(600))
    }
}

/// Where sessions live. Every operation is atomic with respect to every
/// other, across any number of application instances sharing the store, and
/// judges time by the store's own clock (never the calling instance's), so
/// instances whose clocks differ apply the same rules.
///
/// Implementations must never hold a refresh token: a session is checked by
/// its generation number (the token is a signed JWT carrying it).
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// Creates a session, then evicts the user's oldest other sessions beyond
    /// `max_sessions` (never the new one).
    async fn create(&self, session: &NewSession) -> Result<Created>;

    /// Checks the presented generation and rotates, in one atomic step.
    /// A retry of the same call by the store client is recognised and answered
    /// as the first, never as reuse. A generation ahead of the store's within
    /// the request's `max_ahead`, from a token minted no earlier than the
    /// store's newest state, is a write the store lost (see
    /// [`Config::lost_write_tolerance`](crate::Config::lost_write_tolerance)):
    /// the session goes on from it.
    async fn rotate(&self, request: &RotateRequest<'_>) -> Result<Rotation>;

    /// Rotates the session to a new generation without a refresh token
    /// being presented, as a rotation of its current one would: a
    /// reauthentication, proven by the password instead. Renews the idle
    /// lifetime and the client like a rotation; the refresh token it
    /// replaces is then spent as though it had been rotated. `None` when the
    /// session is not live (ended, expired): it is never recreated.
    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Option<Successor>>;

    /// Ends one session; `false` if it did not exist.
    async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool>;

    /// Ends every session of a user; returns those it ended.
    async fn revoke_all(&self, user_id: &str) -> Result<Vec<SessionId>>;

    /// The user's live sessions, oldest first.
    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>>;

    /// Whether the session is live (strict revocation asks this per request).
    async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool>;

    /// [`is_live`](Self::is_live) for several sessions, answers in order:
    /// strict revocation sends the checks of concurrent requests together.
    /// The default asks one at a time; a store with round trips to save
    /// answers them in as few as it can.
    async fn are_live(&self, sessions: &[(&str, &SessionId)]) -> Result<Vec<bool>> {
        let mut live = Vec::with_capacity(sessions.len());
        for (user_id, sid) in sessions {
            live.push(self.is_live(user_id, sid).await?);
        }
        Ok(live)
    }
}

/// Where login attempts are counted, shared by every instance so that the
/// limits hold across them.
#[async_trait]
pub trait LoginThrottle: Send + Sync + fmt::Debug + 'static {
    /// Counts a login attempt before the password is checked, or refuses it
    /// when a limit is reached; one atomic step, so parallel attempts cannot
    /// get past the limit.
    async fn begin_login(&self, attempt: &LoginAttempt<'_>) -> Result<Admission>;

    /// Settles an admitted attempt that did not fail on a wrong password.
    async fn end_login(&self, attempt: &LoginAttempt<'_>, end: AttemptEnd) -> Result<()>;
}

/// How every instance learns which sessions ended (instant revocation).
pub trait RevocationFeed: Send + Sync + fmt::Debug + 'static {
    /// Sets how long revocations are kept (the longest asked for wins).
    fn retain(&self, retention: Retention);

    /// Delivers every session this store ends, by any instance, into
    /// `revocations` from now on (instant revocation), and marks it in sync
    /// only while the delivery is known to be complete.
    fn follow_revocations(&self, revocations: Arc<Revocations>) -> Result<()>;
}

/// Where the DPoP proofs accepted lately are remembered (RFC 9449 §11.1),
/// shared by every instance, so that a proof is accepted once.
#[async_trait]
pub trait ProofReplay: Send + Sync + fmt::Debug + 'static {
    /// Remembers `proof` (a digest of a proof key and a proof's `jti`) of
    /// `user_id` for `ttl`, and answers whether it was new: `false` when the
    /// same was remembered within its `ttl`. One atomic step: of any number
    /// of concurrent calls with one `proof`, on any instances, exactly one
    /// answers `true`. `user_id` says where to keep it (the user's hash slot
    /// on a Redis Cluster).
    async fn first_use(&self, user_id: &str, proof: &str, ttl: Duration) -> Result<bool>;
}

/// A whole store: sessions, login throttling, the revocation feed and the
/// DPoP proofs seen. Every type that implements the four is one.
pub trait RefreshStore: SessionStore + LoginThrottle + RevocationFeed + ProofReplay {}

impl<T: SessionStore + LoginThrottle + RevocationFeed + ProofReplay> RefreshStore for T {}

/// The idle expiry of a session touched at `now_ms`: the idle lifetime,
/// capped by the absolute one.
pub(crate) fn idle_expiry(now_ms: u64, idle_ttl: Duration, absolute_expiry_ms: u64) -> u64 {
    now_ms
        .saturating_add(idle_ttl.as_millis() as u64)
        .min(absolute_expiry_ms)
}
