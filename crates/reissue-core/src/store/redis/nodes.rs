//! Where the store's commands go: one server or a Sentinel-managed primary
//! (fred routes), or the primaries of a Redis Cluster (routed here, by slot).
//!
//! Why not fred's cluster client: it reconnects all-or-nothing. While one
//! primary is unreachable and still listed in `CLUSTER SLOTS` (until its
//! replica is promoted), every reconnection attempt fails and the client holds
//! every command, also those for the healthy primaries (fred #363). Routing by
//! slot over one centralized pool per primary keeps a failure where it is: the
//! failed primary's users get 503, the others do not notice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use fred::interfaces::{KeysInterface, ServerInterface};
use fred::prelude::{Builder, Client, ClientLike, Config, Pool, ReconnectPolicy, Server};
use fred::types::config::ServerConfig;
use fred::types::scripts::Script;
use fred::types::{CustomCommand, Value};
use fred::util::redis_keyslot;

use crate::{Error, Result};

const SLOTS: usize = 16384;
const UNSERVED: u16 = u16::MAX;

/// How a pool of the store is built: the parsed URL and the timeouts.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) config: Config,
    pub(super) pool_size: usize,
    pub(super) timeout: Duration,
}

impl Settings {
    /// A builder for `server` whose commands and connections time out.
    fn builder(&self, server: ServerConfig) -> Builder {
        let mut config = self.config.clone();
        config.server = server;
        let timeout = self.timeout;
        let mut builder = Builder::from_config(config);
        builder
            .with_performance_config(|p| p.default_command_timeout = timeout)
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
            });
        builder
    }

    /// A pool on `server`; `attempts` is how often fred may send one command
    /// (1 for the acknowledged path: a resend on another connection would make
    /// its `WAIT` count nothing).
    pub(super) fn pool(&self, server: ServerConfig, size: usize, attempts: u32) -> Result<Pool> {
        self.builder(server)
            // A resent rotation is recognised by its request id, and a late
            // one refused by its deadline, so resending is safe.
            .with_connection_config(|c| c.max_command_attempts = attempts)
            // Reconnect attempts at most 500 ms apart: after a failover the
            // new primary is found within half a second.
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 500, 2))
            .build_pool(size)
            .map_err(|e| Error::Config(format!("REDIS_URL: {}", e.details())))
    }

    /// A client on `server` for the revocation feed.
    pub(super) fn subscriber(&self, server: ServerConfig) -> Result<Client> {
        self.builder(server)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 1_000, 2))
            .build()
            .map_err(|e| Error::Config(format!("REDIS_URL: {}", e.details())))
    }
}

/// One primary's clock as this instance knows it: the store time it last
/// reported, carried forward by the monotonic clock. A deadline in the
/// store's time is then right however the wall clock steps (NTP, a VM
/// resumed), and each primary of a cluster has its own. Learned from every
/// reply that carries the store's time, "too late" ones included.
pub(super) struct StoreClock {
    base: Instant,
    /// The store's time at `base`, in ms; `i64::MIN` until a reply told it.
    at_base: AtomicI64,
}

impl StoreClock {
    pub(super) fn new() -> Self {
        Self {
            base: Instant::now(),
            at_base: AtomicI64::new(i64::MIN),
        }
    }

    fn elapsed_ms(&self) -> i64 {
        self.base.elapsed().as_millis().min(i64::MAX as u128 / 2) as i64
    }

    /// The store's time now, in ms: learned, or, before any reply, the
    /// instance's wall clock (a script that finds it wrong answers "too
    /// late" with its time, which teaches this).
    pub(super) fn now_ms(&self) -> i64 {
        match self.at_base.load(Ordering::Relaxed) {
            i64::MIN => crate::clock::now_millis() as i64,
            at => at + self.elapsed_ms(),
        }
    }

    /// A reply said the store's time was `store_ms`.
    pub(super) fn learn(&self, store_ms: u64) {
        let at = (store_ms.min(i64::MAX as u64 / 2) as i64) - self.elapsed_ms();
        self.at_base.store(at, Ordering::Relaxed);
    }
}

/// The connections to one primary.
pub(super) struct Node {
    pub(super) addr: String,
    pub(super) server: Server,
    pub(super) pool: Pool,
    /// For acknowledged writes (`WAIT` needs the connection that wrote), kept
    /// apart so that a slow `WAIT` holds up no rotation.
    pub(super) durable: Pool,
    pub(super) clock: Arc<StoreClock>,
    answered: AtomicBool,
}

impl Node {
    fn new(settings: &Settings, server: Server) -> Result<Self> {
        let centralized = ServerConfig::Centralized {
            server: server.clone(),
        };
        let pool = settings.pool(centralized.clone(), settings.pool_size, 2)?;
        let durable = settings.pool(centralized, settings.pool_size.min(2), 1)?;
        Ok(Self {
            addr: format!("{}:{}", server.host, server.port),
            server,
            pool,
            durable,
            clock: Arc::new(StoreClock::new()),
            answered: AtomicBool::new(false),
        })
    }

    fn connect(&self) {
        drop(self.pool.connect_pool());
        drop(self.durable.connect_pool());
    }

    /// Known down: it answered before, and none of its connections is up now
    /// (fred is reconnecting). Commands for it then fail at once instead of
    /// each waiting out the command timeout.
    fn is_down(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
            && !self.pool.clients().iter().any(|c| c.is_connected())
    }

    async fn quit(&self) {
        let _ = self.pool.quit().await;
        let _ = self.durable.quit().await;
    }
}

/// Which primary serves which slot.
pub(super) struct Topology {
    owner: Vec<u16>,
    pub(super) primaries: Vec<Arc<Node>>,
    /// Every address `CLUSTER SLOTS` named, replicas included: whom to ask next time.
    known: Vec<Server>,
}

impl Topology {
    fn empty() -> Self {
        Self {
            owner: vec![UNSERVED; SLOTS],
            primaries: Vec::new(),
            known: Vec::new(),
        }
    }

    pub(super) fn owner(&self, slot: u16) -> Option<&Arc<Node>> {
        match self.owner.get(slot as usize) {
            Some(&i) if i != UNSERVED => self.primaries.get(i as usize),
            _ => None,
        }
    }
}

/// Where commands go.
pub(super) enum Nodes {
    /// One server, or the primary a Sentinel names: fred routes (and follows
    /// a Sentinel failover).
    Single {
        pool: Pool,
        /// For acknowledged writes; `None` on a pool the application built
        /// (then they share its connections).
        durable: Option<Pool>,
        settings: Box<Settings>,
        /// Whether Redis has answered: from then on, while no connection of
        /// the pool is up, commands fail at once.
        answered: AtomicBool,
        clock: Arc<StoreClock>,
    },
    /// A Redis Cluster, routed here by slot.
    Cluster(Arc<Cluster>),
}

impl Nodes {
    pub(super) fn settings(&self) -> &Settings {
        match self {
            Nodes::Single { settings, .. } => settings,
            Nodes::Cluster(c) => &c.settings,
        }
    }

    /// Changes whenever a slot changes hands (never on one server).
    pub(super) fn version(&self) -> u64 {
        match self {
            Nodes::Single { .. } => 0,
            Nodes::Cluster(c) => c.version(),
        }
    }

    /// On a cluster, asks again who serves what (in the background).
    pub(super) fn refresh_soon(&self) {
        if let Nodes::Cluster(c) = self {
            c.refresh_soon();
        }
    }

    /// The clock of the primary serving `key` (on a cluster, as the map
    /// says now; a slot nobody serves gets a clock of its own, unused).
    pub(super) fn clock_for(&self, key: &str) -> Arc<StoreClock> {
        match self {
            Nodes::Single { clock, .. } => clock.clone(),
            Nodes::Cluster(c) => c
                .topology()
                .owner(redis_keyslot(key.as_bytes()))
                .map_or_else(|| Arc::new(StoreClock::new()), |n| n.clock.clone()),
        }
    }

    /// One client per primary with its clock.
    pub(super) fn clocks(&self) -> Vec<(Client, Arc<StoreClock>)> {
        match self {
            Nodes::Single { pool, clock, .. } => vec![(pool.next().clone(), clock.clone())],
            Nodes::Cluster(c) => c
                .topology()
                .primaries
                .iter()
                .map(|n| (n.pool.next_connected().clone(), n.clock.clone()))
                .collect(),
        }
    }

    /// One client per primary, for the checks made at connect.
    pub(super) fn primaries(&self) -> Vec<Client> {
        match self {
            Nodes::Single { pool, .. } => vec![pool.next().clone()],
            Nodes::Cluster(c) => c
                .topology()
                .primaries
                .iter()
                .map(|n| n.pool.next_connected().clone())
                .collect(),
        }
    }

    /// A connection of the store to `server` (one server or Sentinel: the
    /// pool), for asking about another connection to it; `None` when no
    /// primary of the cluster is there any more.
    pub(super) fn client_on(&self, server: &ServerConfig) -> Option<Client> {
        match self {
            Nodes::Single { pool, .. } => Some(pool.next().clone()),
            Nodes::Cluster(c) => {
                let ServerConfig::Centralized { server } = server else {
                    return None;
                };
                c.topology()
                    .primaries
                    .iter()
                    .find(|n| n.server == *server)
                    .map(|n| n.pool.next_connected().clone())
            }
        }
    }

    /// Runs `script` where its keys live; with `acks`, only confirmed once
    /// that many replicas have it (see [`acknowledged`]): a script not
    /// confirmed in time still answers (it took effect on the primary).
    pub(super) async fn run(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
        acks: Option<(u32, Duration)>,
    ) -> Result<Value> {
        Ok(self.run_confirmed(script, keys, args, acks).await?.0)
    }

    /// [`run`](Self::run), and whether the replicas confirmed it (always
    /// `true` without `acks`).
    pub(super) async fn run_confirmed(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
        acks: Option<(u32, Duration)>,
    ) -> Result<(Value, bool)> {
        let first = keys.first().cloned().unwrap_or_default();
        self.on_primary(&first, |pools| {
            let (keys, args) = (keys.clone(), args.clone());
            async move {
                match acks {
                    None => script
                        .evalsha_with_reload(pools.pool.next(), keys, args)
                        .await
                        .map(|v| (v, true))
                        .map_err(Failure::Redis),
                    Some((n, wait)) => {
                        acknowledged(pools.durable.next(), script, keys, args, n, wait).await
                    }
                }
            }
        })
        .await
    }

    /// The store's time (`TIME`) and the values of `keys` (`MGET`; on a
    /// cluster, of one slot), pipelined on one connection of their primary:
    /// one round trip, two commands, no script. Strict mode's check of every
    /// request reads this way: the same through a script costs Redis ten
    /// times as much, most of it in making Lua strings of the values.
    pub(super) async fn time_and_get(&self, keys: Vec<String>) -> Result<(Value, Vec<Value>)> {
        let first = keys.first().cloned().unwrap_or_default();
        self.on_primary(&first, |pools| {
            let keys = keys.clone();
            async move {
                let pipeline = pools.pool.next().pipeline();
                let time = CustomCommand::new_static("TIME", None, false);
                let _: () = pipeline
                    .custom(time, Vec::<Value>::new())
                    .await
                    .map_err(Failure::Redis)?;
                let _: () = pipeline.mget(keys).await.map_err(Failure::Redis)?;
                let mut replies: Vec<Value> = pipeline.all().await.map_err(Failure::Redis)?;
                let values = replies.pop().map(Value::into_array).unwrap_or_default();
                let time = replies.pop().unwrap_or(Value::Null);
                Ok((time, values))
            }
        })
        .await
    }

    /// Sends what `call` sends to the primary of `first_key`'s slot (on one
    /// server or a Sentinel's primary, to it), failing at once while that
    /// primary is known down; on a cluster, follows one redirection (MOVED:
    /// nothing ran, so it is safe to send again).
    async fn on_primary<T, F, Fut>(&self, first_key: &str, call: F) -> Result<T>
    where
        F: Fn(Pools) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
    {
        let (pool, durable, answered) = match self {
            Nodes::Single {
                pool,
                durable,
                answered,
                ..
            } => (pool, durable.as_ref().unwrap_or(pool), answered),
            Nodes::Cluster(c) => return c.on_primary(first_key, call).await,
        };
        if answered.load(Ordering::Relaxed) && !pool.clients().iter().any(|c| c.is_connected()) {
            return Err(Error::unavailable("Redis is down; reconnecting"));
        }
        let result = call(Pools {
            pool: pool.clone(),
            durable: durable.clone(),
        })
        .await;
        if result.is_ok() {
            answered.store(true, Ordering::Relaxed);
        }
        result.map_err(|Failure::Redis(e)| store_error(e))
    }
}

/// A primary's pools: for commands, and for acknowledged writes (`WAIT`
/// needs the connection that wrote).
pub(super) struct Pools {
    pool: Pool,
    durable: Pool,
}

/// A Redis Cluster, routed by slot.
pub(super) struct Cluster {
    pub(super) settings: Settings,
    seeds: Vec<Server>,
    topology: RwLock<Arc<Topology>>,
    refreshing: tokio::sync::Mutex<()>,
    refreshed_at: Mutex<Instant>,
    /// Bumped whenever a slot changes hands: the feed resubscribes.
    pub(super) changes: tokio::sync::watch::Sender<u64>,
    version: AtomicU64,
}

/// One slot range of `CLUSTER SLOTS`: its primary and replica addresses.
struct Range {
    start: u16,
    end: u16,
    primary: Server,
    replicas: Vec<Server>,
}

fn server_of(v: &Value, default_host: &str) -> Option<Server> {
    let Value::Array(parts) = v else { return None };
    let host = parts.first().and_then(|h| h.as_string())?;
    let port = parts.get(1).and_then(|p| p.as_i64())?;
    let host = if host.is_empty() || host == "?" {
        default_host.to_owned()
    } else {
        host
    };
    Some(Server::new(host, u16::try_from(port).ok()?))
}

fn parse_slots(reply: Value, default_host: &str) -> Option<Vec<Range>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(r) = range else { return None };
        let start = u16::try_from(r.first()?.as_i64()?).ok()?;
        let end = u16::try_from(r.get(1)?.as_i64()?).ok()?;
        let primary = server_of(r.get(2)?, default_host)?;
        let replicas = r[3..]
            .iter()
            .filter_map(|v| server_of(v, default_host))
            .collect();
        out.push(Range {
            start,
            end,
            primary,
            replicas,
        });
    }
    Some(out)
}

async fn ask_slots(client: &Client, timeout: Duration, host: &str) -> Option<Vec<Range>> {
    let reply = tokio::time::timeout(
        timeout,
        client.custom::<Value, &str>(fred::cmd!("CLUSTER"), vec!["SLOTS"]),
    )
    .await
    .ok()?
    .ok()?;
    parse_slots(reply, host).filter(|r| !r.is_empty())
}

impl Cluster {
    /// Learns the topology from the seeds (any node will do).
    pub(super) async fn connect(settings: Settings, seeds: Vec<Server>) -> Result<Arc<Self>> {
        let (changes, _) = tokio::sync::watch::channel(0);
        let cluster = Arc::new(Self {
            settings,
            seeds,
            topology: RwLock::new(Arc::new(Topology::empty())),
            refreshing: tokio::sync::Mutex::new(()),
            refreshed_at: Mutex::new(Instant::now() - Duration::from_secs(60)),
            changes,
            version: AtomicU64::new(0),
        });
        if !cluster.refresh(true).await || cluster.topology().primaries.is_empty() {
            return Err(Error::unavailable(
                "no node of the Redis Cluster answered CLUSTER SLOTS",
            ));
        }
        Ok(cluster)
    }

    pub(super) fn topology(&self) -> Arc<Topology> {
        self.topology
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A version number that changes whenever a slot changes hands.
    pub(super) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Asks the cluster who serves what, unless another call just did (or is
    /// doing) it; `force` skips the rate limit. `true` if a node answered.
    pub(super) async fn refresh(&self, force: bool) -> bool {
        let asked = Instant::now();
        let _guard = self.refreshing.lock().await;
        {
            let at = *self.refreshed_at.lock().unwrap_or_else(|p| p.into_inner());
            if at >= asked || (!force && at.elapsed() < Duration::from_millis(100)) {
                return true;
            }
        }
        let current = self.topology();
        let probe = self.settings.timeout.min(Duration::from_millis(500));
        let mut ranges = None;
        // The connected primaries first: they answer at once.
        let mut by_state: Vec<&Arc<Node>> = current.primaries.iter().collect();
        by_state.sort_by_key(|n| n.is_down());
        for node in by_state {
            if node.is_down() {
                continue;
            }
            if let Some(r) = ask_slots(node.pool.next_connected(), probe, &node.server.host).await {
                ranges = Some(r);
                break;
            }
        }
        if ranges.is_none() {
            let mut others: Vec<Server> = current.known.clone();
            others.extend(self.seeds.iter().cloned());
            others.dedup();
            for server in others {
                if let Some(r) = self.ask_once(&server, probe).await {
                    ranges = Some(r);
                    break;
                }
            }
        }
        *self.refreshed_at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let Some(ranges) = ranges else {
            return false;
        };
        self.apply(&current, ranges).await;
        true
    }

    async fn ask_once(&self, server: &Server, probe: Duration) -> Option<Vec<Range>> {
        let client = self
            .settings
            .subscriber(ServerConfig::Centralized {
                server: server.clone(),
            })
            .ok()?;
        let connected = tokio::time::timeout(probe, client.init()).await;
        let ranges = match connected {
            Ok(Ok(_)) => ask_slots(&client, probe, &server.host).await,
            _ => None,
        };
        let _ = client.quit().await;
        ranges
    }

    async fn apply(&self, current: &Topology, ranges: Vec<Range>) {
        let existing: HashMap<String, Arc<Node>> = current
            .primaries
            .iter()
            .map(|n| (n.addr.clone(), n.clone()))
            .collect();
        let mut primaries: Vec<Arc<Node>> = Vec::new();
        let mut index: HashMap<String, u16> = HashMap::new();
        let mut owner = vec![UNSERVED; SLOTS];
        let mut known = Vec::new();
        for range in ranges {
            let addr = format!("{}:{}", range.primary.host, range.primary.port);
            let i = match index.get(&addr) {
                Some(&i) => i,
                None => {
                    let node = match existing.get(&addr) {
                        Some(n) => n.clone(),
                        None => match Node::new(&self.settings, range.primary.clone()) {
                            Ok(n) => {
                                n.connect();
                                Arc::new(n)
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, node = %addr, "cannot build a pool for a Redis primary");
                                continue;
                            }
                        },
                    };
                    primaries.push(node);
                    let i = (primaries.len() - 1) as u16;
                    index.insert(addr, i);
                    i
                }
            };
            for slot in range.start..=range.end.min(SLOTS as u16 - 1) {
                owner[slot as usize] = i;
            }
            known.push(range.primary);
            known.extend(range.replicas);
        }
        let moved = primaries.len() != current.primaries.len()
            || (0..SLOTS).any(|s| {
                let old = current.owner[s];
                let new = owner[s];
                match (old, new) {
                    (UNSERVED, UNSERVED) => false,
                    (UNSERVED, _) | (_, UNSERVED) => true,
                    (o, n) => current.primaries[o as usize].addr != primaries[n as usize].addr,
                }
            });
        let gone: Vec<Arc<Node>> = current
            .primaries
            .iter()
            .filter(|n| !index.contains_key(&n.addr))
            .cloned()
            .collect();
        let topology = Topology {
            owner,
            primaries,
            known,
        };
        *self.topology.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(topology);
        if moved {
            let v = self.version.fetch_add(1, Ordering::AcqRel) + 1;
            self.changes.send_replace(v);
            tracing::info!(version = v, "Redis Cluster topology changed");
        }
        for node in gone {
            tokio::spawn(async move { node.quit().await });
        }
    }

    /// Refreshes in the background (rate-limited): after a failure that may
    /// mean a slot changed hands.
    pub(super) fn refresh_soon(self: &Arc<Self>) {
        let this = self.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                this.refresh(false).await;
            });
        }
    }

    /// The primary serving `key`'s slot, or 503.
    pub(super) fn node_for(self: &Arc<Self>, key: &str) -> Result<Arc<Node>> {
        let slot = redis_keyslot(key.as_bytes());
        let topology = self.topology();
        match topology.owner(slot) {
            Some(node) if !node.is_down() => Ok(node.clone()),
            Some(_) => {
                self.refresh_soon();
                Err(Error::unavailable("the Redis primary of this slot is down"))
            }
            None => {
                self.refresh_soon();
                Err(Error::unavailable("no Redis primary serves this slot"))
            }
        }
    }

    /// [`Nodes::on_primary`] on a cluster: routed by `first_key`'s slot.
    async fn on_primary<T, F, Fut>(self: &Arc<Self>, first_key: &str, call: F) -> Result<T>
    where
        F: Fn(Pools) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
    {
        let mut redirected = false;
        loop {
            let node = self.node_for(first_key)?;
            let result = call(Pools {
                pool: node.pool.clone(),
                durable: node.durable.clone(),
            })
            .await;
            match result {
                Ok(v) => {
                    node.answered.store(true, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(Failure::Redis(e)) if !redirected && is_redirect(&e) => {
                    redirected = true;
                    self.refresh(true).await;
                }
                Err(Failure::Redis(e)) => {
                    if is_transient(&e) {
                        self.refresh_soon();
                    }
                    return Err(store_error(e));
                }
            }
        }
    }
}

/// Why a command failed.
pub(super) enum Failure {
    Redis(fred::error::Error),
}

/// Runs `script` and then `WAIT acks wait` on the same connection, in one
/// pipeline: the flag says whether `acks` replicas confirmed the script's
/// effects within `wait`. Fewer is no failure: the script took effect on the
/// primary, and a revocation must never fail because a replica is slow or
/// gone (the caller reports it). The client is built to send each command
/// once, so a `WAIT` never lands alone on a new connection (where it would
/// count nothing and confirm at once).
pub(super) async fn acknowledged(
    client: &Client,
    script: &Script,
    keys: Vec<String>,
    args: Vec<Value>,
    acks: u32,
    wait: Duration,
) -> std::result::Result<(Value, bool), Failure> {
    let body = script.lua().cloned().unwrap_or_default();
    let mut eval: Vec<Value> = Vec::with_capacity(2 + keys.len() + args.len());
    eval.push(Value::from(body));
    eval.push(Value::from(keys.len() as i64));
    eval.extend(keys.into_iter().map(Value::from));
    eval.extend(args);
    let pipeline = client.pipeline();
    let queued: std::result::Result<Value, _> = pipeline.custom(fred::cmd!("EVAL"), eval).await;
    queued.map_err(Failure::Redis)?;
    let wait_ms = wait.as_millis().clamp(1, i64::MAX as u128) as i64;
    let queued: std::result::Result<Value, _> = pipeline.wait(i64::from(acks), wait_ms).await;
    queued.map_err(Failure::Redis)?;
    let mut results = pipeline.try_all::<Value>().await.into_iter();
    let value = results
        .next()
        .unwrap_or_else(|| Err(fred::error::Error::new_canceled()))
        .map_err(Failure::Redis)?;
    let confirmed = results
        .next()
        .unwrap_or_else(|| Err(fred::error::Error::new_canceled()))
        .map_err(Failure::Redis)?;
    let confirmed = confirmed.as_i64().unwrap_or(0);
    Ok((value, confirmed >= i64::from(acks)))
}

fn is_redirect(e: &fred::error::Error) -> bool {
    let d = e.details();
    d.starts_with("MOVED ") || d.contains("MOVED ")
}

/// Errors that a failover, a restart or a resharding cause, which pass.
fn is_transient(e: &fred::error::Error) -> bool {
    use fred::error::ErrorKind::*;
    if matches!(e.kind(), IO | Timeout | Canceled | Cluster | Routing) {
        return true;
    }
    const MARKERS: [&str; 11] = [
        "MOVED",
        "ASK ",
        "CLUSTERDOWN",
        "TRYAGAIN",
        "LOADING",
        "READONLY",
        "MASTERDOWN",
        "NOREPLICAS",
        "BUSY",
        "OOM",
        "UNBLOCKED",
    ];
    let d = e.details();
    MARKERS.iter().any(|m| d.contains(m))
}

/// Errors that only a bug in the store can cause: a script touching a key of
/// another slot, or a key of the wrong type.
fn is_bug(e: &fred::error::Error) -> bool {
    const MARKERS: [&str; 5] = [
        "CROSSSLOT",
        "do not hash to the same slot",
        "non local key",
        "WRONGTYPE",
        "user_script",
    ];
    let d = e.details();
    MARKERS.iter().any(|m| d.contains(m))
}

/// A Redis failure as the store reports it: 503 for anything that passes
/// (an outage, a failover), and a loud internal error for what cannot pass.
pub(super) fn store_error(e: fred::error::Error) -> Error {
    if !is_transient(&e) && is_bug(&e) {
        tracing::error!(error = %e, "the Redis store's command was refused: a bug in reissue");
        return Error::Internal(format!(
            "the Redis store refused a command: {}",
            e.details()
        ));
    }
    Error::unavailable(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::error::{Error as FredError, ErrorKind};

    #[test]
    fn errors_are_classified() {
        let unknown = |s: &str| FredError::new(ErrorKind::Unknown, s.to_owned());
        for bug in [
            "CROSSSLOT Keys in request don't hash to the same slot",
            "ERR Script attempted to access keys that do not hash to the same slot script: x, on @user_script:3.",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ] {
            assert!(
                matches!(store_error(unknown(bug)), Error::Internal(_)),
                "{bug}"
            );
        }
        for passing in [
            "READONLY You can't write against a read only replica. script: x, on @user_script:5.",
            "CLUSTERDOWN The cluster is down",
            "LOADING Redis is loading the dataset in memory",
            "OOM command not allowed when used memory > 'maxmemory'. script: x, on @user_script:9.",
        ] {
            assert!(
                matches!(store_error(unknown(passing)), Error::Unavailable(_)),
                "{passing}"
            );
        }
        assert!(matches!(
            store_error(FredError::new(ErrorKind::Timeout, "t")),
            Error::Unavailable(_)
        ));
        assert!(is_redirect(&FredError::new(
            ErrorKind::Cluster,
            "MOVED 3999 127.0.0.1:6381"
        )));
    }

    #[test]
    fn cluster_slots_replies_parse() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::from(host),
                Value::from(port),
                Value::from("id"),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::from(0),
                Value::from(5460),
                node("127.0.0.1", 7000),
                node("127.0.0.1", 7003),
            ]),
            Value::Array(vec![Value::from(5461), Value::from(16383), node("", 7001)]),
        ]);
        let ranges = parse_slots(reply, "10.0.0.9").unwrap();
        assert_eq!(ranges.len(), 2);
        assert_eq!((ranges[0].start, ranges[0].end), (0, 5460));
        assert_eq!(ranges[0].replicas.len(), 1);
        assert_eq!(
            &*ranges[1].primary.host, "10.0.0.9",
            "an empty host is the node asked"
        );
        assert!(parse_slots(Value::from("nope"), "h").is_none());
    }
}
