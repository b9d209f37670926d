//! Liveness checks that share store round trips.
//!
//! Strict mode asks the store about the session of every protected request.
//! Sent one by one, each check costs a command on the client, a script run on
//! Redis and a reply; under load most of a request's time goes there. Here,
//! at most [`MAX_IN_FLIGHT`] store calls run at once; checks that arrive while
//! they do wait, and the next call takes all of them in one
//! [`SessionStore::are_live`]. An idle server sends each check alone, at
//! once; a busy one sends a few large batches.
//!
//! What strict mode promises still holds: a check joins only a batch that has
//! not been sent, so every answer was read from the store after its request
//! arrived. A revocation that returned before a request came in is seen.
//!
//! Cancellation: a request whose future is dropped (its client went away)
//! while it leads a batch hands its slot on as it drops; the checks it was
//! carrying see their answer channel close and ask the store alone. Nothing
//! waits on a leader that is gone.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::store::SessionStore;
use crate::{Error, Result, SessionId};

/// How many store calls strict mode's checks keep in flight at once.
pub(crate) const MAX_IN_FLIGHT: usize = 2;

/// The most checks one store call carries.
const MAX_BATCH: usize = 256;

/// Strict mode's liveness checks over one store. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct LiveChecks {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn SessionStore>,
    state: Mutex<State>,
}

/// Invariant: `waiting` is non-empty only while `in_flight == MAX_IN_FLIGHT`.
#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    waiting: Vec<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    user_id: String,
    sid: SessionId,
    reply: oneshot::Sender<Turn>,
}

/// What a waiting check receives.
#[derive(Debug)]
enum Turn {
    /// Its answer, from a batch someone else sent.
    Answer(Result<bool>),
    /// The slot of a finished call, and the checks that waited with it: it
    /// sends them now, its own first.
    Lead(Slot, Vec<Waiter>),
}

/// One of the `MAX_IN_FLIGHT` places for a store call. Dropping it, used or
/// not (a cancelled leader, a `Lead` that reached a receiver already gone),
/// passes it to the checks waiting, or frees it.
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.release();
    }
}

impl LiveChecks {
    pub(crate) fn new(store: Arc<dyn SessionStore>) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                state: Mutex::default(),
            }),
        }
    }

    /// Whether `sid` of `user_id` is live, read from the store after this
    /// call began.
    pub(crate) async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let shared = &self.shared;
        let queued = {
            let mut state = shared.lock();
            if state.in_flight < MAX_IN_FLIGHT {
                state.in_flight += 1;
                None
            } else {
                let (reply, answer) = oneshot::channel();
                state.waiting.push(Waiter {
                    user_id: user_id.to_owned(),
                    sid: sid.clone(),
                    reply,
                });
                Some(answer)
            }
        };
        let (slot, others) = match queued {
            None => (
                Slot {
                    shared: shared.clone(),
                },
                Vec::new(),
            ),
            Some(answer) => match answer.await {
                Ok(Turn::Answer(result)) => return result,
                Ok(Turn::Lead(slot, others)) => (slot, others),
                // The leader carrying this check was cancelled.
                Err(_) => return shared.store.is_live(user_id, sid).await,
            },
        };
        shared.send(slot, user_id, sid, others).await
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a counter and a queue, consistent at every unlock:
        // a panic elsewhere while it was held leaves nothing half done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends this check and `others` in one store call, answers the others,
    /// then gives up `slot` (to the next batch, if checks are waiting).
    async fn send(
        &self,
        slot: Slot,
        user_id: &str,
        sid: &SessionId,
        others: Vec<Waiter>,
    ) -> Result<bool> {
        if others.is_empty() {
            let result = self.store.is_live(user_id, sid).await;
            drop(slot);
            return result;
        }
        let mut checks = Vec::with_capacity(others.len() + 1);
        checks.push((user_id, sid));
        checks.extend(others.iter().map(|w| (w.user_id.as_str(), &w.sid)));
        let n = checks.len();
        let result = self.store.are_live(&checks).await.and_then(|live| {
            if live.len() == n {
                Ok(live)
            } else {
                Err(Error::Internal(format!(
                    "the store answered {} liveness checks for {n}",
                    live.len()
                )))
            }
        });
        drop(checks);
        // Free the slot before answering, so that the next batch is on its
        // way while the answers go out.
        drop(slot);
        match result {
            Ok(live) => {
                for (waiter, live) in others.into_iter().zip(&live[1..]) {
                    let _ = waiter.reply.send(Turn::Answer(Ok(*live)));
                }
                Ok(live[0])
            }
            Err(e) => {
                for waiter in others {
                    let _ = waiter.reply.send(Turn::Answer(Err(copy(&e))));
                }
                Err(e)
            }
        }
    }

    /// A store call ended (or its leader went away): the checks waiting
    /// become the next batch, led by the first one still listening; with
    /// none waiting, the slot is free.
    fn release(self: &Arc<Self>) {
        let mut batch = {
            let mut state = self.lock();
            if state.waiting.is_empty() {
                state.in_flight -= 1;
                return;
            }
            let n = state.waiting.len().min(MAX_BATCH);
            state.waiting.drain(..n).collect::<Vec<_>>()
        };
        let mut slot = Slot {
            shared: self.clone(),
        };
        while !batch.is_empty() {
            let leader = batch.remove(0);
            match leader.reply.send(Turn::Lead(slot, batch)) {
                Ok(()) => return,
                // That request is gone: the next one leads.
                Err(Turn::Lead(returned, rest)) => {
                    slot = returned;
                    batch = rest;
                }
                Err(Turn::Answer(_)) => return, // only a Lead was sent
            }
        }
        // Everyone in the batch had left: dropping the slot passes it on to
        // whoever queued since, or frees it.
        drop(slot);
    }
}

/// The store's error again, for each check of the batch.
fn copy(e: &Error) -> Error {
    match e {
        Error::Unavailable(source) => Error::unavailable(source.to_string()),
        Error::Internal(m) => Error::Internal(m.clone()),
        other => Error::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    //! The batching mechanics over the real memory store, its calls held at
    //! a gate so that the tests decide what is in flight. Store semantics are
    //! the store suite's (`are_live_answers_each_in_order`, on every store).

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::store::{
        Created, MemoryStore, NewSession, RenewRequest, RotateRequest, Rotation, SessionInfo,
        Successor,
    };

    /// The memory store, each liveness call waiting for a permit of `gate`
    /// and recording how many checks it carried.
    #[derive(Debug)]
    struct Gated {
        inner: MemoryStore,
        gate: Semaphore,
        calls: Mutex<Vec<usize>>,
        fail: AtomicBool,
    }

    impl Gated {
        async fn pass(&self, n: usize) -> Result<()> {
            self.calls.lock().unwrap().push(n);
            self.gate.acquire().await.expect("open").forget();
            if self.fail.load(Ordering::SeqCst) {
                return Err(Error::unavailable("Redis is down"));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl SessionStore for Gated {
        async fn create(&self, s: &NewSession) -> Result<Created> {
            self.inner.create(s).await
        }
        async fn rotate(&self, r: &RotateRequest<'_>) -> Result<Rotation> {
            self.inner.rotate(r).await
        }
        async fn renew(&self, r: &RenewRequest<'_>) -> Result<Option<Successor>> {
            self.inner.renew(r).await
        }
        async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
            self.inner.revoke(user_id, sid).await
        }
        async fn revoke_all(&self, user_id: &str) -> Result<Vec<SessionId>> {
            self.inner.revoke_all(user_id).await
        }
        async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
            self.inner.list(user_id).await
        }
        async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
            self.pass(1).await?;
            self.inner.is_live(user_id, sid).await
        }
        async fn are_live(&self, sessions: &[(&str, &SessionId)]) -> Result<Vec<bool>> {
            self.pass(sessions.len()).await?;
            self.inner.are_live(sessions).await
        }
    }

    async fn setup() -> (Arc<Gated>, LiveChecks, Vec<(String, SessionId, bool)>) {
        let store = Arc::new(Gated {
            inner: MemoryStore::new(),
            gate: Semaphore::new(0),
            calls: Mutex::default(),
            fail: AtomicBool::new(false),
        });
        let mut sessions = Vec::new();
        for i in 0..12 {
            let user = format!("u{i}");
            let sid = SessionId::random();
            let s = NewSession::new(
                &user,
                sid.clone(),
                Duration::from_secs(60),
                Duration::from_secs(60),
            );
            store.inner.create(&s).await.unwrap();
            let live = i % 3 != 0;
            if !live {
                store.inner.revoke(&user, &sid).await.unwrap();
            }
            sessions.push((user, sid, live));
        }
        let checks = LiveChecks::new(store.clone());
        (store, checks, sessions)
    }

    fn spawn_check(
        checks: &LiveChecks,
        (user, sid, _): &(String, SessionId, bool),
    ) -> tokio::task::JoinHandle<Result<bool>> {
        let (checks, user, sid) = (checks.clone(), user.clone(), sid.clone());
        tokio::spawn(async move { checks.is_live(&user, &sid).await })
    }

    /// Waits until the store has seen `n` liveness calls (each blocked at the gate).
    async fn calls_reach(store: &Gated, n: usize) {
        for _ in 0..500 {
            if store.calls.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!(
            "the store saw {:?}, not {n} calls",
            store.calls.lock().unwrap()
        );
    }

    /// Hang detector: every test ends well before this unless a check waits forever.
    const HANG: Duration = Duration::from_secs(10);

    /// Checks of the first `MAX_IN_FLIGHT` sessions hold every slot (their
    /// calls at the gate); the others' checks are queued behind them.
    async fn fill(
        store: &Gated,
        checks: &LiveChecks,
        sessions: &[(String, SessionId, bool)],
    ) -> (
        Vec<tokio::task::JoinHandle<Result<bool>>>,
        Vec<tokio::task::JoinHandle<Result<bool>>>,
    ) {
        let spawn_all =
            |s: &[(String, SessionId, bool)]| s.iter().map(|s| spawn_check(checks, s)).collect();
        let leaders: Vec<_> = spawn_all(&sessions[..MAX_IN_FLIGHT]);
        calls_reach(store, MAX_IN_FLIGHT).await;
        let waiters: Vec<_> = spawn_all(&sessions[MAX_IN_FLIGHT..]);
        while checks.shared.lock().waiting.len() < waiters.len() {
            tokio::task::yield_now().await;
        }
        (leaders, waiters)
    }

    #[tokio::test]
    async fn checks_arriving_while_calls_are_in_flight_go_in_one_call() {
        let (store, checks, sessions) = setup().await;
        let (leaders, waiters) = fill(&store, &checks, &sessions).await;
        store.gate.add_permits(100);
        for (handle, (_, _, live)) in leaders.into_iter().chain(waiters).zip(&sessions) {
            assert_eq!(
                tokio::time::timeout(HANG, handle)
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap(),
                *live
            );
        }
        let calls = store.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [vec![1; MAX_IN_FLIGHT], vec![sessions.len() - MAX_IN_FLIGHT]].concat(),
            "the waiting checks went as one call"
        );
        assert_eq!(
            checks.shared.lock().in_flight,
            0,
            "every slot is free again"
        );
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_on_its_slot() {
        let (store, checks, sessions) = setup().await;
        let (leaders, waiters) = fill(&store, &checks, &sessions).await;
        // The first leader's client goes away while its call hangs.
        leaders[0].abort();
        assert!(
            leaders
                .into_iter()
                .next()
                .unwrap()
                .await
                .unwrap_err()
                .is_cancelled()
        );
        // Its slot went to the waiting checks, which are now one call at the gate.
        calls_reach(&store, MAX_IN_FLIGHT + 1).await;
        store.gate.add_permits(100);
        for (handle, (_, _, live)) in waiters.into_iter().zip(&sessions[MAX_IN_FLIGHT..]) {
            assert_eq!(
                tokio::time::timeout(HANG, handle)
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap(),
                *live
            );
        }
        // The aborted call's permit may remain unused: what matters is that the
        // slots are free and a new check goes straight through.
        let (user, sid, live) = &sessions[1];
        assert_eq!(
            tokio::time::timeout(HANG, checks.is_live(user, sid))
                .await
                .unwrap()
                .unwrap(),
            *live
        );
    }

    #[tokio::test]
    async fn a_cancelled_waiter_is_skipped_and_its_batch_still_answered() {
        let (store, checks, sessions) = setup().await;
        let (leaders, mut waiters) = fill(&store, &checks, &sessions).await;
        // The first in line (who would lead the next call) and another leave.
        for i in [0, 3] {
            waiters[i].abort();
        }
        let gone: Vec<_> = [3, 0].into_iter().map(|i| waiters.remove(i)).collect();
        for g in gone {
            assert!(g.await.unwrap_err().is_cancelled());
        }
        store.gate.add_permits(100);
        let rest: Vec<_> = sessions[MAX_IN_FLIGHT..]
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 0 && *i != 3)
            .map(|(_, s)| s)
            .collect();
        for (handle, (_, _, live)) in waiters.into_iter().zip(rest) {
            assert_eq!(
                tokio::time::timeout(HANG, handle)
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap(),
                *live
            );
        }
        for handle in leaders {
            tokio::time::timeout(HANG, handle)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
        assert_eq!(checks.shared.lock().in_flight, 0);
    }

    #[tokio::test]
    async fn a_failed_call_fails_every_check_it_carried() {
        let (store, checks, sessions) = setup().await;
        store.fail.store(true, Ordering::SeqCst);
        let handles: Vec<_> = sessions.iter().map(|s| spawn_check(&checks, s)).collect();
        calls_reach(&store, MAX_IN_FLIGHT).await;
        store.gate.add_permits(100);
        for handle in handles {
            let err = tokio::time::timeout(HANG, handle)
                .await
                .unwrap()
                .unwrap()
                .unwrap_err();
            assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        }
        assert_eq!(checks.shared.lock().in_flight, 0);
    }
}
