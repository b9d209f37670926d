//! The store itself: each [`SessionStore`], [`LoginThrottle`] and
//! [`RevocationFeed`] operation as one script call (`scripts.rs`), on the
//! keys of `layout.rs`, its reply read by `record.rs`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::{ClientLike, Pool};
use fred::types::Value;
use fred::types::scripts::Script;

use super::builder::Eviction;
use super::feed;
use super::nodes::{Nodes, StoreClock};
use super::record::{
    array, bad_reply, bytes, decode_client, encode_client, expiries, int, successor, text, time_ms,
};
use super::scripts::Scripts;
use crate::store::{
    Admission, AttemptEnd, Counter, Created, LoginAttempt, LoginThrottle, NewSession, ProofReplay,
    RenewRequest, Retention, RevocationFeed, RotateRequest, Rotation, SessionInfo, SessionStore,
    Successor,
};
use crate::verification::revocation::Revocations;
use crate::{Error, Result, SessionId};

/// A [`RefreshStore`](crate::store::RefreshStore) on Redis: one server, a
/// Sentinel-managed primary or a Redis Cluster, through fred connection
/// pools. Reconnects by itself; while Redis (or, on a cluster, the primary a
/// request needs) is unreachable or hung, each operation fails with
/// [`Error::Unavailable`] within the command timeout instead of hanging, and
/// a rotation or login that reaches Redis after its caller gave up is refused
/// by the script rather than executed late.
///
/// Redis must not evict keys (`maxmemory-policy noeviction`): an evicted
/// user key would hide sessions from "log out everywhere". The store checks
/// the policy when it connects (see
/// [`RedisStoreBuilder::require_noeviction`](super::RedisStoreBuilder::require_noeviction)).
///
/// ```no_run
/// # async fn run() -> reissue_core::Result<()> {
/// use reissue_core::store::RedisStore;
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .key_prefix("myapp:")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
pub struct RedisStore {
    pub(super) nodes: Arc<Nodes>,
    /// One server's pool, or on a cluster a pool to the first primary found.
    pub(super) first_pool: Pool,
    pub(super) prefix: String,
    pub(super) buckets: u16,
    pub(super) scripts: Arc<Scripts>,
    pub(super) command_timeout: Duration,
    /// Revocations that took effect on their primary but that fewer than
    /// `replica_acks` replicas confirmed in time.
    pub(super) unconfirmed: AtomicU64,
    pub(super) revoked_keep_ms: AtomicU64,
    pub(super) eviction: Eviction,
    pub(super) replica_acks: u32,
    pub(super) replica_wait: Duration,
    pub(super) acknowledged_rotations: bool,
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

impl RedisStore {
    fn revoked_keep(&self) -> i64 {
        match self.revoked_keep_ms.load(Ordering::Relaxed) {
            0 => Retention::default().revoked.as_millis() as i64,
            ms => ms.min(i64::MAX as u64) as i64,
        }
    }

    /// The latest store time at which a script may still act for a call
    /// starting now on the primary whose clock is `clock`: half the command
    /// timeout, so that a script that runs after its caller gave up (Redis
    /// hung, then resumed) does nothing.
    fn deadline(&self, clock: &StoreClock) -> i64 {
        let half = (self.command_timeout.as_millis() / 2).min(i64::MAX as u128) as i64;
        clock.now_ms() + half
    }

    /// Asks every primary its time (`TIME`), at connect.
    pub(super) async fn sync_clock(&self) -> Result<()> {
        let clocks = self.nodes.clocks();
        if clocks.is_empty() {
            return Err(Error::unavailable("no Redis primary"));
        }
        for (client, clock) in clocks {
            let t: Vec<i64> = client
                .custom(fred::cmd!("TIME"), Vec::<String>::new())
                .await
                .map_err(Error::unavailable)?;
            if let [secs, micros] = t.as_slice() {
                clock.learn((*secs as u64) * 1000 + (*micros as u64) / 1000);
            }
        }
        Ok(())
    }

    /// How many revocations since the store connected took effect on their
    /// primary without the replicas confirming them within the replica wait
    /// (a failover before a replica has them could undo them). Also counted
    /// by the metric `reissue_revocations_unconfirmed_total`.
    pub fn unconfirmed_revocations(&self) -> u64 {
        self.unconfirmed.load(Ordering::Relaxed)
    }

    /// Ends one session, acknowledged. `always_log`: record it in the
    /// revocation log even if it was gone already (a write for the `WAIT` to
    /// confirm, after a rotation that ended it). `true` if it was live.
    async fn end(
        &self,
        user_id: &str,
        sid: &SessionId,
        what: &'static str,
        always_log: bool,
    ) -> Result<bool> {
        let k = self.keys_of(user_id);
        let args = vec![
            sid.as_str().into(),
            self.revoked_keep().into(),
            Value::from(if always_log { "1" } else { "0" }),
        ];
        let n = self
            .run_acknowledged(
                what,
                &self.scripts.revoke,
                vec![k.user, k.log.clone()],
                args,
            )
            .await?;
        let n = int(&n)?;
        let live = n == 1;
        // 2: ended earlier and still in the log. A retry of a call that
        // failed while waiting (or an ending racing another) waits again.
        if n > 0 || always_log {
            self.confirm_ended(&k.log, std::slice::from_ref(sid))
                .await?;
        }
        Ok(live)
    }

    fn report_unconfirmed(&self, what: &'static str) {
        self.unconfirmed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("reissue_revocations_unconfirmed_total", "op" => what).increment(1);
        tracing::warn!(
            op = what,
            replicas = self.replica_acks,
            wait_ms = self.replica_wait.as_millis() as u64,
            "a revocation took effect on the Redis primary, but no replica confirmed it in time: \
             a failover now could undo it"
        );
    }

    async fn run(&self, script: &Script, keys: Vec<String>, args: Vec<Value>) -> Result<Value> {
        self.nodes.run(script, keys, args, None).await
    }

    /// Runs a rotation script, waiting for the replicas if the store was
    /// built so; the flag: whether they confirmed it.
    async fn run_rotation(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<(Value, bool)> {
        let acks = (self.acknowledged_rotations && self.replica_acks > 0)
            .then_some((self.replica_acks, self.replica_wait));
        self.nodes.run_confirmed(script, keys, args, acks).await
    }

    /// Runs a script whose effects must survive a failover: it answers once
    /// `replica_acks` replicas have them, or once the replica wait is over
    /// (then reported as unconfirmed, never failed: it is in effect on the
    /// primary).
    async fn run_acknowledged(
        &self,
        what: &'static str,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Value> {
        let acks = (self.replica_acks > 0).then_some((self.replica_acks, self.replica_wait));
        let (value, confirmed) = self.nodes.run_confirmed(script, keys, args, acks).await?;
        if !confirmed {
            self.report_unconfirmed(what);
        }
        Ok(value)
    }
}

/// The `{-1, now}` of a script that found itself past its deadline: the
/// store's time, if so.
fn too_late_reply(reply: &[Value]) -> Option<u64> {
    match reply {
        [Value::Integer(-1), now] => int(now).ok(),
        _ => None,
    }
}

fn too_late() -> Error {
    Error::unavailable("Redis ran the command after its deadline (it was hung)")
}

fn ms_arg(d: Duration) -> Value {
    Value::from(d.as_millis().min(i64::MAX as u128) as i64)
}

fn sids(values: &[Value]) -> Vec<SessionId> {
    values
        .iter()
        .filter_map(|v| text(v).as_deref().and_then(SessionId::parse))
        .collect()
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, s: &NewSession) -> Result<Created> {
        let k = self.keys_of(&s.user_id);
        let clock = self.nodes.clock_for(&k.user);
        let country = s.client.country.map(|c| c.to_string()).unwrap_or_default();
        let args: Vec<Value> = vec![
            s.sid.as_str().into(),
            ms_arg(s.max_age),
            ms_arg(s.idle_ttl),
            (s.max_sessions.clamp(1, i64::MAX as usize) as i64).into(),
            encode_client(&s.client).as_slice().into(),
            country.into(),
            self.deadline(&clock).into(),
            self.revoked_keep().into(),
        ];
        let log = k.log.clone();
        let reply = array(
            self.run(&self.scripts.create, vec![k.user, k.log], args)
                .await?,
        )?;
        if let Some(now) = too_late_reply(&reply) {
            clock.learn(now);
            return Err(too_late());
        }
        let [now, exp, abs, evicted @ ..] = reply.as_slice() else {
            return Err(bad_reply());
        };
        let now = int(now)?;
        clock.learn(now);
        let evicted = sids(evicted);
        self.confirm_ended(&log, &evicted).await?;
        Ok(Created {
            first: Successor {
                generation: 1,
                rotated_at_ms: now,
                expires_at_ms: int(exp)?,
                absolute_expiry_ms: int(abs)?,
                login_country: s.client.country,
            },
            evicted,
        })
    }

    async fn rotate(&self, r: &RotateRequest<'_>) -> Result<Rotation> {
        let k = self.keys_of(r.user_id);
        let clock = self.nodes.clock_for(&k.user);
        let request_id: u32 = rand::random();
        let clamp = |n: u64| n.min(1 << 53); // Lua's numbers are doubles
        let ms = |d: Duration| clamp(d.as_millis().min(u128::from(u64::MAX)) as u64);
        let numbers: Vec<u8> = [
            clamp(r.generation),
            // No cap: 2^53 ms, longer than any session may live.
            r.grace.map_or(1 << 53, ms),
            ms(r.idle_ttl),
            u64::from(request_id),
            self.deadline(&clock).max(0) as u64,
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
        let log = k.log.clone();
        let (reply, confirmed) = self
            .run_rotation(&self.scripts.rotate, vec![k.user, k.log], args)
            .await?;
        match reply {
            Value::Array(reply) => match too_late_reply(&reply) {
                Some(now) => {
                    clock.learn(now);
                    Err(too_late())
                }
                None => Err(bad_reply()),
            },
            Value::Integer(0) => Ok(Rotation::NotFound),
            Value::Integer(3) => {
                // The session was revoked as theft: that must survive a
                // failover too. The rotation ran on a connection whose WAIT
                // would count nothing; the revocation runs again on the
                // acknowledged path, and always writes (it records the
                // session in the log again), so that its WAIT confirms the
                // rotation's writes too, which the replication stream carries
                // before it. It also redoes the revocation, should the
                // primary have changed in between.
                if self.replica_acks > 0 && !(self.acknowledged_rotations && confirmed) {
                    self.end(r.user_id, r.sid, "reuse", true).await?;
                } else {
                    self.confirm_ended(&log, std::slice::from_ref(r.sid))
                        .await?;
                }
                Ok(Rotation::Reused)
            }
            Value::Bytes(_) | Value::String(_) if !confirmed => Err(Error::unavailable(
                "no Redis replica confirmed the rotation in time",
            )),
            Value::Bytes(_) | Value::String(_) => match successor(bytes(&reply))? {
                (1, s) => {
                    clock.learn(s.rotated_at_ms);
                    Ok(Rotation::Rotated(s))
                }
                (2, s) => Ok(Rotation::Replayed(s)),
                _ => Err(bad_reply()),
            },
            _ => Err(bad_reply()),
        }
    }

    async fn renew(&self, r: &RenewRequest<'_>) -> Result<Option<Successor>> {
        // rotate.lua with generation 0, which stands for the current one:
        // the same step as a rotation of the current token, without one.
        let rotation =
            RotateRequest::new(r.user_id, r.sid, 0, Duration::ZERO, r.idle_ttl, r.client);
        match self.rotate(&rotation).await? {
            Rotation::Rotated(s) => Ok(Some(s)),
            Rotation::NotFound => Ok(None),
            _ => Err(bad_reply()),
        }
    }

    async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        self.end(user_id, sid, "revoke", false).await
    }

    async fn revoke_all(&self, user_id: &str) -> Result<Vec<SessionId>> {
        let k = self.keys_of(user_id);
        let args = vec![self.revoked_keep().into()];
        let ended = self
            .run_acknowledged(
                "revoke_all",
                &self.scripts.revoke_all,
                vec![k.user, k.log.clone()],
                args,
            )
            .await?;
        let ended = sids(&array(ended)?);
        self.confirm_ended(&k.log, &ended).await?;
        Ok(ended)
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        let k = self.keys_of(user_id);
        let flat = array(self.run(&self.scripts.list, vec![k.user], vec![]).await?)?;
        flat.chunks_exact(5)
            .filter_map(|c| {
                let sid = text(&c[0]).as_deref().and_then(SessionId::parse)?;
                Some((sid, c))
            })
            .map(|(sid, c)| {
                Ok(SessionInfo {
                    sid,
                    created_at: int(&c[1])? / 1_000_000,
                    last_used_at: int(&c[2])? / 1000,
                    client: decode_client(bytes(&c[4]), bytes(&c[3])).ok_or_else(bad_reply)?,
                })
            })
            .collect()
    }

    async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let live = self.are_live(&[(user_id, sid)]).await?;
        live.first().copied().ok_or_else(bad_reply)
    }

    /// One round trip for all of them on one server; on a cluster, one per
    /// bucket, all at once: the users' keys and the store's time, read
    /// without a script (`Nodes::time_and_get`), the records found here.
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
                .map(|&i| self.keys_of(sessions[i].0).user)
                .collect();
            self.nodes.time_and_get(keys)
        };
        let replies = futures_util::future::try_join_all(groups.iter().map(|g| read(g))).await?;
        let mut live = vec![false; sessions.len()];
        for (group, (time, keys)) in groups.iter().zip(replies) {
            let now = time_ms(&time)?;
            if keys.len() != group.len() {
                return Err(bad_reply());
            }
            for (&i, key) in group.iter().zip(&keys) {
                live[i] = expiries(bytes(key), sessions[i].1)
                    .is_some_and(|(absolute, idle)| now < absolute && now < idle);
            }
        }
        Ok(live)
    }
}

impl RedisStore {
    /// An attempt's counters grouped by slot (a script touches one): the
    /// account's, and the network's across accounts. Each group is the keys
    /// and their limits.
    fn counter_groups(&self, a: &LoginAttempt<'_>) -> Vec<(Vec<String>, Vec<Value>)> {
        let mut groups: Vec<(Vec<String>, Vec<Value>)> = Vec::new();
        let mut network = None;
        for (counter, limit) in a.counters() {
            let entry = (self.counter_key(&counter), Value::from(i64::from(limit)));
            if matches!(counter, Counter::Network(_)) {
                network = Some(entry);
            } else {
                match groups.first_mut() {
                    Some((keys, limits)) => {
                        keys.push(entry.0);
                        limits.push(entry.1);
                    }
                    None => groups.push((vec![entry.0], vec![entry.1])),
                }
            }
        }
        groups.extend(network.map(|(k, l)| (vec![k], vec![l])));
        groups
    }

    async fn end_group(&self, keys: Vec<String>, clear: bool) -> Result<()> {
        let how = Value::from(if clear { "clear" } else { "undo" });
        self.run(&self.scripts.end_login, keys, vec![how]).await?;
        Ok(())
    }
}

/// The account's counters and the network's live in two slots: both are
/// counted at once (one round trip of latency), and when one refuses, the
/// attempt is taken back from the other, so a refused attempt counts nowhere.
#[async_trait]
impl LoginThrottle for RedisStore {
    async fn begin_login(&self, a: &LoginAttempt<'_>) -> Result<Admission> {
        let window = ms_arg(a.window.max(Duration::from_millis(1)));
        let groups = self.counter_groups(a);
        let begin = |(keys, limits): &(Vec<String>, Vec<Value>)| {
            let mut args = limits.clone();
            args.push(window.clone());
            self.run(&self.scripts.begin_login, keys.clone(), args)
        };
        let replies = futures_util::future::join_all(groups.iter().map(begin)).await;
        let mut admitted = Vec::new();
        let mut outcome = Ok(Admission::Allowed);
        for (group, reply) in groups.iter().zip(replies) {
            let answer = reply.and_then(array).and_then(|r| match r.as_slice() {
                [allowed, _] if int(allowed)? == 1 => Ok(None),
                [_, pttl] => Ok(Some(int(pttl)?.div_ceil(1000).max(1))),
                _ => Err(bad_reply()),
            });
            match answer {
                Ok(None) => admitted.push(group.0.clone()),
                Ok(Some(retry_after)) => {
                    if matches!(outcome, Ok(Admission::Allowed)) {
                        outcome = Ok(Admission::Throttled { retry_after });
                    }
                }
                Err(e) => outcome = Err(e),
            }
        }
        if !matches!(outcome, Ok(Admission::Allowed)) {
            for keys in admitted {
                if let Err(e) = self.end_group(keys, false).await {
                    tracing::warn!(error = %e, "could not take back a refused login attempt");
                }
            }
        }
        outcome
    }

    async fn end_login(&self, a: &LoginAttempt<'_>, end: AttemptEnd) -> Result<()> {
        let succeeded = matches!(end, AttemptEnd::Succeeded);
        let ends = self
            .counter_groups(a)
            .into_iter()
            .enumerate()
            .map(|(i, (keys, _))| self.end_group(keys, succeeded && i == 0));
        futures_util::future::try_join_all(ends).await?;
        Ok(())
    }
}

#[async_trait]
impl ProofReplay for RedisStore {
    async fn first_use(&self, user_id: &str, proof: &str, ttl: Duration) -> Result<bool> {
        let keys = vec![self.proof_key(user_id, proof)];
        let reply = self
            .run(
                &self.scripts.first_use,
                keys,
                vec![ms_arg(ttl.max(Duration::from_millis(1)))],
            )
            .await?;
        Ok(int(&reply)? == 1)
    }
}

impl RevocationFeed for RedisStore {
    fn retain(&self, retention: Retention) {
        let ms = retention.revoked.as_millis().min(u64::MAX as u128) as u64;
        self.revoked_keep_ms.fetch_max(ms, Ordering::Relaxed);
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
            lease: revocations.lease().map(|term| feed::Lease {
                id: format!("{:016x}", rand::random::<u64>()),
                member: Default::default(),
                key: self.lease_key(),
                term,
                confirm: (self.replica_acks > 0).then_some((self.replica_acks, self.replica_wait)),
                ack_failed: Default::default(),
            }),
        };
        runtime.spawn(feed.run());
        Ok(())
    }
}
