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
//!
//! In strict mode the feed also holds a lease (`lua/lease.lua`) while it is
//! in sync, and acknowledges every revocation it applies (`lua/ack.lua`): a
//! call that ends sessions waits for the acknowledgements of every lease
//! holder (`leases.rs`). A new grant (the first, or one after the lease
//! lapsed in the store) is taken after the subscriptions and before the
//! catch-up, and counts only once the catch-up is done: a revocation is then
//! either seen by its caller among the holders, or in the logs the catch-up
//! reads. The lease counts from the moment its renewal was sent, by this
//! process's monotonic clock, less a margin; a renewal that does not find
//! the lease live in the store is a new grant.

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
use crate::verification::revocation::{Revocations, monotonic_ms};
use crate::{Error, Result, SessionId};

/// How often the feed checks that its subscriptions still answer.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// The shortest lease of a feed's announced retention (`<log>:keep`, see
/// catch_up.lua); the lease is at least the retention itself, and the feed
/// announces again every quarter of it.
const MIN_LEASE: Duration = Duration::from_secs(3600);

/// The shortest pause between two renewals of a lease.
const MIN_RENEWAL: Duration = Duration::from_millis(10);

pub(super) struct Feed {
    pub(super) nodes: Arc<Nodes>,
    pub(super) scripts: Arc<Scripts>,
    /// Every bucket's log key, which is also its channel.
    pub(super) logs: Vec<String>,
    pub(super) keep: Duration,
    pub(super) timeout: Duration,
    pub(super) revocations: Weak<Revocations>,
    /// Strict mode: the lease this feed holds.
    pub(super) lease: Option<Lease>,
}

/// A feed's lease on the revocation logs (strict mode).
pub(super) struct Lease {
    /// This feed's instance id, random.
    pub(super) id: String,
    /// Its member in the holders and its mark in the acknowledgements: the
    /// id and the sync that took the grant. A new name per grant, so that
    /// giving up an earlier grant, however late that reaches the store,
    /// never removes a later one.
    pub(super) member: std::sync::Mutex<String>,
    /// The holders' key.
    pub(super) key: String,
    pub(super) term: Duration,
    /// Replicas that must have a grant or renewal before it counts, and how
    /// long to wait for them: a failover must not lose a lease that counts.
    pub(super) confirm: Option<(u32, Duration)>,
    /// Set when an acknowledgement could not be written: the feed gives its
    /// lease up and syncs again rather than make every logout wait for it.
    pub(super) ack_failed: Arc<std::sync::atomic::AtomicBool>,
}

impl Lease {
    /// How long before its end in the store the instance stops counting on
    /// its lease: the clocks' drift and the store clock's jitter.
    fn margin(&self) -> Duration {
        self.term / 8
    }

    fn member(&self) -> String {
        self.member
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The local deadline of a grant or renewal sent at `sent_ms`.
    fn deadline(&self, sent_ms: u64) -> u64 {
        sent_ms + (self.term - self.margin()).as_millis() as u64
    }
}

/// How long acknowledgements are kept, and how recent a revocation the
/// catch-up of a new grant acknowledges: longer than any caller waits
/// (`leases.rs`).
pub(super) fn ack_keep(term: Duration) -> Duration {
    (term * 4).max(super::leases::ACK_WAIT_CAP * 2)
}

enum Event {
    /// Sessions ended, and the channel (the log) they came on.
    Ended(String, String),
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
                    Ok(m) => Event::Ended(
                        m.channel.to_string(),
                        m.value.as_string().unwrap_or_default(),
                    ),
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
        let mut renew = tokio::time::interval(
            self.lease
                .as_ref()
                .map_or(Duration::from_secs(3600), |l| (l.term / 4).max(MIN_RENEWAL)),
        );
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut held = false;
        'resync: while let Some(revocations) = self.revocations.upgrade() {
            revocations.set_synced(false);
            revocations.lapse_lease();
            if std::mem::take(&mut held) {
                self.give_up_lease();
            }
            for old in subscribers.drain(..) {
                tokio::spawn(async move {
                    let _ = old.client.quit().await;
                });
            }
            epoch += 1;
            let version = self.nodes.version();
            // A grant may reach the store even if the sync then fails.
            held = self.lease.is_some();
            let (granted_ms, recent) = match self.sync(&revocations, epoch, &tx).await {
                Ok((subs, granted_ms, recent)) => {
                    subscribers = subs;
                    (granted_ms, recent)
                }
                Err((e, subs)) => {
                    subscribers = subs;
                    // No caller should wait out the backoff for this grant.
                    if std::mem::take(&mut held) {
                        self.give_up_lease();
                    }
                    // A primary that does not answer may have been replaced:
                    // an idle instance must not wait for a request to find out.
                    self.nodes.refresh_soon();
                    tracing::warn!(error = %e, "revocation feed: not in sync; checking the store per request");
                    drop(revocations);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            // Troubles of earlier syncs are moot: this one happened after
            // them. A trouble of this one (a reconnection in the middle of its
            // SSUBSCRIBEs, an error) fails it, even though every call
            // answered: fred resent them on a new connection, which lacks the
            // channels subscribed before. Revocations are kept.
            let mut failed = false;
            while let Ok((e, event)) = rx.try_recv() {
                match (e == epoch, event) {
                    (true, Event::Ended(log, sids)) => self.apply(&revocations, log, &sids),
                    (true, Event::Trouble) => failed = true,
                    (false, _) => {}
                }
            }
            if failed {
                tracing::warn!(
                    "revocation feed: the subscriber reconnected during the sync; syncing again"
                );
                if std::mem::take(&mut held) {
                    self.give_up_lease();
                }
                drop(revocations);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            if let (Some(lease), Some(sent_ms)) = (&self.lease, granted_ms) {
                // Recent revocations caught up rather than heard: their
                // callers may be waiting for this new holder.
                if let Err(e) = self.acknowledge(recent).await {
                    tracing::debug!(error = %e, "revocation feed: could not acknowledge the catch-up");
                }
                revocations.hold_lease_until(lease.deadline(sent_ms));
            }
            backoff = Duration::from_millis(100);
            revocations.set_synced(true);
            tracing::debug!("revocation feed: in sync");
            drop(revocations);
            loop {
                tokio::select! {
                    event = rx.recv() => match event {
                        Some((e, _)) if e != epoch => {}
                        Some((_, Event::Ended(log, sids))) => {
                            let Some(revocations) = self.revocations.upgrade() else { break 'resync };
                            self.apply(&revocations, log, &sids);
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
                    _ = renew.tick(), if self.lease.is_some() => {
                        let Some(lease) = &self.lease else { continue };
                        let Some(revocations) = self.revocations.upgrade() else { break 'resync };
                        if lease.ack_failed.swap(false, std::sync::atomic::Ordering::AcqRel) {
                            tracing::warn!("revocation feed: an acknowledgement failed; giving the lease up and syncing again");
                            continue 'resync;
                        }
                        let sent_ms = monotonic_ms();
                        match self.lease_call(true).await {
                            Ok((true, true)) => revocations.hold_lease_until(lease.deadline(sent_ms)),
                            // It lapsed in the store: callers stopped waiting
                            // for this instance, which must catch up again.
                            Ok((false, _)) => {
                                tracing::warn!("revocation feed: the lease lapsed in the store; syncing again");
                                continue 'resync;
                            }
                            Ok((true, false)) => tracing::warn!(
                                "revocation feed: no replica confirmed the lease renewal in time; it does not count"
                            ),
                            Err(e) => tracing::warn!(error = %e, "revocation feed: could not renew the lease"),
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
        if held {
            self.give_up_lease();
        }
        for s in subscribers {
            let _ = s.client.quit().await;
        }
    }

    /// Applies what a channel said, and acknowledges it if the feed holds
    /// leases (in a task of its own: the feed goes on reading).
    fn apply(&self, revocations: &Revocations, log: String, sids: &str) {
        insert(revocations, sids);
        if self.lease.is_none() {
            return;
        }
        let ended: Vec<SessionId> = sids.split(' ').filter_map(SessionId::parse).collect();
        if ended.is_empty() {
            return;
        }
        let ack = self.acknowledgement(vec![(log, ended)]);
        tokio::spawn(ack);
    }

    /// Acknowledges `ended` sessions, by log.
    async fn acknowledge(&self, ended: Vec<(String, Vec<SessionId>)>) -> Result<()> {
        self.acknowledgement(ended).await;
        match &self.lease {
            Some(lease) if lease.ack_failed.load(std::sync::atomic::Ordering::Acquire) => {
                Err(Error::unavailable("an acknowledgement failed"))
            }
            _ => Ok(()),
        }
    }

    fn acknowledgement(
        &self,
        ended: Vec<(String, Vec<SessionId>)>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let nodes = self.nodes.clone();
        let scripts = self.scripts.clone();
        let timeout = self.timeout;
        let lease = self.lease.as_ref().map(|l| {
            (
                l.member(),
                ack_keep(l.term).as_millis() as i64,
                l.ack_failed.clone(),
            )
        });
        async move {
            let Some((id, keep_ms, failed)) = lease else {
                return;
            };
            let calls = ended
                .into_iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(log, sids)| {
                    let keys: Vec<String> = sids.iter().map(|s| ack_key(&log, s)).collect();
                    let args: Vec<Value> = vec![id.as_str().into(), keep_ms.into()];
                    let (nodes, scripts) = (nodes.clone(), scripts.clone());
                    async move {
                        tokio::time::timeout(timeout, nodes.run(&scripts.ack, keys, args, None))
                            .await
                            .map_err(|_| Error::unavailable("timed out"))
                            .and_then(|r| r)
                    }
                });
            for result in futures_util::future::join_all(calls).await {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "revocation feed: an acknowledgement failed");
                    failed.store(true, std::sync::atomic::Ordering::Release);
                }
            }
        }
    }

    /// Grants or renews (`true`) the lease, or gives it up. The answer:
    /// whether it was live in the store before, and whether the replicas
    /// confirmed the call.
    async fn lease_call(&self, renew: bool) -> Result<(bool, bool)> {
        let Some(lease) = &self.lease else {
            return Ok((false, true));
        };
        let args: Vec<Value> = vec![
            lease.member().into(),
            (lease.term.as_millis() as i64).into(),
            Value::from(if renew { "1" } else { "0" }),
        ];
        let confirm = if renew { lease.confirm } else { None };
        let wait = confirm.map_or(Duration::ZERO, |(_, w)| w);
        let call =
            self.nodes
                .run_confirmed(&self.scripts.lease, vec![lease.key.clone()], args, confirm);
        let (reply, confirmed) = tokio::time::timeout(self.timeout + wait, call)
            .await
            .map_err(|_| Error::unavailable("timed out"))??;
        Ok((int(&reply)? == 1, confirmed))
    }

    /// Removes this feed's lease from the holders, so that no call waits
    /// for it; if that fails, callers wait until it runs out.
    fn give_up_lease(&self) {
        if self.lease.is_none() {
            return;
        }
        let this = Self {
            nodes: self.nodes.clone(),
            scripts: self.scripts.clone(),
            logs: Vec::new(),
            keep: self.keep,
            timeout: self.timeout,
            revocations: Weak::new(),
            lease: self.lease.as_ref().map(|l| Lease {
                id: l.id.clone(),
                member: std::sync::Mutex::new(l.member()),
                key: l.key.clone(),
                term: l.term,
                confirm: None,
                ack_failed: l.ack_failed.clone(),
            }),
        };
        tokio::spawn(async move {
            if let Err(e) = this.lease_call(false).await {
                tracing::debug!(error = %e, "revocation feed: could not give the lease up");
            }
        });
    }

    /// Subscribes every bucket's channel where its slot lives, then reads
    /// every bucket's log: a revocation is either published after its
    /// subscription took effect, or in the log when it is read.
    async fn sync(
        &self,
        revocations: &Revocations,
        epoch: u64,
        tx: &mpsc::UnboundedSender<(u64, Event)>,
    ) -> std::result::Result<Synced, (Error, Vec<Subscriber>)> {
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
        // The grant after the subscriptions, before the catch-up: a caller
        // that read the holders before it ended its sessions before this
        // catch-up reads the logs.
        let mut granted_ms = None;
        if let Some(lease) = &self.lease {
            // A feed that cannot show its subscriptions (a Redis whose ACL
            // refuses `CLIENT`) never syncs: it takes no grant either, which
            // callers would wait for.
            if let Err(e) = self.check(&subscribers).await {
                return Err((e, subscribers));
            }
            *lease.member.lock().unwrap_or_else(|p| p.into_inner()) =
                format!("{}.{epoch}", lease.id);
            let sent_ms = monotonic_ms();
            match self.lease_call(true).await {
                Ok((_, true)) => granted_ms = Some(sent_ms),
                Ok((_, false)) => {
                    return Err((
                        Error::unavailable("no replica confirmed the lease in time"),
                        subscribers,
                    ));
                }
                Err(e) => return Err((e, subscribers)),
            }
        }
        let recent = match self.catch_up(revocations).await {
            Ok(recent) => recent,
            Err(e) => return Err((e, subscribers)),
        };
        // Every connection that subscribed still holds every channel: no
        // revocation was published to a connection that was not listening.
        if let Err(e) = self.check(&subscribers).await {
            return Err((e, subscribers));
        }
        Ok((subscribers, granted_ms, recent))
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
    /// retention with each log. Returns the sessions that ended recently
    /// enough that a caller may still wait for their acknowledgement, by log.
    async fn catch_up(&self, revocations: &Revocations) -> Result<Vec<(String, Vec<SessionId>)>> {
        let ms = |d: Duration| Value::from(d.as_millis().min(i64::MAX as u128) as i64);
        let (keep, lease) = (ms(self.keep), ms(self.lease()));
        let replies: Vec<(Vec<String>, Value)> = match &*self.nodes {
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
                vec![(self.logs.clone(), reply)]
            }
            Nodes::Cluster(_) => {
                let mut tasks = tokio::task::JoinSet::new();
                for log in &self.logs {
                    let nodes = self.nodes.clone();
                    let scripts = self.scripts.clone();
                    let (log, args) = (log.clone(), vec![keep.clone(), lease.clone()]);
                    tasks.spawn(async move {
                        let reply = nodes
                            .run(&scripts.catch_up, vec![log.clone()], args, None)
                            .await;
                        reply.map(|r| (vec![log], r))
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
        let ack_window = self
            .lease
            .as_ref()
            .map_or(0, |l| ack_keep(l.term).as_millis() as u64);
        let keep_ms = self.keep.as_millis() as u64;
        let mut recent = Vec::new();
        for (logs, reply) in replies {
            for (log, entries) in logs.into_iter().zip(array(reply)?) {
                let mut these = Vec::new();
                for pair in array(entries)?.chunks_exact(2) {
                    let sid = text(&pair[0]).as_deref().and_then(SessionId::parse);
                    if let (Some(sid), Ok(left)) = (sid, int(&pair[1])) {
                        if keep_ms.saturating_sub(left) < ack_window {
                            these.push(sid.clone());
                        }
                        revocations.insert_for(sid, Duration::from_millis(left));
                    }
                }
                if !these.is_empty() {
                    recent.push((log, these));
                }
            }
        }
        Ok(recent)
    }
}

/// What a sync hands back: its subscribers, when it sent its lease grant
/// (strict mode), and the recent revocations it caught up.
type Synced = (Vec<Subscriber>, Option<u64>, Vec<(String, Vec<SessionId>)>);

/// The set in which instances acknowledge the ending of `sid`, next to its
/// bucket's log.
pub(super) fn ack_key(log: &str, sid: &SessionId) -> String {
    format!("{log}:ak:{}", sid.as_str())
}

fn insert(revocations: &Revocations, sids: &str) {
    for sid in sids.split(' ').filter_map(SessionId::parse) {
        revocations.insert(sid);
    }
}
