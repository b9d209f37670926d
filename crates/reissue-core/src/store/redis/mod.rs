//! The Redis store, on fred. Every operation that touches more than one key,
//! or reads then writes, is one Lua script (EVALSHA): atomic under any
//! concurrency and across any number of application instances, and one round
//! trip per operation.
//!
//! One layout on every deployment (one server, Sentinel, Cluster). A user's
//! keys and the revocation log they write to share one hash slot: the user's
//! *bucket*, `{b<n>}`, n a hash of the user id modulo the bucket count (256
//! by default), so that every script touches one slot and runs on a cluster
//! as on one server:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `reissue:{b<n>}u:<user>` | string | all of the user's sessions, packed (scripts.rs has the format): generation, times, request id, login country, client |
//! | `reissue:{b<n>}:rv` | sorted set | the bucket's revocation log: ended sessions by the time they ended; also its sharded pub/sub channel |
//! | `reissue:f:{<account digest>}` | string | login attempts on an account, from all networks |
//! | `reissue:f:{<account digest>}:<network>` | string | login attempts on an account from one network |
//!
//! Sessions of the first layout (`reissue:{b<n>}:<user>:s:<sid>` hashes, the
//! `:i` index, the `:rb` mark, which logout-all still sets) are read and
//! rotated where they are until they expire (DESIGN.md, "What Redis holds").
//!
//! Every key has a TTL: a user's key lives until the latest idle expiry of
//! its sessions (rounded up to a step), renewed by reissues; a log keeps an
//! entry for the access-token lifetime.
//!
//! Time is Redis's own (`TIME` inside each script), so instances whose clocks
//! differ apply the same rotation rules. Revocations (logout, logout-all,
//! forced logout, reuse detection) are acknowledged only once a replica has
//! them (`WAIT`), where the deployment has replicas: a failover then cannot
//! undo them (DESIGN.md, "Failover").

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use fred::prelude::{ClientLike, Config, Pool};
use fred::types::Value;
use fred::types::config::ServerConfig;
use fred::types::scripts::Script;

use super::{
    Admission, AttemptEnd, ClientMeta, Created, LoginAttempt, NewSession, RefreshStore, Retention,
    RotateRequest, Rotation, SessionInfo, Successor,
};
use crate::verification::revocation::Revocations;
use crate::{Country, Error, Result, SessionId};

mod feed;
mod health;
mod nodes;
mod scripts;

use nodes::{Cluster, Nodes, Settings};
use scripts::Scripts;

/// A [`RefreshStore`] on Redis: one server, a Sentinel-managed primary or a
/// Redis Cluster, through fred connection pools. Reconnects by itself; while
/// Redis (or, on a cluster, the primary a request needs) is unreachable or
/// hung, each operation fails with [`Error::Unavailable`] within the command
/// timeout instead of hanging, and a rotation or login that reaches Redis
/// after its caller gave up is refused by the script rather than executed late.
///
/// Redis must not evict keys (`maxmemory-policy noeviction`): an evicted
/// session index would hide sessions from "log out everywhere". The store
/// checks the policy when it connects (see
/// [`RedisStoreBuilder::require_noeviction`]).
pub struct RedisStore {
    nodes: Arc<Nodes>,
    /// One server's pool, or on a cluster a pool to the first primary found.
    first_pool: Pool,
    prefix: String,
    buckets: u16,
    scripts: Arc<Scripts>,
    command_timeout: Duration,
    /// The store's clock minus ours, in ms, from the last reply that told it:
    /// turns "give up after the command timeout" into a deadline in the
    /// store's time.
    clock_offset_ms: Arc<AtomicI64>,
    revoked_keep_ms: AtomicU64,
    sessions_keep_ms: AtomicU64,
    eviction: Eviction,
    replica_acks: u32,
    replica_wait: Duration,
    acknowledged_rotations: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("deployment", &self.deployment())
            .field("eviction", &self.eviction)
            .field("replica_acks", &self.replica_acks)
            .finish_non_exhaustive()
    }
}

/// What the store found out about Redis's eviction policy when it connected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eviction {
    /// `maxmemory-policy noeviction`: keys are never evicted.
    Never,
    /// A policy that may evict keys (every key of the store has a TTL, so
    /// `volatile-*` policies evict them too).
    May {
        /// The policy, e.g. `allkeys-lru`.
        policy: String,
    },
    /// `CONFIG GET` was refused (managed Redis often disables it).
    Unknown,
}

/// Which kind of Redis deployment a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deployment {
    /// One server (`redis://`, `rediss://`).
    Single,
    /// A primary managed by Sentinel (`redis-sentinel://`).
    Sentinel,
    /// A Redis Cluster (`redis-cluster://`).
    Cluster,
}

/// Configures a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    pool_size: usize,
    command_timeout: Duration,
    prefix: String,
    require_noeviction: bool,
    buckets: u16,
    replica_acks: Option<u32>,
    replica_wait: Duration,
    acknowledged_rotations: bool,
}

impl RedisStoreBuilder {
    /// Connections in the pool (default 4; on a cluster, per primary).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// How long one operation may wait, connecting included, before it fails
    /// as [`Error::Unavailable`] (default 1.5 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The key prefix (default `reissue:`). It must not contain `{` or `}`:
    /// the keys' hash tags follow it.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Refuse to connect to a Redis whose `maxmemory-policy` may evict keys
    /// (default: connect, with a warning in the log). A Redis that does not
    /// allow `CONFIG GET` is warned about either way: it cannot be checked.
    pub fn require_noeviction(mut self, required: bool) -> Self {
        self.require_noeviction = required;
        self
    }

    /// How many buckets users are spread over (default 256, at most 16384):
    /// a user's keys and the revocation log they write to share their
    /// bucket's hash slot, and every instance follows every bucket. More
    /// buckets spread a cluster's load more evenly; each costs the feed one
    /// subscription. Every instance must use the same number, and changing
    /// it loses every session (they are looked up in other buckets).
    pub fn buckets(mut self, n: u16) -> Self {
        self.buckets = n.clamp(1, 16384);
        self
    }

    /// How many replicas must confirm a revocation before it is acknowledged
    /// (`WAIT`); when fewer do within [`replica_wait`](Self::replica_wait),
    /// the revocation answers 503 (it took effect on the primary, but a
    /// failover could undo it). Default: 1 if the deployment has replicas
    /// when the store connects, else 0 (nothing to wait for).
    pub fn replica_acks(mut self, n: u32) -> Self {
        self.replica_acks = Some(n);
        self
    }

    /// How long a revocation waits for its replicas (default 250 ms; less
    /// than the command timeout).
    pub fn replica_wait(mut self, wait: Duration) -> Self {
        self.replica_wait = wait;
        self
    }

    /// Rotations wait for the replicas too (default `false`): a rotation then
    /// answers 503 when no replica confirms it, and a failover never loses
    /// one. The default instead takes a refresh token ahead of the store for
    /// a lost write ([`Config::lost_write_tolerance`](crate::Config::lost_write_tolerance)),
    /// which costs nothing per rotation. See DESIGN.md, "Failover".
    pub fn acknowledged_rotations(mut self, wait: bool) -> Self {
        self.acknowledged_rotations = wait;
        self
    }

    /// Connects. Fails if Redis cannot be reached now; later outages are
    /// ridden out by reconnecting.
    pub async fn connect(self) -> Result<RedisStore> {
        if self.prefix.contains(['{', '}']) {
            return Err(Error::Config(
                "the Redis key prefix must not contain `{` or `}`".into(),
            ));
        }
        if self.replica_wait >= self.command_timeout {
            return Err(Error::Config(format!(
                "the replica wait ({} ms) must be shorter than the command timeout ({} ms)",
                self.replica_wait.as_millis(),
                self.command_timeout.as_millis()
            )));
        }
        let config = Config::from_url(&self.url)
            .map_err(|e| Error::Config(format!("REDIS_URL: {}", e.details())))?;
        let timeout = self.command_timeout;
        let settings = Settings {
            config,
            pool_size: self.pool_size,
            timeout,
        };
        let nodes = match settings.config.server.clone() {
            ServerConfig::Clustered { hosts, .. } => {
                Nodes::Cluster(Cluster::connect(settings, hosts).await?)
            }
            server => {
                let pool = settings.pool(server.clone(), self.pool_size, 2)?;
                let durable = settings.pool(server, self.pool_size.min(2), 1)?;
                for p in [&pool, &durable] {
                    tokio::time::timeout(timeout * 2, p.init())
                        .await
                        .map_err(|_| Error::unavailable("timed out connecting to Redis"))?
                        .map_err(Error::unavailable)?;
                }
                Nodes::Single {
                    pool,
                    durable: Some(durable),
                    settings: Box::new(settings),
                    answered: AtomicBool::new(false),
                }
            }
        };
        let mut store = RedisStore::on(nodes, self.prefix);
        store.command_timeout = timeout;
        store.buckets = self.buckets;
        store.replica_wait = self.replica_wait;
        store.acknowledged_rotations = self.acknowledged_rotations;
        store.sync_clock().await?;
        store.replica_acks = match self.replica_acks {
            Some(n) => n,
            None => u32::from(store.has_replicas().await),
        };
        if store.replica_acks == 0 {
            tracing::info!(
                "Redis has no replicas: revocations are acknowledged once the primary has them"
            );
        }
        store.eviction = store.check_eviction().await;
        match &store.eviction {
            Eviction::Never => {}
            Eviction::May { policy } if self.require_noeviction => {
                return Err(Error::Config(format!(
                    "REDIS_URL: Redis's maxmemory-policy is {policy}, which may evict sessions; \
                     set it to noeviction"
                )));
            }
            Eviction::May { policy } => tracing::warn!(
                policy = %policy,
                "Redis's maxmemory-policy may evict keys: an evicted session index hides sessions \
                 from logout-all until their next reissue; set maxmemory-policy noeviction"
            ),
            Eviction::Unknown => tracing::warn!(
                "could not check Redis's maxmemory-policy (CONFIG GET was refused); \
                 make sure it is noeviction"
            ),
        }
        Ok(store)
    }
}

impl RedisStore {
    /// A builder for a store at `url`: `redis://host:port/db`, `rediss://`
    /// (TLS, feature `redis-tls`), `redis-cluster://host:port?node=host:port`,
    /// `redis-sentinel://host:port?node=host:port&sentinelServiceName=name`
    /// (fred's URL formats).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            pool_size: 4,
            command_timeout: Duration::from_millis(1500),
            prefix: "reissue:".to_owned(),
            require_noeviction: false,
            buckets: 256,
            replica_acks: None,
            replica_wait: Duration::from_millis(250),
            acknowledged_rotations: false,
        }
    }

    /// Connects with the defaults.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// A store on a pool the application built and connected itself (one
    /// server or Sentinel; a cluster needs [`builder`](Self::builder)). Its
    /// commands should time out (fred's `default_command_timeout`); the
    /// store assumes 1.5 s, 256 buckets and no replicas to wait for.
    pub fn from_pool(pool: Pool, prefix: impl Into<String>) -> Self {
        let settings = Settings {
            config: pool.next().client_config(),
            pool_size: pool.size(),
            timeout: Duration::from_millis(1500),
        };
        Self::on(
            Nodes::Single {
                pool,
                durable: None,
                settings: Box::new(settings),
                answered: AtomicBool::new(false),
            },
            prefix,
        )
    }

    fn on(nodes: Nodes, prefix: impl Into<String>) -> Self {
        let first_pool = match &nodes {
            Nodes::Single { pool, .. } => pool.clone(),
            Nodes::Cluster(c) => c
                .topology()
                .primaries
                .first()
                .map(|n| n.pool.clone())
                .expect("a cluster has a primary"),
        };
        Self {
            nodes: Arc::new(nodes),
            first_pool,
            prefix: prefix.into(),
            buckets: 256,
            scripts: Arc::new(Scripts::new()),
            command_timeout: Duration::from_millis(1500),
            clock_offset_ms: Arc::new(AtomicI64::new(0)),
            revoked_keep_ms: AtomicU64::new(0),
            sessions_keep_ms: AtomicU64::new(0),
            eviction: Eviction::Unknown,
            replica_acks: 0,
            replica_wait: Duration::from_millis(250),
            acknowledged_rotations: false,
        }
    }

    /// The fred pool of one server or Sentinel deployment, e.g. to measure
    /// memory; on a cluster, the pool of the primary serving `key`'s slot.
    pub fn pool_for(&self, key: &str) -> Option<Pool> {
        match &*self.nodes {
            Nodes::Single { pool, .. } => Some(pool.clone()),
            Nodes::Cluster(c) => c.node_for(key).ok().map(|n| n.pool.clone()),
        }
    }

    /// The fred pool of one server or Sentinel deployment, e.g. to measure
    /// memory. On a cluster, a pool to the first primary found at connect:
    /// use [`pool_for`](Self::pool_for) for a key.
    pub fn pool(&self) -> &Pool {
        &self.first_pool
    }

    /// Redis's eviction policy as found at connect.
    pub fn eviction(&self) -> &Eviction {
        &self.eviction
    }

    /// The kind of deployment.
    pub fn deployment(&self) -> Deployment {
        match &*self.nodes {
            Nodes::Cluster(_) => Deployment::Cluster,
            Nodes::Single { settings, .. } => match settings.config.server {
                ServerConfig::Sentinel { .. } => Deployment::Sentinel,
                _ => Deployment::Single,
            },
        }
    }

    /// How many replicas confirm each revocation before it is acknowledged.
    pub fn replica_acks(&self) -> u32 {
        self.replica_acks
    }

    /// The bucket of a user: `{b<n>}`, the hash tag all of its keys share.
    fn bucket(&self, user_id: &str) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(user_id.as_bytes());
        let n = u16::from_be_bytes([digest[0], digest[1]]) % self.buckets.max(1);
        format!("{{b{n}}}")
    }

    /// A user's keys, with the bucket hashed and the id tagged once for all
    /// of the keys an operation names.
    fn keys_of(&self, user_id: &str) -> UserKeys {
        UserKeys {
            bucket: format!("{}{}", self.prefix, self.bucket(user_id)),
            user: tag(user_id).into_owned(),
        }
    }

    /// `reissue:{b<n>}u:<user>`: the key holding all of a user's sessions.
    pub fn user_key(&self, user_id: &str) -> String {
        self.keys_of(user_id).user()
    }

    /// `reissue:{b<n>}:<user>:s:`: in the first layout, still read, a user's
    /// session keys are this plus the sid.
    pub fn session_key_base(&self, user_id: &str) -> String {
        self.keys_of(user_id).session_base()
    }

    /// The key of a user's session index in the first layout, still read.
    pub fn index_key(&self, user_id: &str) -> String {
        self.keys_of(user_id).index()
    }

    /// The revocation log of a user's bucket, and the channel it is published on.
    pub fn revocation_log_key(&self, user_id: &str) -> String {
        self.keys_of(user_id).log()
    }

    /// Every bucket's revocation log.
    fn revocation_logs(&self) -> Vec<String> {
        (0..self.buckets.max(1))
            .map(|n| format!("{}{{b{n}}}:rv", self.prefix))
            .collect()
    }

    fn attempt_keys(&self, a: &LoginAttempt<'_>) -> Vec<String> {
        let account = format!("{}f:{{{}}}", self.prefix, tag(a.account));
        vec![format!("{account}:{}", tag(a.network)), account]
    }

    fn revoked_keep(&self) -> i64 {
        keep_ms(&self.revoked_keep_ms, Retention::default().revoked)
    }

    fn sessions_keep(&self) -> i64 {
        keep_ms(&self.sessions_keep_ms, Retention::default().sessions)
    }

    /// The latest store time at which a script may still act for a call
    /// starting now: half the command timeout, so that a script that runs
    /// after its caller gave up (Redis hung, then resumed) does nothing.
    fn deadline(&self) -> i64 {
        let local = crate::clock::now_millis() as i64;
        let half = (self.command_timeout.as_millis() / 2).min(i64::MAX as u128) as i64;
        local + self.clock_offset_ms.load(Ordering::Relaxed) + half
    }

    fn saw_store_time(&self, store_ms: u64) {
        let local = crate::clock::now_millis() as i64;
        self.clock_offset_ms
            .store(store_ms as i64 - local, Ordering::Relaxed);
    }

    async fn sync_clock(&self) -> Result<()> {
        let Some(client) = self.nodes.primaries().into_iter().next() else {
            return Err(Error::unavailable("no Redis primary"));
        };
        let t: Vec<i64> = client
            .custom(fred::cmd!("TIME"), Vec::<String>::new())
            .await
            .map_err(Error::unavailable)?;
        if let [secs, micros] = t.as_slice() {
            self.saw_store_time((*secs as u64) * 1000 + (*micros as u64) / 1000);
        }
        Ok(())
    }

    /// Whether the deployment has replicas now (any primary has one
    /// connected): then revocations wait for one.
    async fn has_replicas(&self) -> bool {
        for client in self.nodes.primaries() {
            let info: std::result::Result<String, _> =
                client.custom(fred::cmd!("INFO"), vec!["replication"]).await;
            let replicas = info.ok().and_then(|i| {
                i.lines()
                    .find_map(|l| l.strip_prefix("connected_slaves:"))
                    .and_then(|n| n.trim().parse::<u32>().ok())
            });
            if replicas.is_some_and(|n| n > 0) {
                return true;
            }
        }
        false
    }

    /// The worst eviction policy of the primaries.
    async fn check_eviction(&self) -> Eviction {
        let mut worst = Eviction::Never;
        for client in self.nodes.primaries() {
            let reply: std::result::Result<Vec<String>, _> = client
                .custom(fred::cmd!("CONFIG"), vec!["GET", "maxmemory-policy"])
                .await;
            let found = match reply.as_deref() {
                Ok([_, policy]) if policy == "noeviction" => Eviction::Never,
                Ok([_, policy]) => Eviction::May {
                    policy: policy.clone(),
                },
                _ => Eviction::Unknown,
            };
            match (&worst, &found) {
                (Eviction::May { .. }, _) => {}
                (_, Eviction::May { .. }) | (Eviction::Never, Eviction::Unknown) => worst = found,
                _ => {}
            }
        }
        worst
    }

    async fn run(&self, script: &Script, keys: Vec<String>, args: Vec<Value>) -> Result<Value> {
        self.nodes.run(script, keys, args, None).await
    }

    /// Runs a rotation script, acknowledged if the store was built so.
    async fn run_rotation(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Value> {
        if self.acknowledged_rotations {
            self.run_acknowledged(script, keys, args).await
        } else {
            self.run(script, keys, args).await
        }
    }

    /// Runs a script whose effects must survive a failover: acknowledged only
    /// once `replica_acks` replicas have them.
    async fn run_acknowledged(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Value> {
        let acks = (self.replica_acks > 0).then_some((self.replica_acks, self.replica_wait));
        self.nodes.run(script, keys, args, acks).await
    }
}

/// The keys of one user: `bucket` is the prefix and the user's hash tag,
/// `user` the tagged id.
struct UserKeys {
    bucket: String,
    user: String,
}

impl UserKeys {
    fn user(&self) -> String {
        format!("{}u:{}", self.bucket, self.user)
    }

    fn log(&self) -> String {
        format!("{}:rv", self.bucket)
    }

    fn session_base(&self) -> String {
        format!("{}:{}:s:", self.bucket, self.user)
    }

    fn session(&self, sid: &SessionId) -> String {
        format!("{}:{}:s:{}", self.bucket, self.user, sid.as_str())
    }

    fn index(&self) -> String {
        format!("{}:{}:i", self.bucket, self.user)
    }

    /// The first layout's "everything before this was revoked" mark, which
    /// ends its sessions that their index lost.
    fn revoked_before(&self) -> String {
        format!("{}:{}:rb", self.bucket, self.user)
    }
}

fn keep_ms(slot: &AtomicU64, default: Duration) -> i64 {
    match slot.load(Ordering::Relaxed) {
        0 => default.as_millis() as i64,
        ms => ms.min(i64::MAX as u64) as i64,
    }
}

/// The `{-1}` of a script that found itself past its deadline.
fn too_late_reply(reply: &[Value]) -> bool {
    matches!(reply, [Value::Integer(-1)])
}

fn too_late() -> Error {
    Error::unavailable("Redis ran the command after its deadline (it was hung)")
}

/// A user id or account as it may appear inside a key's hash tag: as it is when
/// it is plainly safe, else base64url behind a `~` (which plain ids never
/// contain), so no id can close the tag or imitate another key.
fn tag(id: &str) -> std::borrow::Cow<'_, str> {
    let plain = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+'));
    if plain {
        id.into()
    } else {
        format!(
            "~{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
        )
        .into()
    }
}

pub(super) fn int(v: &Value) -> Result<u64> {
    match v {
        Value::Integer(i) => Ok((*i).max(0) as u64),
        Value::String(s) => s.parse().map_err(|_| bad_reply()),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad_reply),
        _ => Err(bad_reply()),
    }
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

fn bad_reply() -> Error {
    Error::Internal("unexpected reply from the Redis store".into())
}

pub(super) fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Null => Ok(Vec::new()),
        _ => Err(bad_reply()),
    }
}

fn opt_arg<T: ToString>(v: Option<T>) -> Value {
    Value::from(v.map(|x| x.to_string()).unwrap_or_default())
}

/// The client as a session record holds it (scripts.rs, "client"): the
/// country (2 bytes, zeros for none; the script writes "=" instead when it
/// is the login country), the address (a length byte, 0, 4 or 16, then its
/// bytes) and the user-agent summary.
fn encode_client(client: &ClientMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    match client.country {
        Some(c) => out.extend_from_slice(c.as_str().as_bytes()),
        None => out.extend_from_slice(&[0, 0]),
    }
    match client.ip {
        None => out.push(0),
        Some(IpAddr::V4(ip)) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        Some(IpAddr::V6(ip)) => {
            out.push(16);
            out.extend_from_slice(&ip.octets());
        }
    }
    if let Some(ua) = client.stored_user_agent() {
        out.extend_from_slice(ua.as_bytes());
    }
    out
}

fn country_of(bytes: &[u8]) -> Option<Country> {
    std::str::from_utf8(bytes).ok().and_then(Country::new)
}

/// Reads [`encode_client`]'s bytes back; `login_country` is the record's.
fn decode_client(bytes: &[u8], login_country: &[u8]) -> Option<ClientMeta> {
    let (country, rest) = match bytes {
        [b'=', rest @ ..] => (country_of(login_country), rest),
        [a, b, rest @ ..] => (country_of(&[*a, *b]), rest),
        _ => return None,
    };
    let (ip, ua) = match rest {
        [0, ua @ ..] => (None, ua),
        [4, ip @ ..] if ip.len() >= 4 => {
            let (ip, ua) = ip.split_at(4);
            let ip: [u8; 4] = ip.try_into().ok()?;
            (Some(IpAddr::from(ip)), ua)
        }
        [16, ip @ ..] if ip.len() >= 16 => {
            let (ip, ua) = ip.split_at(16);
            let ip: [u8; 16] = ip.try_into().ok()?;
            (Some(IpAddr::from(ip)), ua)
        }
        _ => return None,
    };
    let user_agent = std::str::from_utf8(ua)
        .ok()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Some(ClientMeta {
        ip,
        country,
        user_agent,
    })
}

fn bytes(v: &Value) -> &[u8] {
    v.as_bytes().unwrap_or_default()
}

/// `TIME`'s answer (seconds, microseconds) in milliseconds, as the
/// scripts' CLOCK reckons it.
fn time_ms(time: &Value) -> Result<u64> {
    match time {
        Value::Array(t) if t.len() == 2 => Ok(int(&t[0])? * 1000 + int(&t[1])? / 1000),
        _ => Err(bad_reply()),
    }
}

/// A big-endian unsigned number of up to 8 bytes.
fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |n, &x| n << 8 | u64::from(x))
}

/// The absolute and idle expiries (ms) of `sid`'s record in a user's key,
/// laid out as scripts.rs says (RECORDS): each record `I2 length .. body`,
/// the body the sid (22 bytes) then STATE, whose absolute and idle expiries
/// are its 6-byte numbers at 17 and 23. `None` if no record is the sid's.
fn expiries(key: &[u8], sid: &SessionId) -> Option<(u64, u64)> {
    const SID: usize = 22;
    let mut rest = key;
    while let [h, l, after @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*h, *l]));
        let body = after.get(..len)?;
        if body.get(..SID) == Some(sid.as_str().as_bytes()) {
            let state = body.get(SID..SID + 29)?;
            return Some((be(&state[17..23]), be(&state[23..29])));
        }
        rest = &after[len..];
    }
    None
}

/// A rotation's answer (scripts.rs, SUCCESSOR): its code, and the successor.
fn successor(b: &[u8]) -> Result<(u8, Successor)> {
    if b.len() < 25 {
        return Err(bad_reply());
    }
    let claims = std::str::from_utf8(&b[25..]).map_err(|_| bad_reply())?;
    Ok((
        b[0],
        Successor {
            generation: be(&b[1..5]),
            rotated_at_ms: be(&b[5..11]),
            expires_at_ms: be(&b[11..17]),
            absolute_expiry_ms: be(&b[17..23]),
            claims: claims.to_owned(),
            login_country: country_of(&b[23..25]),
        },
    ))
}

fn ms_arg(d: Duration) -> Value {
    Value::from(d.as_millis().min(i64::MAX as u128) as i64)
}

#[async_trait]
impl RefreshStore for RedisStore {
    async fn create(&self, s: &NewSession) -> Result<Created> {
        let k = self.keys_of(&s.user_id);
        let keys = vec![k.user(), k.log(), k.index()];
        let args: Vec<Value> = vec![
            s.sid.as_str().into(),
            ms_arg(s.max_age),
            ms_arg(s.idle_ttl),
            (s.max_sessions.clamp(1, i64::MAX as usize) as i64).into(),
            encode_client(&s.client).as_slice().into(),
            opt_arg(s.client.country),
            k.session_base().into(),
            self.deadline().into(),
            self.revoked_keep().into(),
        ];
        let reply = array(self.run(&self.scripts.create, keys, args).await?)?;
        if too_late_reply(&reply) {
            return Err(too_late());
        }
        let [now, exp, abs, evicted @ ..] = reply.as_slice() else {
            return Err(bad_reply());
        };
        let now = int(now)?;
        self.saw_store_time(now);
        Ok(Created {
            first: Successor {
                generation: 1,
                rotated_at_ms: now,
                expires_at_ms: int(exp)?,
                absolute_expiry_ms: int(abs)?,
                claims: String::new(),
                login_country: s.client.country,
            },
            evicted: evicted
                .iter()
                .filter_map(|v| text(v).as_deref().and_then(SessionId::parse))
                .collect(),
        })
    }

    async fn rotate(&self, r: &RotateRequest<'_>) -> Result<Rotation> {
        let k = self.keys_of(r.user_id);
        let request_id: u32 = rand::random();
        let clamp = |n: u64| n.min(1 << 53); // Lua's numbers are doubles
        let ms = |d: Duration| clamp(d.as_millis().min(u128::from(u64::MAX)) as u64);
        let numbers: Vec<u8> = [
            clamp(r.generation),
            ms(r.grace),
            ms(r.idle_ttl),
            u64::from(request_id),
            self.deadline().max(0) as u64,
            self.revoked_keep().max(0) as u64,
            clamp(r.issued_at_ms),
            clamp(r.max_ahead),
        ]
        .iter()
        .flat_map(|n| n.to_be_bytes())
        .collect();
        let args: Vec<Value> = vec![
            numbers.as_slice().into(),
            encode_client(r.client).as_slice().into(),
            r.sid.as_str().into(),
        ];
        let keys = vec![k.user(), k.log()];
        let mut reply = self.run_rotation(&self.scripts.rotate, keys, args).await?;
        if matches!(reply, Value::Integer(4)) {
            // a session of the first layout
            let keys = vec![k.session(r.sid), k.index(), k.revoked_before(), k.log()];
            let args: Vec<Value> = vec![
                (r.generation.min(i64::MAX as u64) as i64).into(),
                ms_arg(r.grace),
                ms_arg(r.idle_ttl),
                r.sid.as_str().into(),
                request_id.to_string().into(),
                self.deadline().into(),
                self.revoked_keep().into(),
                (r.issued_at_ms.min(i64::MAX as u64) as i64).into(),
                (r.max_ahead.min(i64::MAX as u64) as i64).into(),
                opt_arg(r.client.ip),
                opt_arg(r.client.country),
                opt_arg(r.client.stored_user_agent()),
            ];
            reply = self
                .run_rotation(&self.scripts.v1_rotate, keys, args)
                .await?;
        }
        match reply {
            Value::Integer(-1) => Err(too_late()),
            Value::Integer(0) => Ok(Rotation::NotFound),
            Value::Integer(3) => {
                // The session was revoked as theft: that must survive a
                // failover too. Running the revocation again on the
                // acknowledged path makes a replica confirm it (and redoes
                // it, should the primary have changed in between).
                if self.replica_acks > 0 && !self.acknowledged_rotations {
                    self.revoke(r.user_id, r.sid).await?;
                }
                Ok(Rotation::Reused)
            }
            Value::Bytes(_) | Value::String(_) => match successor(bytes(&reply))? {
                (1, s) => {
                    self.saw_store_time(s.rotated_at_ms);
                    Ok(Rotation::Rotated(s))
                }
                (2, s) => Ok(Rotation::Replayed(s)),
                _ => Err(bad_reply()),
            },
            _ => Err(bad_reply()),
        }
    }

    async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let k = self.keys_of(user_id);
        let keys = vec![k.user(), k.log(), k.session(sid), k.index()];
        let args = vec![sid.as_str().into(), self.revoked_keep().into()];
        let n = self
            .run_acknowledged(&self.scripts.revoke, keys, args)
            .await?;
        Ok(int(&n)? > 0)
    }

    async fn revoke_all(&self, user_id: &str) -> Result<Vec<SessionId>> {
        let k = self.keys_of(user_id);
        let keys = vec![k.user(), k.log(), k.index(), k.revoked_before()];
        let args = vec![
            k.session_base().into(),
            self.sessions_keep().into(),
            self.revoked_keep().into(),
        ];
        let ended = array(
            self.run_acknowledged(&self.scripts.revoke_all, keys, args)
                .await?,
        )?;
        Ok(ended
            .iter()
            .filter_map(|v| text(v).as_deref().and_then(SessionId::parse))
            .collect())
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        let k = self.keys_of(user_id);
        let keys = vec![k.user(), k.index(), k.revoked_before()];
        let args = vec![k.session_base().into()];
        let flat = array(self.run(&self.scripts.list, keys, args).await?)?;
        let mut sessions = flat
            .chunks_exact(8)
            .filter_map(|c| {
                text(&c[0])
                    .as_deref()
                    .and_then(SessionId::parse)
                    .map(|sid| (sid, c))
            })
            .map(|(sid, c)| {
                let client = if bytes(&c[4]).is_empty() {
                    // a session of the first layout
                    ClientMeta {
                        ip: text(&c[5]).and_then(|s| s.parse::<IpAddr>().ok()),
                        country: text(&c[6]).as_deref().and_then(Country::new),
                        user_agent: text(&c[7]),
                    }
                } else {
                    decode_client(bytes(&c[4]), bytes(&c[3])).ok_or_else(bad_reply)?
                };
                let created_us = int(&c[1])?;
                let info = SessionInfo {
                    sid,
                    created_at: created_us / 1_000_000,
                    last_used_at: int(&c[2])? / 1000,
                    client,
                };
                Ok((created_us, info))
            })
            .collect::<Result<Vec<_>>>()?;
        // oldest first, across both layouts
        sessions.sort_by_key(|(created_us, _)| *created_us);
        Ok(sessions.into_iter().map(|(_, s)| s).collect())
    }

    async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let live = self.are_live(&[(user_id, sid)]).await?;
        live.first().copied().ok_or_else(bad_reply)
    }

    /// One round trip for all of them on one server; on a cluster, one per
    /// bucket, all at once: the users' keys and the store's time, read
    /// without a script (`Nodes::time_and_get`), the records found here. A
    /// session not in its user's key (ended, or of the first layout) is
    /// asked about again with IS_LIVE, which also reads the first layout.
    async fn are_live(&self, sessions: &[(&str, &SessionId)]) -> Result<Vec<bool>> {
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let groups: Vec<Vec<usize>> = match &*self.nodes {
            Nodes::Single { .. } => vec![(0..sessions.len()).collect()],
            Nodes::Cluster(_) => {
                let mut by_bucket = std::collections::HashMap::<String, Vec<usize>>::new();
                for (i, (user_id, _)) in sessions.iter().enumerate() {
                    by_bucket.entry(self.bucket(user_id)).or_default().push(i);
                }
                by_bucket.into_values().collect()
            }
        };
        let read = |group: &[usize]| {
            let keys = group
                .iter()
                .map(|&i| self.keys_of(sessions[i].0).user())
                .collect();
            self.nodes.time_and_get(keys)
        };
        let replies = futures_util::future::try_join_all(groups.iter().map(|g| read(g))).await?;
        let mut live = vec![false; sessions.len()];
        let mut elsewhere = Vec::new();
        for (group, (time, keys)) in groups.iter().zip(replies) {
            let now = time_ms(&time)?;
            if keys.len() != group.len() {
                return Err(bad_reply());
            }
            for (&i, key) in group.iter().zip(&keys) {
                match expiries(bytes(key), sessions[i].1) {
                    Some((absolute, idle)) => live[i] = now < absolute && now < idle,
                    None => elsewhere.push(i),
                }
            }
        }
        let ask = |i: usize| {
            let (user_id, sid) = sessions[i];
            let k = self.keys_of(user_id);
            let keys = vec![k.user(), k.session(sid), k.revoked_before()];
            self.run(&self.scripts.is_live, keys, vec![sid.as_str().into()])
        };
        let answers = futures_util::future::try_join_all(elsewhere.iter().map(|&i| ask(i))).await?;
        for (i, answer) in elsewhere.into_iter().zip(answers) {
            live[i] = int(&answer)? > 0;
        }
        Ok(live)
    }

    async fn begin_login(&self, a: &LoginAttempt<'_>) -> Result<Admission> {
        let args: Vec<Value> = vec![
            i64::from(a.max_per_network).into(),
            i64::from(a.max_per_account).into(),
            ms_arg(a.window.max(Duration::from_millis(1))),
        ];
        let reply = array(
            self.run(&self.scripts.begin_login, self.attempt_keys(a), args)
                .await?,
        )?;
        match reply.as_slice() {
            [allowed, _] if int(allowed)? == 1 => Ok(Admission::Allowed),
            [_, pttl] => Ok(Admission::Throttled {
                retry_after: int(pttl)?.div_ceil(1000).max(1),
            }),
            _ => Err(bad_reply()),
        }
    }

    async fn end_login(&self, a: &LoginAttempt<'_>, end: AttemptEnd) -> Result<()> {
        let succeeded = matches!(end, AttemptEnd::Succeeded);
        let args = vec![Value::from(if succeeded { "1" } else { "0" })];
        self.run(&self.scripts.end_login, self.attempt_keys(a), args)
            .await?;
        Ok(())
    }

    fn retain(&self, retention: Retention) {
        let ms = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
        self.revoked_keep_ms
            .fetch_max(ms(retention.revoked), Ordering::Relaxed);
        self.sessions_keep_ms
            .fetch_max(ms(retention.sessions), Ordering::Relaxed);
    }

    fn follow_revocations(&self, revocations: Arc<Revocations>) -> Result<()> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("instant revocation must be set up inside a Tokio runtime".into())
        })?;
        let feed = feed::Feed {
            nodes: self.nodes.clone(),
            scripts: self.scripts.clone(),
            logs: self.revocation_logs(),
            keep: revocations.keep(),
            timeout: self.command_timeout,
            revocations: Arc::downgrade(&revocations),
        };
        runtime.spawn(feed.run());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{SessionId, expiries, tag};

    /// A record as scripts.rs lays it out: sid, STATE (generation, created,
    /// last rotation, absolute and idle expiry, request id), login country,
    /// claims length, client.
    fn record(sid: &SessionId, absolute: u64, idle: u64, client: &[u8]) -> Vec<u8> {
        let mut body = sid.as_str().as_bytes().to_vec();
        body.extend_from_slice(&7u32.to_be_bytes());
        body.extend_from_slice(&[0; 7]);
        body.extend_from_slice(&[0; 6]);
        body.extend_from_slice(&absolute.to_be_bytes()[2..]);
        body.extend_from_slice(&idle.to_be_bytes()[2..]);
        body.extend_from_slice(&0u32.to_be_bytes());
        body.extend_from_slice(b"DE\0\0");
        body.extend_from_slice(client);
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn expiries_are_read_from_the_sessions_record_only() {
        let (a, b) = (SessionId::random(), SessionId::random());
        // b's id inside a's client text, as a user agent may carry it
        let key = [
            record(&a, 1_000, 2_000, format!("= {}", b.as_str()).as_bytes()),
            record(&b, 3_000, 4_000, b""),
        ]
        .concat();
        assert_eq!(expiries(&key, &a), Some((1_000, 2_000)));
        assert_eq!(expiries(&key, &b), Some((3_000, 4_000)));
        let only_a = record(&a, 1_000, 2_000, format!("= {}", b.as_str()).as_bytes());
        assert_eq!(
            expiries(&only_a, &b),
            None,
            "an id in a user agent is no record"
        );
        assert_eq!(expiries(b"", &a), None);
    }

    #[test]
    fn a_damaged_key_reads_as_no_record_without_panicking() {
        let a = SessionId::random();
        let key = record(&a, 1_000, 2_000, b"client");
        assert_eq!(expiries(&key, &a), Some((1_000, 2_000)));
        for cut in 0..key.len() {
            assert_eq!(expiries(&key[..cut], &a), None, "cut at {cut}");
        }
        // a length past the end of the key
        let mut long = key.clone();
        long[0] = 0xff;
        assert_eq!(expiries(&long, &a), None);
    }

    #[test]
    fn hash_tags_cannot_be_escaped() {
        assert_eq!(tag("42"), "42");
        assert_eq!(tag("a@b.io"), "a@b.io");
        for hostile in ["a}b", "{x}", "a:s:b", "", "é", "a b"] {
            let t = tag(hostile);
            assert!(t.starts_with('~'), "{hostile:?} -> {t}");
            assert!(!t.contains(['{', '}', ':']), "{hostile:?} -> {t}");
        }
        assert_ne!(
            tag("~YQ"),
            tag("a"),
            "an id that looks encoded is encoded again"
        );
    }
}
