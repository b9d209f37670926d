//! The in-process store: the same semantics as Redis (TTLs, atomic rotation),
//! for development, tests and single-process deployments.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    Admission, AttemptEnd, ClientMeta, Counter, Created, LoginAttempt, LoginThrottle, NewSession,
    ProofReplay, RenewRequest, Retention, RevocationFeed, RotateRequest, Rotation, SessionInfo,
    SessionStore, Successor, idle_expiry,
};
use crate::clock::now_millis;
use crate::verification::revocation::Revocations;
use crate::{Country, Result, SessionId};

#[derive(Debug, Clone)]
struct Entry {
    generation: u64,
    rotated_at_ms: u64,
    absolute_expiry_ms: u64,
    created_ms: u64,
    /// Orders logins of the same millisecond (Redis orders by microseconds).
    created_seq: u64,
    last_used_ms: u64,
    /// When the idle lifetime runs out (the Redis key's TTL).
    expires_ms: u64,
    login_country: Option<Country>,
    client: ClientMeta,
}

impl Entry {
    fn successor(&self) -> Successor {
        Successor {
            generation: self.generation,
            rotated_at_ms: self.rotated_at_ms,
            expires_at_ms: self.expires_ms,
            absolute_expiry_ms: self.absolute_expiry_ms,
            login_country: self.login_country,
        }
    }
}

/// The sessions' maps hash with foldhash: strict mode looks a session up on
/// every request. (Their keys are user ids and random session ids; the login
/// counters, keyed by what clients send, keep std's SipHash.)
type Fast<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

#[derive(Debug, Default)]
struct State {
    users: Fast<String, Fast<SessionId, Entry>>,
    /// Login-attempt counters: (count, reset time), by [`key`].
    attempts: HashMap<String, (u32, u64)>,
    /// DPoP proofs accepted: until when each is remembered, by its digest.
    proofs: HashMap<String, u64>,
    /// The instances following revocations (instant mode).
    followers: Vec<Weak<Revocations>>,
}

impl State {
    /// The user's sessions with the expired ones dropped, as Redis TTLs would.
    fn sessions(&mut self, user_id: &str, now: u64) -> Option<&mut Fast<SessionId, Entry>> {
        let sessions = self.users.get_mut(user_id)?;
        sessions.retain(|_, e| e.expires_ms > now);
        if sessions.is_empty() {
            self.users.remove(user_id);
            return None;
        }
        self.users.get_mut(user_id)
    }

    fn sweep(&mut self, now: u64) {
        self.users.retain(|_, s| {
            s.retain(|_, e| e.expires_ms > now);
            !s.is_empty()
        });
        self.attempts.retain(|_, (_, until)| *until > now);
        self.proofs.retain(|_, until| *until > now);
        self.followers.retain(|f| f.strong_count() > 0);
    }

    /// Tells every follower that these sessions ended: in one process, the
    /// revocation is known everywhere before the revoking call returns.
    fn ended<'a>(&self, sids: impl IntoIterator<Item = &'a SessionId>) {
        let followers: Vec<Arc<Revocations>> =
            self.followers.iter().filter_map(Weak::upgrade).collect();
        if followers.is_empty() {
            return;
        }
        for sid in sids {
            for f in &followers {
                f.insert(sid.clone());
            }
        }
    }

    fn counter(&mut self, key: String, now: u64) -> &mut (u32, u64) {
        let slot = self.attempts.entry(key).or_insert((0, 0));
        if slot.1 <= now {
            *slot = (0, 0);
        }
        slot
    }
}

/// A counter's key, one namespace per kind.
fn key(counter: &Counter<'_>) -> String {
    match counter {
        Counter::AccountNetwork { account, network } => format!("p\0{account}\0{network}"),
        Counter::Account(account) => format!("a\0{account}"),
        Counter::Network(network) => format!("n\0{network}"),
        Counter::Device { account, device } => format!("d\0{account}\0{device}"),
    }
}

fn secs_until(until: u64, now: u64) -> u64 {
    until.saturating_sub(now).div_ceil(1000).max(1)
}

/// An in-process [`RefreshStore`](super::RefreshStore). Sessions vanish with the process, and are
/// not shared between instances: use [`RedisStore`] (feature `redis`) for more
/// than one.
#[cfg_attr(feature = "redis", doc = "", doc = "[`RedisStore`]: super::RedisStore")]
#[cfg_attr(
    not(feature = "redis"),
    doc = "",
    doc = "[`RedisStore`]: https://docs.rs/reissue-core/0.1.0/reissue_core/store/struct.RedisStore.html"
)]
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    ops: AtomicU64,
    clock: StoreClock,
}

/// The store's clock: the system's unless one was given.
#[derive(Default)]
struct StoreClock(Option<crate::clock::Clock>);

impl std::fmt::Debug for StoreClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "injected"
        } else {
            "system"
        })
    }
}

impl MemoryStore {
    /// An empty store.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use reissue_core::store::{MemoryStore, RefreshStore};
    ///
    /// // What `Reissue::builder` takes.
    /// let store: Arc<dyn RefreshStore> = Arc::new(MemoryStore::new());
    /// # let _ = store;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping time by `now_ms` (Unix milliseconds) instead
    /// of the system clock: for tests of what happens hours later (a retry
    /// after a phone slept) without waiting hours.
    pub fn with_clock(now_ms: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self {
            clock: StoreClock(Some(Arc::new(now_ms))),
            ..Self::default()
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State, u64) -> T) -> T {
        let now = self.clock.0.as_ref().map_or_else(now_millis, |c| c());
        // A panic elsewhere cannot leave the map half-updated (each closure is
        // all-or-nothing), so a poisoned lock is safe to keep using.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if self
            .ops
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(4096)
        {
            state.sweep(now);
        }
        f(&mut state, now)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, s: &NewSession) -> Result<Created> {
        Ok(self.with(|state, now| {
            let absolute_expiry_ms = now.saturating_add(s.max_age.as_millis() as u64);
            let entry = Entry {
                generation: 1,
                rotated_at_ms: now,
                absolute_expiry_ms,
                created_ms: now,
                created_seq: self.ops.load(Ordering::Relaxed),
                last_used_ms: now,
                expires_ms: idle_expiry(now, s.idle_ttl, absolute_expiry_ms),
                login_country: s.client.country,
                client: stored(&s.client),
            };
            let first = entry.successor();
            let sessions = state.users.entry(s.user_id.clone()).or_default();
            sessions.retain(|_, e| e.expires_ms > now);
            sessions.insert(s.sid.clone(), entry);
            let max = s.max_sessions.max(1);
            let mut evicted = Vec::new();
            if sessions.len() > max {
                // Oldest first; the new session is never a candidate, even when
                // another was created in the same millisecond.
                let mut by_age: Vec<((u64, u64), SessionId)> = sessions
                    .iter()
                    .filter(|(sid, _)| **sid != s.sid)
                    .map(|(sid, e)| ((e.created_ms, e.created_seq), sid.clone()))
                    .collect();
                by_age.sort();
                let excess = sessions.len() - max;
                for (_, sid) in by_age.into_iter().take(excess) {
                    sessions.remove(&sid);
                    evicted.push(sid);
                }
            }
            state.ended(&evicted);
            Created { first, evicted }
        }))
    }

    async fn rotate(&self, r: &RotateRequest<'_>) -> Result<Rotation> {
        Ok(self.with(|state, now| {
            let Some(sessions) = state.sessions(r.user_id, now) else {
                return Rotation::NotFound;
            };
            let Some(e) = sessions.get_mut(r.sid) else {
                return Rotation::NotFound;
            };
            if now >= e.absolute_expiry_ms {
                sessions.remove(r.sid);
                return Rotation::NotFound;
            }
            if r.generation == e.generation || super::lost_write(r, e.generation, e.rotated_at_ms) {
                e.generation = r.generation + 1;
                e.rotated_at_ms = now;
                e.last_used_ms = now;
                e.expires_ms = idle_expiry(now, r.idle_ttl, e.absolute_expiry_ms);
                e.client = stored(r.client);
                Rotation::Rotated(e.successor())
            } else if r.generation + 1 == e.generation
                && r.grace.is_none_or(|cap| {
                    !cap.is_zero() && now.saturating_sub(e.rotated_at_ms) <= cap.as_millis() as u64
                })
            {
                // The current generation is the presented one's successor,
                // so that successor has never been presented: a rotation
                // would have moved the generation on.
                Rotation::Replayed(e.successor())
            } else {
                sessions.remove(r.sid);
                state.ended([r.sid]);
                Rotation::Reused
            }
        }))
    }

    async fn renew(&self, r: &RenewRequest<'_>) -> Result<Option<Successor>> {
        Ok(self.with(|state, now| {
            let sessions = state.sessions(r.user_id, now)?;
            let e = sessions.get_mut(r.sid)?;
            if now >= e.absolute_expiry_ms {
                sessions.remove(r.sid);
                return None;
            }
            e.generation += 1;
            e.rotated_at_ms = now;
            e.last_used_ms = now;
            e.expires_ms = idle_expiry(now, r.idle_ttl, e.absolute_expiry_ms);
            e.client = stored(r.client);
            Some(e.successor())
        }))
    }

    async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        Ok(self.with(|state, now| {
            let removed = state
                .sessions(user_id, now)
                .is_some_and(|s| s.remove(sid).is_some());
            if removed {
                state.ended([sid]);
            }
            removed
        }))
    }

    async fn revoke_all(&self, user_id: &str) -> Result<Vec<SessionId>> {
        Ok(self.with(|state, now| {
            let live: Vec<SessionId> = state
                .sessions(user_id, now)
                .map(|s| s.keys().cloned().collect())
                .unwrap_or_default();
            state.users.remove(user_id);
            state.ended(&live);
            live
        }))
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        Ok(self.with(|state, now| {
            let mut list: Vec<(&SessionId, &Entry)> = state
                .sessions(user_id, now)
                .map(|s| s.iter().collect())
                .unwrap_or_default();
            // As the Redis index orders them: by login time, then id.
            list.sort_by_key(|(_, e)| (e.created_ms, e.created_seq));
            list.into_iter()
                .map(|(sid, e)| SessionInfo {
                    sid: sid.clone(),
                    created_at: e.created_ms / 1000,
                    last_used_at: e.last_used_ms / 1000,
                    client: e.client.clone(),
                })
                .collect()
        }))
    }

    async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        // A read: an expired session is not live, and is dropped by the next
        // write or sweep (strict mode asks this on every request).
        Ok(self.with(|state, now| {
            state
                .users
                .get(user_id)
                .and_then(|s| s.get(sid))
                .is_some_and(|e| e.expires_ms > now)
        }))
    }
}

#[async_trait]
impl LoginThrottle for MemoryStore {
    async fn begin_login(&self, a: &LoginAttempt<'_>) -> Result<Admission> {
        Ok(self.with(|state, now| {
            let window = a.window.as_millis().max(1) as u64;
            let counters = a.counters();
            for (counter, max) in &counters {
                let (count, until) = *state.counter(key(counter), now);
                if count >= *max {
                    return Admission::Throttled {
                        retry_after: secs_until(until, now),
                    };
                }
            }
            for (counter, _) in &counters {
                let slot = state.counter(key(counter), now);
                if slot.0 == 0 {
                    slot.1 = now + window;
                }
                slot.0 += 1;
            }
            Admission::Allowed
        }))
    }

    async fn end_login(&self, a: &LoginAttempt<'_>, end: AttemptEnd) -> Result<()> {
        self.with(|state, now| {
            for (i, (counter, _)) in a.counters().iter().enumerate() {
                let slot = state.counter(key(counter), now);
                match end {
                    AttemptEnd::Succeeded if i == 0 => *slot = (0, 0),
                    _ => slot.0 = slot.0.saturating_sub(1),
                }
            }
        });
        Ok(())
    }
}

#[async_trait]
impl ProofReplay for MemoryStore {
    async fn first_use(&self, user_id: &str, proof: &str, ttl: Duration) -> Result<bool> {
        Ok(self.with(|state, now| {
            let until = now.saturating_add(ttl.as_millis().max(1) as u64);
            match state.proofs.entry(format!("{user_id}\0{proof}")) {
                Slot::Occupied(mut seen) if *seen.get() <= now => {
                    seen.insert(until);
                    true
                }
                Slot::Occupied(_) => false,
                Slot::Vacant(slot) => {
                    slot.insert(until);
                    true
                }
            }
        }))
    }
}

impl RevocationFeed for MemoryStore {
    fn retain(&self, _: Retention) {}

    fn follow_revocations(&self, revocations: Arc<Revocations>) -> Result<()> {
        self.with(|state, _| state.followers.push(Arc::downgrade(&revocations)));
        // Everything that ends from now on reaches it under the store's lock,
        // before the call that ended it returns: strict mode's lease holds
        // for good, as no other process can end a session here.
        revocations.set_synced(true);
        revocations.hold_lease_forever();
        Ok(())
    }
}

/// The client as a session keeps it: the user agent reduced as the Redis
/// store reduces it, so both list the same.
fn stored(client: &ClientMeta) -> ClientMeta {
    ClientMeta {
        user_agent: client.stored_user_agent(),
        ..client.clone()
    }
}
