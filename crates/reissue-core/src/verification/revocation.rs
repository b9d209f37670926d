//! What an instance knows of ended sessions: the local half of instant
//! revocation (DESIGN.md, "Instant revocation").

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::SessionId;
use crate::clock::now_millis;

/// How protected routes learn that a session has ended (CONTRACT.md,
/// "Revocation of access tokens").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RevocationMode {
    /// Access tokens of an ended session work until they expire; nothing is
    /// checked per request.
    Stateless,
    /// Every instance hears of every ended session from the store's
    /// revocation feed and refuses its access tokens at once, with no store
    /// round trip per request. While its feed is interrupted an instance
    /// checks the store per request until it has caught up.
    #[default]
    Instant,
    /// A logout returns only once every instance has it (or once an
    /// unresponsive instance's lease has run out), so its access tokens are
    /// refused everywhere from the moment it returns. An instance answers
    /// from its feed alone while it holds a lease on it (DESIGN.md, "Strict
    /// revocation by leases"); while it does not, every protected request
    /// asks the store (one round trip; 503 while the store is unreachable).
    Strict,
}

impl RevocationMode {
    /// Parses `stateless`, `instant` or `strict` (case-insensitively).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "stateless" => Some(Self::Stateless),
            "instant" => Some(Self::Instant),
            "strict" => Some(Self::Strict),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stateless => "stateless",
            Self::Instant => "instant",
            Self::Strict => "strict",
        }
    }
}

/// Sessions known to have ended, each remembered until its access tokens are
/// dead, plus whether the feed that fills it is known to be complete.
///
/// A store's [`follow_revocations`](crate::store::RevocationFeed::follow_revocations)
/// fills it; the [`Verifier`](crate::Verifier) reads it on every protected
/// request (a read lock and one hash look-up; nothing when it is empty).
#[derive(Debug)]
pub struct Revocations {
    ended: RwLock<HashMap<SessionId, u64>>,
    len: AtomicUsize,
    swept_at_len: AtomicUsize,
    synced: AtomicBool,
    keep_ms: u64,
    store_down_until_ms: AtomicU64,
    /// Strict mode: how long a lease on the feed lasts; `None` takes none.
    lease: Option<Duration>,
    /// Until when (by [`monotonic_ms`]) this instance holds its lease; 0: it
    /// does not.
    lease_until: AtomicU64,
}

/// Milliseconds on this process's monotonic clock, from 1 (0 means "never").
/// Leases are judged by it, never by the wall clock: a stopped process that
/// resumes finds its deadline passed.
pub(crate) fn monotonic_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    (Instant::now().saturating_duration_since(base).as_millis() as u64).saturating_add(1)
}

/// How long a store failure lets requests skip the per-request store check
/// of an out-of-sync instance, so that an outage costs one timeout a second
/// rather than one per request.
const OUTAGE_BACKOFF_MS: u64 = 1_000;

impl Revocations {
    /// An empty set that remembers each ended session for `keep` (the access
    /// token lifetime plus the leeway), not yet in sync.
    pub fn new(keep: Duration) -> Self {
        Self {
            ended: RwLock::new(HashMap::new()),
            len: AtomicUsize::new(0),
            swept_at_len: AtomicUsize::new(0),
            synced: AtomicBool::new(false),
            keep_ms: keep.as_millis().min(u64::MAX as u128) as u64,
            store_down_until_ms: AtomicU64::new(0),
            lease: None,
            lease_until: AtomicU64::new(0),
        }
    }

    /// Strict mode: the feed that fills this set also holds a lease of
    /// `term` on it, renewed while it is in sync (DESIGN.md, "Strict
    /// revocation by leases").
    pub fn with_lease(mut self, term: Duration) -> Self {
        self.lease = Some(term);
        self
    }

    /// The lease term, if the feed takes leases.
    pub fn lease(&self) -> Option<Duration> {
        self.lease
    }

    /// Holds the lease until `deadline` on [`monotonic_ms`] (a later renewal
    /// never shortens a hold it extends; [`lapse_lease`](Self::lapse_lease)
    /// ends it).
    pub(crate) fn hold_lease_until(&self, deadline_ms: u64) {
        self.lease_until.fetch_max(deadline_ms, Ordering::AcqRel);
    }

    /// Holds the lease for good: a store in this process, where every
    /// ending reaches the set before it returns.
    pub(crate) fn hold_lease_forever(&self) {
        self.lease_until.store(u64::MAX, Ordering::Release);
    }

    /// Gives the lease up at once (the feed is out of sync).
    pub(crate) fn lapse_lease(&self) {
        self.lease_until.store(0, Ordering::Release);
    }

    /// Whether this instance holds its lease now, by its monotonic clock:
    /// then every ending that returned is in the set. One atomic load and a
    /// clock read, on every protected request in strict mode.
    pub fn holds_lease(&self) -> bool {
        let until = self.lease_until.load(Ordering::Acquire);
        until != 0 && monotonic_ms() < until
    }

    /// How long an ended session is remembered.
    pub fn keep(&self) -> Duration {
        Duration::from_millis(self.keep_ms)
    }

    /// Records that `sid` has ended, for the whole keep time.
    pub fn insert(&self, sid: SessionId) {
        self.insert_for(sid, self.keep());
    }

    /// Records that `sid` has ended, remembering it for `remaining` (an entry
    /// caught up from the store's log is already partly through its keep time).
    pub fn insert_for(&self, sid: SessionId, remaining: Duration) {
        let now = now_millis();
        let until = now.saturating_add(remaining.as_millis().min(u64::MAX as u128) as u64);
        let mut ended = self.ended.write().unwrap_or_else(|p| p.into_inner());
        let slot = ended.entry(sid).or_insert(0);
        *slot = (*slot).max(until);
        // Sweep when the set has doubled since the last sweep: amortised O(1),
        // and the set never holds more than about twice what is still alive.
        if ended.len() >= 2 * self.swept_at_len.load(Ordering::Relaxed).max(64) {
            ended.retain(|_, until| *until > now);
            self.swept_at_len.store(ended.len(), Ordering::Relaxed);
        }
        self.len.store(ended.len(), Ordering::Release);
    }

    /// Whether `sid` is known to have ended.
    pub fn contains(&self, sid: &SessionId) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.ended
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(sid)
    }

    /// How many ended sessions are remembered (expired ones until the next sweep).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks the set complete (the feed is connected and has caught up) or not
    /// (the feed was interrupted: every request asks the store until it is).
    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Release);
    }

    /// Whether every session that has ended is known to be in the set.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Notes that the store just failed to answer a liveness check.
    pub(crate) fn store_failed(&self) {
        self.store_down_until_ms
            .store(now_millis() + OUTAGE_BACKOFF_MS, Ordering::Relaxed);
    }

    /// Whether the store failed within the last second (then an out-of-sync
    /// instance applies its outage rule without waiting for another timeout).
    pub(crate) fn store_recently_failed(&self) -> bool {
        self.store_down_until_ms.load(Ordering::Relaxed) > now_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets() {
        let r = Revocations::new(Duration::from_millis(50));
        assert!(r.is_empty());
        let a = SessionId::random();
        assert!(!r.contains(&a));
        r.insert(a.clone());
        assert!(r.contains(&a));
        assert!(!r.is_synced(), "a new set is not in sync");
        r.set_synced(true);
        assert!(r.is_synced());
        std::thread::sleep(Duration::from_millis(60));
        // Past its keep time an entry goes at the next sweep, which inserts trigger.
        for _ in 0..200 {
            r.insert_for(SessionId::random(), Duration::from_millis(0));
        }
        assert!(!r.contains(&a), "forgotten after its keep time");
        assert!(r.len() < 200, "expired entries are swept: {}", r.len());
    }

    #[test]
    fn a_lease_is_held_until_its_deadline_or_lapse() {
        let r = Revocations::new(Duration::from_secs(60)).with_lease(Duration::from_secs(2));
        assert_eq!(r.lease(), Some(Duration::from_secs(2)));
        assert!(!r.holds_lease(), "no lease before a grant");
        r.hold_lease_until(monotonic_ms() + 60_000);
        assert!(r.holds_lease());
        r.hold_lease_until(monotonic_ms());
        assert!(r.holds_lease(), "an earlier deadline never shortens a hold");
        r.lapse_lease();
        assert!(!r.holds_lease());
        r.hold_lease_until(monotonic_ms());
        assert!(!r.holds_lease(), "a deadline that has come is no hold");
        r.hold_lease_forever();
        assert!(r.holds_lease());
    }

    #[test]
    fn modes_parse() {
        for m in [
            RevocationMode::Stateless,
            RevocationMode::Instant,
            RevocationMode::Strict,
        ] {
            assert_eq!(RevocationMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(
            RevocationMode::parse("STRICT"),
            Some(RevocationMode::Strict)
        );
        assert_eq!(RevocationMode::parse("fast"), None);
        assert_eq!(RevocationMode::default(), RevocationMode::Instant);
    }
}
