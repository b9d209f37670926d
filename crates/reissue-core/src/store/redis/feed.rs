//! The revocation feed of one instance: a subscription to every bucket's
//! sharded revocation channel, and a catch-up from every bucket's log after
//! each (re)subscription. The instance counts as in sync only between a
//! completed catch-up and the first sign of trouble (a connection error, a
//! reconnection, a missed message, a heartbeat that went unanswered, a slot
//! that changed hands).
//!
//! fred's plain client neither resubscribes after a reconnection nor tells
//! when Redis unsubscribes it (a slot that moved away, a primary demoted:
//! the `sunsubscribe` notice is dropped), and a `PING` answers on a
//! connection that has lost its subscriptions. So the feed names each
//! subscriber connection, remembers its id, and asks Redis itself (`CLIENT
//! LIST ID`, on another connection to the same server) whether that very
//! connection still holds every channel: once after the catch-up, before the
//! set is marked in sync, and at every heartbeat.

use std::sync::{Arc, Weak};
use std::time::Duration;

use fred::interfaces::{EventInterface, PubsubInterface};
use fred::prelude::{Client, ClientLike};
use fred::types::Value;
use fred::types::config::ServerConfig;
use fred::util::redis_keyslot;
use tokio::sync::mpsc;

use super::nodes::Nodes;
use super::scripts::Scripts;
use super::{array, int, text};
use crate::verification::revocation::Revocations;
use crate::{Error, Result, SessionId};

/// How often the feed checks that its subscriptions still answer.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// The shortest lease of a feed's announced retention (`<log>:keep`, see
/// catch_up.lua); the lease is at least the retention itself, and the feed
/// announces again every quarter of it.
const MIN_LEASE: Duration = Duration::from_secs(3600);

pub(super) struct Feed {
    pub(super) nodes: Arc<Nodes>,
    pub(super) scripts: Arc<Scripts>,
    /// Every bucket's log key, which is also its channel.
    pub(super) logs: Vec<String>,
    pub(super) keep: Duration,
    pub(super) timeout: Duration,
    pub(super) revocations: Weak<Revocations>,
}

enum Event {
    Ended(String),
    Trouble,
}

/// One subscriber connection and the channels it listens to.
struct Subscriber {
    client: Client,
    server: ServerConfig,
    channels: Vec<String>,
    /// The name given to the connection that subscribed, and its id, taken
    /// before its first `SSUBSCRIBE`: a reconnection, which fred makes on its
    /// own and without the subscriptions, shows as another id without the name.
    connection: Option<(i64, String)>,
}

async fn within<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = std::result::Result<T, fred::error::Error>>,
) -> Result<T> {
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| Error::unavailable("timed out"))?
        .map_err(Error::unavailable)
}

/// Forwards a subscriber's messages and troubles, tagged with the epoch of
/// the sync that made it, until the subscriber closes. Called before the
/// client connects: fred announces its first connection as a reconnection,
/// which is no trouble; every later one is (the new connection has none of
/// the subscriptions), and so is every error.
fn forward(client: &Client, epoch: u64, tx: mpsc::UnboundedSender<(u64, Event)>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut messages = client.message_rx();
    let mut reconnects = client.reconnect_rx();
    let mut errors = client.error_rx();
    tokio::spawn(async move {
        let mut connected = false;
        loop {
            let event = tokio::select! {
                m = messages.recv() => match m {
                    Ok(m) => Event::Ended(m.value.as_string().unwrap_or_default()),
                    Err(RecvError::Lagged(_)) => Event::Trouble,
                    Err(RecvError::Closed) => break,
                },
                r = reconnects.recv() => match r {
                    Err(RecvError::Closed) => break,
                    Ok(_) if !connected => {
                        connected = true;
                        continue;
                    }
                    _ => Event::Trouble,
                },
                e = errors.recv() => match e {
                    Err(RecvError::Closed) => break,
                    _ => Event::Trouble,
                },
            };
            if tx.send((epoch, event)).is_err() {
                break;
            }
        }
    });
}

impl Feed {
    pub(super) async fn run(self) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Event)>();
        let mut subscribers: Vec<Subscriber> = Vec::new();
        let mut epoch = 0u64;
        let mut backoff = Duration::from_millis(100);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut announce = tokio::time::interval(self.lease() / 4);
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        announce.reset();
        'resync: while let Some(revocations) = self.revocations.upgrade() {
            revocations.set_synced(false);
            for old in subscribers.drain(..) {
                tokio::spawn(async move {
                    let _ = old.client.quit().await;
                });
            }
            epoch += 1;
            let version = self.nodes.version();
            match self.sync(&revocations, epoch, &tx).await {
                Ok(subs) => subscribers = subs,
                Err((e, subs)) => {
                    subscribers = subs;
                    // A primary that does not answer may have been replaced:
                    // an idle instance must not wait for a request to find out.
                    self.nodes.refresh_soon();
                    tracing::warn!(error = %e, "revocation feed: not in sync; checking the store per request");
                    drop(revocations);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
            // Troubles of earlier syncs are moot: this one happened after
            // them. A trouble of this one (a reconnection in the middle of its
            // SSUBSCRIBEs, an error) fails it, even though every call
            // answered: fred resent them on a new connection, which lacks the
            // channels subscribed before. Revocations are kept.
            let mut failed = false;
            while let Ok((e, event)) = rx.try_recv() {
                match (e == epoch, event) {
                    (true, Event::Ended(sids)) => insert(&revocations, &sids),
                    (true, Event::Trouble) => failed = true,
                    (false, _) => {}
                }
            }
            if failed {
                tracing::warn!(
                    "revocation feed: the subscriber reconnected during the sync; syncing again"
                );
                drop(revocations);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            backoff = Duration::from_millis(100);
            revocations.set_synced(true);
            tracing::debug!("revocation feed: in sync");
            drop(revocations);
            loop {
                tokio::select! {
                    event = rx.recv() => match event {
                        Some((e, _)) if e != epoch => {}
                        Some((_, Event::Ended(sids))) => {
                            let Some(revocations) = self.revocations.upgrade() else { break 'resync };
                            insert(&revocations, &sids);
                        }
                        Some((_, Event::Trouble)) => continue 'resync,
                        None => break 'resync,
                    },
                    _ = announce.tick() => {
                        // The sync announced this feed's retention; a long
                        // run announces it again before its lease ends.
                        let Some(revocations) = self.revocations.upgrade() else { break 'resync };
                        if let Err(e) = self.catch_up(&revocations).await {
                            tracing::debug!(error = %e, "revocation feed: could not announce its retention");
                        }
                    }
                    _ = heartbeat.tick() => {
                        if self.revocations.strong_count() == 0 {
                            break 'resync;
                        }
                        if self.nodes.version() != version {
                            continue 'resync;
                        }
                        if let Err(e) = self.check(&subscribers).await {
                            tracing::warn!(error = %e, "revocation feed: a subscription is gone; syncing again");
                            // A slot that moved away unsubscribes its channel:
                            // the next plan needs the new owner.
                            self.nodes.refresh_soon();
                            continue 'resync;
                        }
                    }
                }
            }
        }
        for s in subscribers {
            let _ = s.client.quit().await;
        }
    }

    /// Subscribes every bucket's channel where its slot lives, then reads
    /// every bucket's log: a revocation is either published after its
    /// subscription took effect, or in the log when it is read.
    async fn sync(
        &self,
        revocations: &Revocations,
        epoch: u64,
        tx: &mpsc::UnboundedSender<(u64, Event)>,
    ) -> std::result::Result<Vec<Subscriber>, (Error, Vec<Subscriber>)> {
        let mut subscribers = Vec::new();
        let planned = match self.plan() {
            Ok(p) => p,
            Err(e) => return Err((e, subscribers)),
        };
        for (server, channels) in planned {
            let client = match self.nodes.settings().subscriber(server.clone()) {
                Ok(c) => c,
                Err(e) => return Err((e, subscribers)),
            };
            forward(&client, epoch, tx.clone());
            drop(client.connect());
            subscribers.push(Subscriber {
                client,
                server,
                channels,
                connection: None,
            });
        }
        if let Err(e) = self.subscribe(&mut subscribers).await {
            return Err((e, subscribers));
        }
        if let Err(e) = self.catch_up(revocations).await {
            return Err((e, subscribers));
        }
        // Every connection that subscribed still holds every channel: no
        // revocation was published to a connection that was not listening.
        if let Err(e) = self.check(&subscribers).await {
            return Err((e, subscribers));
        }
        Ok(subscribers)
    }

    /// Each subscriber's heartbeat: a `PING` on its connection (a silent
    /// network), and `CLIENT LIST ID` on another connection to its server,
    /// which must show the connection that subscribed, by its name, holding
    /// every channel (a reconnection, an unsubscription by Redis).
    async fn check(&self, subscribers: &[Subscriber]) -> Result<()> {
        let checks = subscribers.iter().map(|s| async move {
            let ping = within(self.timeout, s.client.ping::<Value>(None));
            let (ping, held) = tokio::join!(ping, self.holds_every_channel(s));
            ping.and(held)
        });
        for result in futures_util::future::join_all(checks).await {
            result?;
        }
        Ok(())
    }

    async fn holds_every_channel(&self, s: &Subscriber) -> Result<()> {
        let Some((id, name)) = &s.connection else {
            return Err(Error::unavailable("the subscriber never connected"));
        };
        let Some(client) = self.nodes.client_on(&s.server) else {
            return Err(Error::unavailable(
                "the subscriber's server no longer serves the store",
            ));
        };
        let args: Vec<Value> = vec!["LIST".into(), "ID".into(), (*id).into()];
        let reply: Value = within(self.timeout, client.custom(fred::cmd!("CLIENT"), args)).await?;
        let line = text(&reply).unwrap_or_default();
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        };
        if field("name") != Some(name.as_str()) {
            return Err(Error::unavailable(
                "the subscriber's connection was replaced",
            ));
        }
        let held: Option<usize> = field("ssub").and_then(|n| n.parse().ok());
        if held != Some(s.channels.len()) {
            return Err(Error::unavailable(format!(
                "the subscriber holds {} of its {} channels",
                held.map_or_else(|| "?".to_owned(), |n| n.to_string()),
                s.channels.len()
            )));
        }
        Ok(())
    }

    /// Which connection listens to which channels: one for all of them on a
    /// single server (or behind Sentinel), one per primary on a cluster.
    fn plan(&self) -> Result<Vec<(ServerConfig, Vec<String>)>> {
        match &*self.nodes {
            Nodes::Single { settings, .. } => {
                Ok(vec![(settings.config.server.clone(), self.logs.clone())])
            }
            Nodes::Cluster(cluster) => {
                let topology = cluster.topology();
                let mut by_node: Vec<(ServerConfig, Vec<String>)> = Vec::new();
                for log in &self.logs {
                    let Some(node) = topology.owner(redis_keyslot(log.as_bytes())) else {
                        cluster.refresh_soon();
                        return Err(Error::unavailable(
                            "a revocation bucket's slot is not served",
                        ));
                    };
                    let server = ServerConfig::Centralized {
                        server: node.server.clone(),
                    };
                    match by_node.iter_mut().find(|(s, _)| *s == server) {
                        Some((_, channels)) => channels.push(log.clone()),
                        None => by_node.push((server, vec![log.clone()])),
                    }
                }
                Ok(by_node)
            }
        }
    }

    async fn subscribe(&self, subscribers: &mut [Subscriber]) -> Result<()> {
        for s in subscribers {
            within(self.timeout, s.client.wait_for_connect()).await?;
            // Named and identified before the first SSUBSCRIBE, so that the
            // checks can tell this connection from one fred made after it.
            let name = format!("reissue-feed-{:016x}", rand::random::<u64>());
            let setname: Vec<Value> = vec!["SETNAME".into(), name.as_str().into()];
            let _: Value =
                within(self.timeout, s.client.custom(fred::cmd!("CLIENT"), setname)).await?;
            let id: Value = within(
                self.timeout,
                s.client
                    .custom(fred::cmd!("CLIENT"), vec![Value::from("ID")]),
            )
            .await?;
            let id = int(&id)? as i64;
            s.connection = Some((id, name));
            // One channel per SSUBSCRIBE: on a cluster a call may name one
            // slot only, and fred matches one reply frame to each call.
            for channel in &s.channels {
                within(self.timeout, s.client.ssubscribe(channel.as_str())).await?;
            }
        }
        Ok(())
    }

    /// How long the retention this feed announces holds without its feed.
    fn lease(&self) -> Duration {
        self.keep.max(MIN_LEASE)
    }

    /// Reads every bucket's log into `revocations`, and announces this feed's
    /// retention with each log.
    async fn catch_up(&self, revocations: &Revocations) -> Result<()> {
        let ms = |d: Duration| Value::from(d.as_millis().min(i64::MAX as u128) as i64);
        let (keep, lease) = (ms(self.keep), ms(self.lease()));
        let replies: Vec<Value> = match &*self.nodes {
            Nodes::Single { pool, .. } => {
                // One server holds every log: one script reads them all.
                let reply = within(
                    self.timeout,
                    self.scripts.catch_up.evalsha_with_reload(
                        pool.next(),
                        self.logs.clone(),
                        vec![keep, lease],
                    ),
                )
                .await?;
                vec![reply]
            }
            Nodes::Cluster(_) => {
                let mut tasks = tokio::task::JoinSet::new();
                for log in &self.logs {
                    let nodes = self.nodes.clone();
                    let scripts = self.scripts.clone();
                    let (log, args) = (log.clone(), vec![keep.clone(), lease.clone()]);
                    tasks.spawn(async move {
                        nodes.run(&scripts.catch_up, vec![log], args, None).await
                    });
                }
                let mut replies = Vec::with_capacity(self.logs.len());
                while let Some(done) = tasks.join_next().await {
                    let reply = done.map_err(|e| Error::Internal(e.to_string()))?;
                    replies.push(reply?);
                }
                replies
            }
        };
        for reply in replies {
            for pair in array(reply)?.chunks_exact(2) {
                let sid = text(&pair[0]).as_deref().and_then(SessionId::parse);
                if let (Some(sid), Ok(left)) = (sid, int(&pair[1])) {
                    revocations.insert_for(sid, Duration::from_millis(left));
                }
            }
        }
        Ok(())
    }
}

fn insert(revocations: &Revocations, sids: &str) {
    for sid in sids.split(' ').filter_map(SessionId::parse) {
        revocations.insert(sid);
    }
}
