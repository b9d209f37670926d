//! The in-process store: the same semantics as Redis (TTLs, atomic rotation),
//! for development, tests and single-process deployments.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    ClientMeta, LoginFailures, NewSession, RefreshStore, RotateRequest, Rotation, SessionInfo,
    Successor, idle_expiry,
};
use crate::token::now_millis;
use crate::{Country, Result, SessionId};

#[derive(Debug, Clone)]
struct Entry {
    generation: u64,
    rotated_at_ms: u64,
    absolute_expiry_ms: u64,
    created_ms: u64,
    last_used_ms: u64,
    /// When the idle lifetime runs out (the Redis key's TTL).
    expires_ms: u64,
    login_country: Option<Country>,
    client: ClientMeta,
    claims: String,
}

impl Entry {
    fn successor(&self) -> Successor {
        Successor {
            generation: self.generation,
            rotated_at_ms: self.rotated_at_ms,
            expires_at_ms: self.expires_ms,
            absolute_expiry_ms: self.absolute_expiry_ms,
            claims: self.claims.clone(),
            login_country: self.login_country,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, HashMap<SessionId, Entry>>,
    failures: HashMap<String, (u32, u64)>,
}

impl State {
    /// The user's sessions with the expired ones dropped, as Redis TTLs would.
    fn sessions(&mut self, user_id: &str, now: u64) -> Option<&mut HashMap<SessionId, Entry>> {
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
        self.failures.retain(|_, (_, until)| *until > now);
    }
}

/// An in-process [`RefreshStore`]. Sessions vanish with the process, and are
/// not shared between instances: use [`RedisStore`](super::RedisStore) for more
/// than one.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    ops: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State, u64) -> T) -> T {
        let now = now_millis();
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
impl RefreshStore for MemoryStore {
    async fn create(&self, s: &NewSession) -> Result<Vec<SessionId>> {
        Ok(self.with(|state, now| {
            let sessions = state.users.entry(s.user_id.clone()).or_default();
            sessions.retain(|_, e| e.expires_ms > now);
            sessions.insert(
                s.sid.clone(),
                Entry {
                    generation: 1,
                    rotated_at_ms: s.now_ms,
                    absolute_expiry_ms: s.absolute_expiry_ms,
                    created_ms: s.now_ms,
                    last_used_ms: s.now_ms,
                    expires_ms: idle_expiry(s.now_ms, s.idle_ttl, s.absolute_expiry_ms),
                    login_country: s.client.country,
                    client: s.client.clone(),
                    claims: s.claims.clone(),
                },
            );
            let mut evicted = Vec::new();
            if sessions.len() > s.max_sessions.max(1) {
                let mut by_age: Vec<(u64, SessionId)> = sessions
                    .iter()
                    .map(|(sid, e)| (e.created_ms, sid.clone()))
                    .collect();
                by_age.sort();
                for (_, sid) in by_age
                    .into_iter()
                    .take(sessions.len() - s.max_sessions.max(1))
                {
                    sessions.remove(&sid);
                    evicted.push(sid);
                }
            }
            evicted
        }))
    }

    async fn rotate(&self, r: &RotateRequest<'_>) -> Result<Rotation> {
        Ok(self.with(|state, _| {
            let now = r.now_ms;
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
            if r.generation == e.generation {
                e.generation += 1;
                e.rotated_at_ms = now;
                e.last_used_ms = now;
                e.expires_ms = idle_expiry(now, r.idle_ttl, e.absolute_expiry_ms);
                e.client = r.client.clone();
                Rotation::Rotated(e.successor())
            } else if r.generation + 1 == e.generation
                && !r.grace.is_zero()
                && now.saturating_sub(e.rotated_at_ms) <= r.grace.as_millis() as u64
            {
                Rotation::Replayed(e.successor())
            } else {
                sessions.remove(r.sid);
                Rotation::Reused
            }
        }))
    }

    async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        Ok(self.with(|state, now| {
            state
                .sessions(user_id, now)
                .is_some_and(|s| s.remove(sid).is_some())
        }))
    }

    async fn revoke_all(&self, user_id: &str) -> Result<usize> {
        Ok(self.with(|state, now| {
            let n = state.sessions(user_id, now).map_or(0, |s| s.len());
            state.users.remove(user_id);
            n
        }))
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        Ok(self.with(|state, now| {
            let mut list: Vec<SessionInfo> = state
                .sessions(user_id, now)
                .map(|s| {
                    s.iter()
                        .map(|(sid, e)| SessionInfo {
                            sid: sid.clone(),
                            created_at: e.created_ms / 1000,
                            last_used_at: e.last_used_ms / 1000,
                            client: e.client.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            list.sort_by(|a, b| (a.created_at, &a.sid).cmp(&(b.created_at, &b.sid)));
            list
        }))
    }

    async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        Ok(self.with(|state, now| {
            state
                .sessions(user_id, now)
                .is_some_and(|s| s.contains_key(sid))
        }))
    }

    async fn login_failures(&self, account: &str) -> Result<Option<LoginFailures>> {
        Ok(self.with(|state, now| match state.failures.get(account) {
            Some(&(count, until)) if until > now => Some(LoginFailures {
                count,
                retry_after: (until - now).div_ceil(1000),
            }),
            _ => None,
        }))
    }

    async fn record_login_failure(&self, account: &str, window: Duration) -> Result<LoginFailures> {
        Ok(self.with(|state, now| {
            let slot = state.failures.entry(account.to_owned()).or_insert((0, 0));
            if slot.1 <= now {
                *slot = (0, now + window.as_millis() as u64);
            }
            slot.0 += 1;
            LoginFailures {
                count: slot.0,
                retry_after: (slot.1 - now).div_ceil(1000),
            }
        }))
    }

    async fn clear_login_failures(&self, account: &str) -> Result<()> {
        self.with(|state, _| state.failures.remove(account));
        Ok(())
    }
}
