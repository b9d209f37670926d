//! The revocation feed of one instance: a subscription to every bucket's
//! sharded revocation channel, and a catch-up from every bucket's log after
//! each (re)subscription. The instance counts as in sync only between a
//! completed catch-up and the first sign of trouble (a connection error, a
//! reconnection, a missed message, a heartbeat that went unanswered, a slot
//! that changed hands).

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
    channels: Vec<String>,
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
/// the sync that made it, until the subscriber closes.
fn forward(client: &Client, epoch: u64, tx: mpsc::UnboundedSender<(u64, Event)>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut messages = client.message_rx();
    let mut reconnects = client.reconnect_rx();
    let mut errors = client.error_rx();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                m = messages.recv() => match m {
                    Ok(m) => Event::Ended(m.value.as_string().unwrap_or_default()),
                    Err(RecvError::Lagged(_)) => Event::Trouble,
                    Err(RecvError::Closed) => break,
                },
                r = reconnects.recv() => match r {
                    Err(RecvError::Closed) => break,
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
            // Troubles from before this sync are moot: it already happened
            // after them. Revocations are kept.
            while let Ok((e, event)) = rx.try_recv() {
                if let (true, Event::Ended(sids)) = (e == epoch, event) {
                    insert(&revocations, &sids);
                }
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
                    _ = heartbeat.tick() => {
                        if self.revocations.strong_count() == 0 {
                            break 'resync;
                        }
                        if self.nodes.version() != version {
                            continue 'resync;
                        }
                        for s in &subscribers {
                            let ping = s.client.ping::<Value>(None);
                            if !matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(_))) {
                                continue 'resync;
                            }
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
            let client = match self.nodes.settings().subscriber(server) {
                Ok(c) => c,
                Err(e) => return Err((e, subscribers)),
            };
            forward(&client, epoch, tx.clone());
            drop(client.connect());
            subscribers.push(Subscriber { client, channels });
        }
        if let Err(e) = self.subscribe(&subscribers).await {
            return Err((e, subscribers));
        }
        if let Err(e) = self.catch_up(revocations).await {
            return Err((e, subscribers));
        }
        Ok(subscribers)
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

    async fn subscribe(&self, subscribers: &[Subscriber]) -> Result<()> {
        for s in subscribers {
            within(self.timeout, s.client.wait_for_connect()).await?;
            // One channel per SSUBSCRIBE: on a cluster a call may name one
            // slot only, and fred matches one reply frame to each call.
            for channel in &s.channels {
                within(self.timeout, s.client.ssubscribe(channel.as_str())).await?;
            }
        }
        Ok(())
    }

    async fn catch_up(&self, revocations: &Revocations) -> Result<()> {
        let keep = Value::from(self.keep.as_millis().min(i64::MAX as u128) as i64);
        let replies: Vec<Value> = match &*self.nodes {
            Nodes::Single { pool, .. } => {
                // One server holds every log: one script reads them all.
                let reply = within(
                    self.timeout,
                    self.scripts.catch_up.evalsha_with_reload(
                        pool.next(),
                        self.logs.clone(),
                        vec![keep],
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
                    let (log, keep) = (log.clone(), keep.clone());
                    tasks.spawn(async move {
                        nodes
                            .run(&scripts.catch_up, vec![log], vec![keep], None)
                            .await
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
