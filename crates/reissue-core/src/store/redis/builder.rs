//! Building a [`RedisStore`]: the builder, the deployment it connects to and
//! what the store checks about it at connect (replicas, eviction, clock).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use fred::prelude::{ClientLike, Config, Pool};
use fred::types::config::ServerConfig;

use super::RedisStore;
use super::nodes::{Cluster, Nodes, Settings, StoreClock};
use super::scripts::Scripts;
use crate::{Error, Result};

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

    /// How many replicas a revocation waits for (`WAIT`) before it answers.
    /// When fewer confirm it within [`replica_wait`](Self::replica_wait), it
    /// still succeeds (it took effect on the primary, and a logout must not
    /// fail because a replica is slow or gone), and is reported as
    /// unconfirmed: a warning, the metric
    /// `reissue_revocations_unconfirmed_total`, and
    /// [`RedisStore::unconfirmed_revocations`]; a failover before a replica
    /// has it could undo it. Default: 1 if the deployment has replicas when
    /// the store connects, else 0 (nothing to wait for).
    pub fn replica_acks(mut self, n: u32) -> Self {
        self.replica_acks = Some(n);
        self
    }

    /// How long a revocation waits for its replicas (default 250 ms; less
    /// than the command timeout). A `WAIT` returns as soon as they confirm,
    /// so this costs only where a replica is slow or gone.
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
                    clock: Arc::new(StoreClock::new()),
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
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// use reissue_core::store::RedisStore;
    ///
    /// # async fn connect() -> reissue_core::Result<()> {
    /// let store = RedisStore::builder("redis-cluster://10.0.0.1:6379?node=10.0.0.2:6379")
    ///     .key_prefix("my-app:")
    ///     .command_timeout(Duration::from_millis(500))
    ///     .require_noeviction(true)
    ///     .connect()
    ///     .await?;
    /// println!("PING {:?}", store.ping().await?);
    /// # Ok(())
    /// # }
    /// ```
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
                clock: Arc::new(StoreClock::new()),
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
            unconfirmed: AtomicU64::new(0),
            revoked_keep_ms: AtomicU64::new(0),
            eviction: Eviction::Unknown,
            replica_acks: 0,
            replica_wait: Duration::from_millis(250),
            acknowledged_rotations: false,
        }
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
}
