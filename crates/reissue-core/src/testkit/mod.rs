//! The store kit: the store suite that every [`RefreshStore`] of this
//! workspace passes (the memory store, and the Redis store on one server,
//! a Cluster and behind Sentinel), for any other implementation to run in
//! its own tests. Feature `testkit`; not for production code.
//!
//! [`store_suite!`](crate::store_suite) emits a module with one `#[test]`
//! per scenario, each on a store of its own under a key prefix of its own,
//! so that a failure names the scenario and the store
//! (`my_store::reuse_after_grace_revokes`). The scenarios are the
//! semantics that the trait's docs promise and the adapters rely on:
//! rotation with a grace window and reuse detection, lost writes after a
//! failover, idle and absolute lifetimes, the session limit, isolation of
//! users (hostile ids included), login throttling under concurrency, and
//! the revocation feed, and DPoP proofs accepted once.
//!
//! ```
//! use std::sync::Arc;
//!
//! use reissue_core::store::MemoryStore;
//!
//! // In a test file of your crate (`tests/store.rs`): the expression makes
//! // the store for one scenario; `prefix` is a key prefix of its own, for
//! // stores on a shared server. It may `.await`.
//! reissue_core::store_suite!(memory, |_prefix| Arc::new(MemoryStore::new()));
//! # fn main() {}
//! ```
//!
//! A store on a server takes the prefix, e.g. for the Redis store:
//!
//! ```no_run
//! reissue_core::store_suite!(redis, |prefix| std::sync::Arc::new(
//!     reissue_core::store::RedisStore::builder("redis://127.0.0.1:6379")
//!         .key_prefix(&prefix)
//!         .connect()
//!         .await
//!         .expect("a Redis to test on"),
//! ));
//! # fn main() {}
//! ```
//!
//! Time is the store's own clock, so the scenarios wait (briefly) where time
//! must pass: grace windows, idle and absolute lifetimes, attempt windows.
//! The whole suite takes a few seconds, its scenarios running in parallel.
//! The helpers below are public so that a store's own extra tests can use
//! them too.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::store::{
    Admission, AttemptEnd, ClientMeta, LoginAttempt, NewSession, RefreshStore, RenewRequest,
    RotateRequest, Rotation, Successor,
};
use crate::{
    Algorithm, Authenticated, Authenticator, Config, Country, Error, Key, KeySet, Reissue,
    Revocations, SessionId, TokenRejection, UserClaims,
};

/// The store a scenario runs on.
pub type Store = Arc<dyn RefreshStore>;

/// The idle lifetime of the scenarios' sessions.
pub const IDLE: Duration = Duration::from_secs(60);
/// Their absolute lifetime.
pub const LIFETIME: Duration = Duration::from_secs(3600);
/// Their reuse grace: real time (the store's clock), short enough to wait out.
pub const GRACE: Duration = Duration::from_millis(400);

/// `store_suite!(name, |prefix| store)` emits `mod name` with one `#[test]`
/// per scenario of [`testkit`](crate::testkit). `store` is an expression (it
/// may `.await`) that makes the store for one scenario under `prefix`, a
/// `String` key prefix unique to the scenario and the test run; the module
/// sees the items of the one it is written in.
#[macro_export]
macro_rules! store_suite {
    ($cell:ident, |$prefix:ident| $make:expr $(,)?) => {
        $crate::store_suite!(@cell $cell, $prefix, $make, [
    create_list_is_live,
    are_live_answers_each_in_order,
    rotate_happy_path,
    renew_rotates_without_a_token,
    replay_within_grace_changes_nothing,
    reuse_after_grace_revokes,
    replay_until_successor_used,
    replay_racing_successor_use,
    older_generation_is_reuse,
    zero_grace_is_strict,
    not_found_after_revoke,
    not_found_after_revoke_all,
    idle_ttl_expires_and_rotation_renews_it,
    absolute_lifetime_is_never_extended,
    max_sessions_evicts_the_oldest,
    new_session_is_never_evicted,
    users_are_isolated,
    hostile_user_ids_stay_isolated,
    login_attempts_are_counted_before_the_check,
    parallel_login_attempts_never_exceed_the_limit,
    login_limits_per_network_and_account,
    login_window_resets,
    known_devices_are_counted_on_their_own,
    one_network_across_accounts_is_capped,
    a_refused_attempt_counts_nowhere,
    revocations_reach_followers,
    concurrent_reissues_get_one_successor,
    reissue_after_grace_is_theft,
    ahead_within_tolerance_is_a_lost_write,
    ahead_beyond_tolerance_is_theft,
    ahead_but_older_than_the_store_is_theft,
    racing_proofs_are_accepted_once,
    proofs_are_forgotten_after_their_ttl
        ]);
    };
    (@cell $cell:ident, $prefix:ident, $make:expr, [$($scenario:ident),* $(,)?]) => {
        mod $cell {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $scenario() {
                    $crate::testkit::block_on(async {
                        let $prefix: ::std::string::String =
                            $crate::testkit::prefix(::std::stringify!($scenario));
                        let store: $crate::testkit::Store = $make;
                        $crate::testkit::$scenario(store).await;
                    });
                }
            )*
        }
    };
}

/// Runs a scenario on a runtime of two worker threads, as a store serving
/// requests runs: concurrent calls do run at once.
pub fn block_on<F: Future>(scenario: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(scenario)
}

/// A key prefix unique to `scenario` in this test run: its name, the process
/// and a counter, so that runs on a shared server never meet.
pub fn prefix(scenario: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{scenario}:{}:{}:{}:",
        std::process::id(),
        now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// Logs anyone in: the credentials are the user id.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyUser;

impl Authenticator for AnyUser {
    type Credentials = String;
    type Claims = UserClaims;

    fn account_key(&self, credentials: &String) -> crate::Result<String> {
        Ok(credentials.clone())
    }

    async fn authenticate(&self, user: String) -> crate::Result<Authenticated<UserClaims>> {
        let claims = UserClaims::new(format!("{user}@example.com"), vec!["user".to_owned()]);
        Ok(Authenticated::new(user, claims))
    }
}

/// The client of the scenarios' logins.
pub fn client() -> ClientMeta {
    ClientMeta::new(
        Some("203.0.113.7".parse().unwrap()),
        Country::new("DE"),
        Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    )
}

/// A session of `user`, idle lifetime `IDLE`, absolute `LIFETIME`.
pub fn new_session(user: &str) -> (NewSession, SessionId) {
    let sid = SessionId::random();
    let mut s = NewSession::new(user, sid.clone(), LIFETIME, IDLE);
    s.client = client();
    (s, sid)
}

/// Creates a session of `user` (asserting that it evicts nothing).
pub async fn create(store: &Store, user: &str) -> SessionId {
    let (s, sid) = new_session(user);
    assert_eq!(
        store.create(&s).await.unwrap().evicted,
        vec![],
        "nothing evicted"
    );
    sid
}

/// Rotates `sid` presenting `generation`, with this grace and idle lifetime.
pub async fn rotate_with(
    store: &Store,
    user: &str,
    sid: &SessionId,
    generation: u64,
    grace: impl Into<Option<Duration>>,
    idle: Duration,
) -> Rotation {
    let client = ClientMeta::new(Some("198.51.100.1".parse().unwrap()), None, Some("curl/8"));
    let request = RotateRequest::new(user, sid, generation, grace, idle, &client);
    store.rotate(&request).await.unwrap()
}

/// A rotation presenting a token of `generation` minted at `issued_at_ms`,
/// with lost writes tolerated up to `max_ahead` generations.
pub async fn rotate_ahead(
    store: &Store,
    sid: &SessionId,
    generation: u64,
    issued_at_ms: u64,
    max_ahead: u64,
) -> Rotation {
    let client = ClientMeta::default();
    let mut request = RotateRequest::new("alice", sid, generation, GRACE, IDLE, &client);
    request.issued_at_ms = issued_at_ms;
    request.max_ahead = max_ahead;
    store.rotate(&request).await.unwrap()
}

/// Rotates `sid` presenting `generation`, with [`GRACE`] and [`IDLE`].
pub async fn rotate(store: &Store, user: &str, sid: &SessionId, generation: u64) -> Rotation {
    rotate_with(store, user, sid, generation, GRACE, IDLE).await
}

/// The successor of a rotation that must have rotated.
pub fn rotated(r: Rotation) -> Successor {
    match r {
        Rotation::Rotated(s) => s,
        other => panic!("expected Rotated, got {other:?}"),
    }
}

/// Sleeps `ms` milliseconds.
pub async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Store times are the store's clock; on this machine it is ours, within
/// the few milliseconds a call takes.
pub fn assert_near(store_ms: u64, before: u64, what: &str) {
    let after = now_ms();
    assert!(
        (before.saturating_sub(5)..=after + 5).contains(&store_ms),
        "{what}: {store_ms} not within [{before}, {after}]"
    );
}

/// Scenario: create list is live.
pub async fn create_list_is_live(store: Store) {
    let t = now_ms();
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
    let (s, a) = new_session("alice");
    let created = store.create(&s).await.unwrap();
    assert_eq!(created.first.generation, 1);
    assert_near(created.first.rotated_at_ms, t, "created at");
    assert_eq!(
        created.first.absolute_expiry_ms,
        created.first.rotated_at_ms + LIFETIME.as_millis() as u64
    );
    assert_eq!(
        created.first.expires_at_ms,
        created.first.rotated_at_ms + IDLE.as_millis() as u64
    );
    sleep_ms(5).await;
    let b = create(&store, "alice").await;
    let list = store.list("alice").await.unwrap();
    assert_eq!(
        list.iter().map(|s| &s.sid).collect::<Vec<_>>(),
        vec![&a, &b],
        "oldest first"
    );
    assert_eq!(list[0].created_at, created.first.rotated_at_ms / 1000);
    assert_eq!(list[0].last_used_at, list[0].created_at);
    assert_eq!(
        list[0].client,
        ClientMeta::new(client().ip, client().country, Some("Firefox 128 / Linux")),
        "the client, its user agent as the session list shows it"
    );
    assert!(store.is_live("alice", &a).await.unwrap());
    assert!(store.is_live("alice", &b).await.unwrap());
    assert!(!store.is_live("alice", &SessionId::random()).await.unwrap());
    assert_eq!(store.list("bob").await.unwrap(), vec![]);
}

/// The batched check strict mode sends: one answer per session, in order,
/// the same as `is_live`'s, across users of many buckets (one script each on
/// a cluster), ended one by one, all at once (the user-wide mark) or never
/// created.
pub async fn are_live_answers_each_in_order(store: Store) {
    assert_eq!(store.are_live(&[]).await.unwrap(), Vec::<bool>::new());
    let users: Vec<String> = (0..24).map(|i| format!("user-{i}")).collect();
    let mut checks: Vec<(String, SessionId, bool)> = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let kept = create(&store, user).await;
        let ended = create(&store, user).await;
        match i % 3 {
            0 => {
                assert!(store.revoke(user, &ended).await.unwrap());
                checks.push((user.clone(), kept, true));
                checks.push((user.clone(), ended, false));
            }
            1 => {
                store.revoke_all(user).await.unwrap();
                checks.push((user.clone(), kept, false));
                checks.push((user.clone(), ended, false));
            }
            _ => {
                checks.push((user.clone(), ended, true));
                checks.push((user.clone(), SessionId::random(), false));
                checks.push((user.clone(), kept, true));
            }
        }
    }
    // Another user's session id under this user is not live.
    let (other_user, other_sid) = (checks[0].0.clone(), checks[0].1.clone());
    checks.push(("someone-else".into(), other_sid, false));
    let batch: Vec<(&str, &SessionId)> = checks.iter().map(|(u, s, _)| (u.as_str(), s)).collect();
    let live = store.are_live(&batch).await.unwrap();
    let expected: Vec<bool> = checks.iter().map(|c| c.2).collect();
    assert_eq!(live, expected);
    for (user, sid, want) in &checks {
        assert_eq!(
            store.is_live(user, sid).await.unwrap(),
            *want,
            "{user} {sid:?}"
        );
    }
    // The same session twice in one batch gets the same answer twice.
    let sid = &checks[0].1;
    assert_eq!(
        store
            .are_live(&[(other_user.as_str(), sid), (other_user.as_str(), sid)])
            .await
            .unwrap(),
        vec![true, true]
    );
}

/// Scenario: rotate happy path.
pub async fn rotate_happy_path(store: Store) {
    let (s, sid) = new_session("alice");
    let first = store.create(&s).await.unwrap().first;
    let t = now_ms();
    let s2 = rotated(rotate(&store, "alice", &sid, 1).await);
    assert_eq!(s2.generation, 2);
    assert_near(s2.rotated_at_ms, t, "rotated at");
    assert_eq!(
        s2.expires_at_ms,
        s2.rotated_at_ms + IDLE.as_millis() as u64,
        "the idle lifetime is renewed"
    );
    assert_eq!(s2.absolute_expiry_ms, first.absolute_expiry_ms);
    assert_eq!(s2.login_country, Country::new("DE"));
    let s3 = rotated(rotate(&store, "alice", &sid, 2).await);
    assert_eq!(s3.generation, 3);
    assert!(s3.rotated_at_ms >= s2.rotated_at_ms);
    assert_eq!(
        s3.login_country,
        Country::new("DE"),
        "the login country survives rotations"
    );
    let list = store.list("alice").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].created_at, first.rotated_at_ms / 1000);
    assert_eq!(list[0].last_used_at, s3.rotated_at_ms / 1000);
    assert_eq!(
        list[0].client.ip,
        Some("198.51.100.1".parse::<IpAddr>().unwrap()),
        "client of the last reissue"
    );
    assert_eq!(list[0].client.country, None);
    assert_eq!(list[0].client.user_agent.as_deref(), Some("curl/8"));
}

/// Scenario: renew rotates a live session without a token.
pub async fn renew_rotates_without_a_token(store: Store) {
    let sid = create(&store, "alice").await;
    let s2 = rotated(rotate(&store, "alice", &sid, 1).await);
    let client = ClientMeta::new(Some("203.0.113.9".parse().unwrap()), None, Some("curl/8"));
    let renewed = store
        .renew(&RenewRequest::new("alice", &sid, IDLE, &client))
        .await
        .unwrap()
        .expect("a live session renews");
    assert_eq!(renewed.generation, s2.generation + 1, "a new generation");
    assert!(renewed.rotated_at_ms >= s2.rotated_at_ms);
    assert_eq!(renewed.absolute_expiry_ms, s2.absolute_expiry_ms);
    let list = store.list("alice").await.unwrap();
    assert_eq!(list.len(), 1, "the same session, not another");
    assert_eq!(list[0].sid, sid);
    assert_eq!(list[0].client.ip, client.ip, "the client is recorded");
    // The renewed generation rotates on; the one it replaced is spent.
    let next = rotated(rotate(&store, "alice", &sid, renewed.generation).await);
    assert_eq!(next.generation, renewed.generation + 1);
    assert_eq!(
        rotate(&store, "alice", &sid, s2.generation).await,
        Rotation::Reused,
        "the generation before the renewal is spent"
    );
    // An ended session is never renewed back to life.
    let renewal = RenewRequest::new("alice", &sid, IDLE, &client);
    assert_eq!(store.renew(&renewal).await.unwrap(), None);
    let other = create(&store, "alice").await;
    assert!(store.revoke("alice", &other).await.unwrap());
    let renewal = RenewRequest::new("alice", &other, IDLE, &client);
    assert_eq!(store.renew(&renewal).await.unwrap(), None);
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
}

/// Scenario: replay within grace changes nothing.
pub async fn replay_within_grace_changes_nothing(store: Store) {
    let sid = create(&store, "alice").await;
    let first = rotated(rotate(&store, "alice", &sid, 1).await);
    for wait in [0, 1, 100] {
        sleep_ms(wait).await;
        assert_eq!(
            rotate(&store, "alice", &sid, 1).await,
            Rotation::Replayed(first.clone()),
            "the spent token {wait} ms later gets the same successor"
        );
    }
    let list = store.list("alice").await.unwrap();
    assert_eq!(list.len(), 1, "the session did not fork");
    assert_eq!(
        list[0].last_used_at,
        first.rotated_at_ms / 1000,
        "a replay is not a use"
    );
    let next = rotated(rotate(&store, "alice", &sid, 2).await);
    assert_eq!(next.generation, 3, "replays did not advance the generation");
}

/// Scenario: reuse after grace revokes.
pub async fn reuse_after_grace_revokes(store: Store) {
    let sid = create(&store, "alice").await;
    rotated(rotate(&store, "alice", &sid, 1).await);
    sleep_ms(GRACE.as_millis() as u64 + 100).await;
    assert_eq!(rotate(&store, "alice", &sid, 1).await, Rotation::Reused);
    assert!(
        !store.is_live("alice", &sid).await.unwrap(),
        "reuse revokes the session"
    );
    assert_eq!(
        rotate(&store, "alice", &sid, 2).await,
        Rotation::NotFound,
        "the current generation fails too"
    );
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
}

/// No cap (the default): a spent token past any former window still gets
/// the same successor; once that successor was presented, it is reuse and
/// the session ends.
pub async fn replay_until_successor_used(store: Store) {
    let sid = create(&store, "alice").await;
    let first = rotated(rotate_with(&store, "alice", &sid, 1, None, IDLE).await);
    sleep_ms(1100).await;
    assert_eq!(
        rotate_with(&store, "alice", &sid, 1, None, IDLE).await,
        Rotation::Replayed(first.clone()),
        "a retry 1.1 s later gets the same successor"
    );
    rotated(rotate_with(&store, "alice", &sid, 2, None, IDLE).await);
    assert_eq!(
        rotate_with(&store, "alice", &sid, 1, None, IDLE).await,
        Rotation::Reused,
        "its successor was used: reuse"
    );
    assert!(!store.is_live("alice", &sid).await.unwrap(), "revoked");
}

/// A retry racing the successor's first use: one outcome, never a fork.
pub async fn replay_racing_successor_use(store: Store) {
    for _ in 0..20 {
        let sid = create(&store, "alice").await;
        let first = rotated(rotate_with(&store, "alice", &sid, 1, None, IDLE).await);
        let (retry, next) = tokio::join!(
            rotate_with(&store, "alice", &sid, 1, None, IDLE),
            rotate_with(&store, "alice", &sid, 2, None, IDLE)
        );
        let next = rotated(next);
        assert_eq!(next.generation, 3);
        match retry {
            Rotation::Replayed(s) => {
                assert_eq!(s, first, "the same successor");
                rotated(rotate_with(&store, "alice", &sid, 3, None, IDLE).await);
            }
            Rotation::Reused => assert!(!store.is_live("alice", &sid).await.unwrap()),
            other => panic!("a racing retry got {other:?}"),
        }
    }
}

/// Scenario: older generation is reuse.
pub async fn older_generation_is_reuse(store: Store) {
    let sid = create(&store, "alice").await;
    rotated(rotate(&store, "alice", &sid, 1).await);
    rotated(rotate(&store, "alice", &sid, 2).await);
    assert_eq!(
        rotate(&store, "alice", &sid, 1).await,
        Rotation::Reused,
        "generation current-2 is theft even within the grace window"
    );
    assert_eq!(rotate(&store, "alice", &sid, 3).await, Rotation::NotFound);

    let sid = create(&store, "alice").await;
    assert_eq!(
        rotate(&store, "alice", &sid, 2).await,
        Rotation::Reused,
        "a generation never issued is no better"
    );
    assert!(!store.is_live("alice", &sid).await.unwrap());
}

/// Scenario: zero grace is strict.
pub async fn zero_grace_is_strict(store: Store) {
    let sid = create(&store, "alice").await;
    rotated(rotate_with(&store, "alice", &sid, 1, Duration::ZERO, IDLE).await);
    assert_eq!(
        rotate_with(&store, "alice", &sid, 1, Duration::ZERO, IDLE).await,
        Rotation::Reused,
        "grace 0: even a second use right away is theft"
    );
    assert_eq!(
        rotate_with(&store, "alice", &sid, 2, Duration::ZERO, IDLE).await,
        Rotation::NotFound
    );
}

/// Scenario: not found after revoke.
pub async fn not_found_after_revoke(store: Store) {
    let sid = create(&store, "alice").await;
    let other = create(&store, "alice").await;
    assert!(store.revoke("alice", &sid).await.unwrap());
    assert!(
        !store.revoke("alice", &sid).await.unwrap(),
        "revoking twice: false"
    );
    assert!(!store.is_live("alice", &sid).await.unwrap());
    assert_eq!(rotate(&store, "alice", &sid, 1).await, Rotation::NotFound);
    assert_eq!(store.list("alice").await.unwrap().len(), 1);
    rotated(rotate(&store, "alice", &other, 1).await);
}

/// Scenario: not found after revoke all.
pub async fn not_found_after_revoke_all(store: Store) {
    let sids = [
        create(&store, "alice").await,
        create(&store, "alice").await,
        create(&store, "alice").await,
    ];
    let bob = create(&store, "bob").await;
    let mut ended = store.revoke_all("alice").await.unwrap();
    ended.sort();
    let mut expected = sids.to_vec();
    expected.sort();
    assert_eq!(ended, expected, "every session of the user, and no other");
    for sid in &sids {
        assert!(!store.is_live("alice", sid).await.unwrap());
        assert_eq!(rotate(&store, "alice", sid, 1).await, Rotation::NotFound);
    }
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
    assert_eq!(store.revoke_all("alice").await.unwrap(), vec![]);
    assert!(
        store.is_live("bob", &bob).await.unwrap(),
        "another user's session is untouched"
    );
    // The user can log in again right after a logout everywhere.
    let again = create(&store, "alice").await;
    assert!(store.is_live("alice", &again).await.unwrap());
    assert_eq!(store.list("alice").await.unwrap().len(), 1);
    rotated(rotate(&store, "alice", &again, 1).await);
}

/// Scenario: idle ttl expires and rotation renews it.
pub async fn idle_ttl_expires_and_rotation_renews_it(store: Store) {
    let idle = Duration::from_millis(500);
    let (mut s, sid) = new_session("alice");
    s.idle_ttl = idle;
    store.create(&s).await.unwrap();
    let (mut s, unused) = new_session("alice");
    s.idle_ttl = idle;
    store.create(&s).await.unwrap();

    sleep_ms(300).await;
    rotated(rotate_with(&store, "alice", &sid, 1, GRACE, idle).await);
    sleep_ms(300).await;
    assert!(
        store.is_live("alice", &sid).await.unwrap(),
        "renewed by the rotation"
    );
    assert!(
        !store.is_live("alice", &unused).await.unwrap(),
        "unused for longer than its idle lifetime"
    );
    assert_eq!(
        rotate_with(&store, "alice", &unused, 1, GRACE, idle).await,
        Rotation::NotFound
    );
    assert_eq!(store.list("alice").await.unwrap().len(), 1);

    sleep_ms(400).await;
    assert!(!store.is_live("alice", &sid).await.unwrap());
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
    assert_eq!(
        rotate_with(&store, "alice", &sid, 2, GRACE, idle).await,
        Rotation::NotFound
    );
}

/// Scenario: absolute lifetime is never extended.
pub async fn absolute_lifetime_is_never_extended(store: Store) {
    let sid = SessionId::random();
    let created = store
        .create(&NewSession::new(
            "alice",
            sid.clone(),
            Duration::from_millis(600),
            IDLE,
        ))
        .await
        .unwrap();
    let abs = created.first.absolute_expiry_ms;
    assert_eq!(
        created.first.expires_at_ms, abs,
        "the idle expiry is capped by the absolute one"
    );
    let s = rotated(rotate(&store, "alice", &sid, 1).await);
    assert_eq!(s.expires_at_ms, abs, "a rotation renews only up to the end");
    assert_eq!(s.absolute_expiry_ms, abs);
    sleep_ms(300).await;
    let s = rotated(rotate(&store, "alice", &sid, 2).await);
    assert_eq!(s.expires_at_ms, abs);
    sleep_ms(abs.saturating_sub(now_ms()) + 100).await;
    assert!(!store.is_live("alice", &sid).await.unwrap());
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
    assert_eq!(rotate(&store, "alice", &sid, 3).await, Rotation::NotFound);
}

/// Scenario: max sessions evicts the oldest.
pub async fn max_sessions_evicts_the_oldest(store: Store) {
    let mut sids: Vec<SessionId> = Vec::new();
    for i in 0..3 {
        let (mut s, sid) = new_session("alice");
        s.max_sessions = 2;
        let evicted = store.create(&s).await.unwrap().evicted;
        if i < 2 {
            assert_eq!(evicted, vec![]);
        } else {
            assert_eq!(evicted, vec![sids[0].clone()], "the oldest is evicted");
        }
        sids.push(sid);
        sleep_ms(3).await;
    }
    let listed: Vec<SessionId> = store
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(listed, sids[1..]);
    assert!(!store.is_live("alice", &sids[0]).await.unwrap());
    assert_eq!(
        rotate(&store, "alice", &sids[0], 1).await,
        Rotation::NotFound
    );

    let (mut s, newest) = new_session("alice");
    s.max_sessions = 1;
    assert_eq!(
        store.create(&s).await.unwrap().evicted,
        sids[1..],
        "oldest first"
    );
    let listed: Vec<SessionId> = store
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(listed, vec![newest]);

    // "No limit" must not wrap around into "evict everything".
    let (mut s, unlimited) = new_session("carol");
    s.max_sessions = usize::MAX;
    assert_eq!(store.create(&s).await.unwrap().evicted, vec![]);
    assert!(store.is_live("carol", &unlimited).await.unwrap());
}

/// With one session per user, logins in the same millisecond (or at once
/// from many tasks) always keep the newest of each: never does a login
/// evict the session it just created.
pub async fn new_session_is_never_evicted(store: Store) {
    for round in 0..20 {
        let user = format!("dana{round}");
        let (mut s1, a) = new_session(&user);
        let (mut s2, b) = new_session(&user);
        s1.max_sessions = 1;
        s2.max_sessions = 1;
        let (r1, r2) = tokio::join!(store.create(&s1), store.create(&s2));
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        // Whichever ran second evicted the other, never itself.
        assert!(!r1.evicted.contains(&a), "round {round}: a evicted itself");
        assert!(!r2.evicted.contains(&b), "round {round}: b evicted itself");
        let live: Vec<SessionId> = store
            .list(&user)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.sid)
            .collect();
        assert_eq!(live.len(), 1, "round {round}: {live:?}");
        let evicted: Vec<&SessionId> = r1.evicted.iter().chain(&r2.evicted).collect();
        assert_eq!(evicted.len(), 1, "round {round}: exactly one eviction");
        assert_ne!(evicted[0], &live[0]);
    }
}

/// Scenario: users are isolated.
pub async fn users_are_isolated(store: Store) {
    let alice = create(&store, "alice").await;
    assert!(
        !store.revoke("bob", &alice).await.unwrap(),
        "bob cannot revoke alice's session"
    );
    assert!(!store.is_live("bob", &alice).await.unwrap());
    assert_eq!(rotate(&store, "bob", &alice, 1).await, Rotation::NotFound);
    assert_eq!(store.revoke_all("bob").await.unwrap(), vec![]);
    assert_eq!(store.list("bob").await.unwrap(), vec![]);
    assert!(store.is_live("alice", &alice).await.unwrap());
    rotated(rotate(&store, "alice", &alice, 1).await);
}

/// Scenario: hostile user ids stay isolated.
pub async fn hostile_user_ids_stay_isolated(store: Store) {
    // "YQ" is "a" in base64url: an id must not collide with another's encoding.
    let ids = [
        "a",
        "a}",
        "{a}",
        "}a{",
        "~YQ",
        "~",
        "a:s:b",
        "a}:s:b",
        "a b",
        " a",
        "é",
        "ünï😀",
        "{",
        "}",
        ":",
        "",
        "user{with}tag",
        "a:i",
        "a:rb",
        "f:{a}",
        "*",
        "a\r\nDEL *",
    ];
    let mut sids = Vec::new();
    for id in ids {
        sids.push(create(&store, id).await);
    }
    for (i, id) in ids.iter().enumerate() {
        let listed: Vec<SessionId> = store
            .list(id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.sid)
            .collect();
        assert_eq!(
            listed,
            vec![sids[i].clone()],
            "{id:?} sees exactly its own session"
        );
        let other = &sids[(i + 1) % sids.len()];
        assert!(!store.is_live(id, other).await.unwrap(), "{id:?}");
        assert!(
            !store.revoke(id, other).await.unwrap(),
            "{id:?} cannot revoke another's session"
        );
    }
    assert_eq!(store.revoke_all("a").await.unwrap(), vec![sids[0].clone()]);
    for (i, id) in ids.iter().enumerate().skip(1) {
        assert!(
            store.is_live(id, &sids[i]).await.unwrap(),
            "{id:?} survives revoke_all(\"a\")"
        );
    }
    rotated(rotate(&store, "a}", &sids[1], 1).await);
    assert_eq!(rotate(&store, "{a}", &sids[1], 2).await, Rotation::NotFound);
    assert!(store.is_live("a}", &sids[1]).await.unwrap());

    // Attempt counters of hostile accounts and networks are isolated too.
    let attempt = |account, network| attempt(account, network, 1, 10);
    assert_eq!(
        store.begin_login(&attempt("a}", "n")).await.unwrap(),
        Admission::Allowed
    );
    assert!(throttled(
        store.begin_login(&attempt("a}", "n")).await.unwrap()
    ));
    for (account, network) in [("a", "n"), ("~YQ", "n"), ("a}", "m"), ("a", "}:n")] {
        assert_eq!(
            store.begin_login(&attempt(account, network)).await.unwrap(),
            Admission::Allowed,
            "{account:?} from {network:?}"
        );
    }
}

/// A login attempt of `account` from `network`, with these limits in a minute.
pub fn attempt<'a>(
    account: &'a str,
    network: &'a str,
    per_network: u32,
    per_account: u32,
) -> LoginAttempt<'a> {
    let mut a = LoginAttempt::new(account, network, Duration::from_secs(60));
    a.max_per_network = per_network;
    a.max_per_account = per_account;
    a
}

/// Whether an admission refused with a `retry_after` within the minute.
pub fn throttled(a: Admission) -> bool {
    matches!(a, Admission::Throttled { retry_after } if (1..=60).contains(&retry_after))
}

/// Attempts are counted, not failures: the limit-th attempt is admitted and
/// the next refused, even before any of them reported back; a success clears
/// the pair, an undecided attempt is taken back.
pub async fn login_attempts_are_counted_before_the_check(store: Store) {
    let a = attempt("acct", "203.0.113.0/24", 3, 30);
    for _ in 0..3 {
        assert_eq!(store.begin_login(&a).await.unwrap(), Admission::Allowed);
    }
    assert!(
        throttled(store.begin_login(&a).await.unwrap()),
        "the 4th attempt"
    );
    store.end_login(&a, AttemptEnd::Succeeded).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            store.begin_login(&a).await.unwrap(),
            Admission::Allowed,
            "cleared by a success"
        );
    }
    assert!(throttled(store.begin_login(&a).await.unwrap()));
    store.end_login(&a, AttemptEnd::Undecided).await.unwrap();
    assert_eq!(
        store.begin_login(&a).await.unwrap(),
        Admission::Allowed,
        "one taken back"
    );
    assert!(throttled(store.begin_login(&a).await.unwrap()));
    // A refused attempt is not counted: it does not lengthen the lockout.
    for _ in 0..20 {
        assert!(throttled(store.begin_login(&a).await.unwrap()));
    }
    store.end_login(&a, AttemptEnd::Succeeded).await.unwrap();
    assert_eq!(store.begin_login(&a).await.unwrap(), Admission::Allowed);
}

/// Scenario: parallel login attempts never exceed the limit.
pub async fn parallel_login_attempts_never_exceed_the_limit(store: Store) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .begin_login(&attempt("victim", "198.51.100.0/24", 5, 50))
                .await
                .unwrap()
        });
    }
    let mut allowed = 0;
    while let Some(r) = tasks.join_next().await {
        if r.unwrap() == Admission::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 5,
        "exactly the limit of 60 parallel attempts get through"
    );
}

/// Scenario: login limits per network and account.
pub async fn login_limits_per_network_and_account(store: Store) {
    // An attacker's network is locked out; the user's own network is not.
    let attacker = attempt("ada", "198.51.100.0/24", 2, 5);
    let user = attempt("ada", "203.0.113.0/24", 2, 5);
    assert_eq!(
        store.begin_login(&attacker).await.unwrap(),
        Admission::Allowed
    );
    assert_eq!(
        store.begin_login(&attacker).await.unwrap(),
        Admission::Allowed
    );
    assert!(throttled(store.begin_login(&attacker).await.unwrap()));
    assert_eq!(
        store.begin_login(&user).await.unwrap(),
        Admission::Allowed,
        "another network"
    );
    store.end_login(&user, AttemptEnd::Succeeded).await.unwrap();
    // Spread over networks, guesses hit the account-wide ceiling (5): two
    // counted from the attacker's network, three more from others.
    for n in 0..3 {
        let network = format!("192.0.{n}.0/24");
        assert_eq!(
            store
                .begin_login(&attempt("ada", &network, 2, 5))
                .await
                .unwrap(),
            Admission::Allowed
        );
    }
    assert!(
        throttled(
            store
                .begin_login(&attempt("ada", "192.0.9.0/24", 2, 5))
                .await
                .unwrap()
        ),
        "the account-wide ceiling"
    );
    assert_eq!(
        store
            .begin_login(&attempt("bob", "192.0.9.0/24", 2, 5))
            .await
            .unwrap(),
        Admission::Allowed,
        "per account"
    );
}

/// The account-wide ceiling reached from many networks refuses every new
/// network, the right password included, but not a device that logged in to
/// the account before: it is counted per device, with the per-network limit.
pub async fn known_devices_are_counted_on_their_own(store: Store) {
    for n in 0..300 {
        let network = format!("10.{}.{}.0/24", n / 256, n % 256);
        let _ = store
            .begin_login(&attempt("ada", &network, 5, 50))
            .await
            .unwrap();
    }
    assert!(
        throttled(
            store
                .begin_login(&attempt("ada", "203.0.113.0/24", 5, 50))
                .await
                .unwrap()
        ),
        "a new network meets the account-wide ceiling"
    );
    let mut device = attempt("ada", "203.0.113.0/24", 5, 50);
    device.device = Some("phone");
    for _ in 0..5 {
        assert_eq!(
            store.begin_login(&device).await.unwrap(),
            Admission::Allowed,
            "a known device is not kept out"
        );
    }
    assert!(
        throttled(store.begin_login(&device).await.unwrap()),
        "and is limited on its own"
    );
    store
        .end_login(&device, AttemptEnd::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        store.begin_login(&device).await.unwrap(),
        Admission::Allowed
    );
    let mut other = device;
    other.device = Some("laptop");
    assert_eq!(
        store.begin_login(&other).await.unwrap(),
        Admission::Allowed,
        "each device has its own count"
    );
}

/// Password spraying: one network across many accounts meets its own
/// ceiling; other networks and known devices on it are unaffected.
pub async fn one_network_across_accounts_is_capped(store: Store) {
    let spray = |account| {
        let mut a = attempt(account, "198.51.100.0/24", 5, 50);
        a.max_per_client_network = 10;
        a
    };
    let accounts: Vec<String> = (0..30).map(|i| format!("user{i}")).collect();
    let allowed = {
        let mut n = 0;
        for account in &accounts {
            if store.begin_login(&spray(account)).await.unwrap() == Admission::Allowed {
                n += 1;
            }
        }
        n
    };
    assert_eq!(allowed, 10, "the network's ceiling across accounts");
    let mut elsewhere = spray("user29");
    elsewhere.network = "203.0.113.0/24";
    assert_eq!(
        store.begin_login(&elsewhere).await.unwrap(),
        Admission::Allowed
    );
    let mut device = spray("user29");
    device.device = Some("phone");
    assert_eq!(
        store.begin_login(&device).await.unwrap(),
        Admission::Allowed,
        "a known device on the sprayed network"
    );
    // A success takes its attempt back from the network's count.
    let fresh = spray("user0");
    store
        .end_login(&fresh, AttemptEnd::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        store.begin_login(&spray("user30")).await.unwrap(),
        Admission::Allowed
    );
    assert!(throttled(
        store.begin_login(&spray("user31")).await.unwrap()
    ));
}

/// An attempt refused by one counter is counted on none: the network's
/// refusal does not eat into the account's budget elsewhere.
pub async fn a_refused_attempt_counts_nowhere(store: Store) {
    let mut first = attempt("kim", "198.51.100.0/24", 5, 1);
    first.max_per_client_network = 1;
    let mut second = attempt("lee", "198.51.100.0/24", 5, 1);
    second.max_per_client_network = 1;
    assert_eq!(store.begin_login(&first).await.unwrap(), Admission::Allowed);
    assert!(throttled(store.begin_login(&second).await.unwrap()));
    assert_eq!(
        store
            .begin_login(&attempt("lee", "203.0.113.0/24", 5, 1))
            .await
            .unwrap(),
        Admission::Allowed,
        "lee's account-wide count (limit 1) was not touched by the refused attempt"
    );
}

/// Scenario: login window resets.
pub async fn login_window_resets(store: Store) {
    let mut a = attempt("carl", "n", 2, 20);
    a.window = Duration::from_millis(400);
    assert_eq!(store.begin_login(&a).await.unwrap(), Admission::Allowed);
    sleep_ms(250).await;
    assert_eq!(store.begin_login(&a).await.unwrap(), Admission::Allowed);
    assert_eq!(
        store.begin_login(&a).await.unwrap(),
        Admission::Throttled { retry_after: 1 },
        "the window is not extended by later attempts"
    );
    sleep_ms(250).await;
    assert_eq!(
        store.begin_login(&a).await.unwrap(),
        Admission::Allowed,
        "the window has passed"
    );
}

/// Every way a store ends a session reaches a follower (instant revocation).
pub async fn revocations_reach_followers(store: Store) {
    let follower = Arc::new(Revocations::new(Duration::from_secs(60)));
    store.follow_revocations(follower.clone()).unwrap();
    wait_until(|| follower.is_synced(), "the follower gets in sync").await;
    let revoked = create(&store, "erin").await;
    let all: Vec<SessionId> = vec![create(&store, "erin").await, create(&store, "erin").await];
    let reused = create(&store, "erin").await;
    let live = create(&store, "erin").await;
    store.revoke("erin", &revoked).await.unwrap();
    rotated(rotate_with(&store, "erin", &reused, 1, Duration::ZERO, IDLE).await);
    assert_eq!(
        rotate_with(&store, "erin", &reused, 1, Duration::ZERO, IDLE).await,
        Rotation::Reused
    );
    let (mut s, newest) = new_session("erin");
    s.max_sessions = 3; // evicts the oldest live one: `all[0]`
    let evicted = store.create(&s).await.unwrap().evicted;
    assert_eq!(evicted, vec![all[0].clone()]);
    wait_until(
        || {
            [&revoked, &reused, &all[0]]
                .iter()
                .all(|s| follower.contains(s))
        },
        "revoke, reuse and eviction reach the follower",
    )
    .await;
    assert!(
        !follower.contains(&live) && !follower.contains(&all[1]) && !follower.contains(&newest)
    );
    store.revoke_all("erin").await.unwrap();
    wait_until(
        || {
            [&all[1], &live, &newest]
                .iter()
                .all(|s| follower.contains(s))
        },
        "logout everywhere reaches the follower",
    )
    .await;
    assert!(follower.is_synced());
}

/// Waits until `cond` holds, failing after 5 s with `what`.
pub async fn wait_until(cond: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        sleep_ms(2).await;
    }
}

/// A `Reissue` over `store` with reuse grace `grace`, logging anyone in
/// (the credentials are the user id).
pub fn reissue_over(store: Store, grace: Duration) -> Reissue<AnyUser> {
    let config = Config::new("test-issuer", "test-audience").reuse_grace(grace);
    let key = Key::hmac("testkit", Algorithm::HS256, &[7; 32]).expect("an HMAC key");
    let keys = KeySet::new(key).expect("a key set");
    Reissue::builder(config, keys, store, AnyUser)
        .build()
        .expect("a Reissue over the store")
}

/// Many concurrent reissues with one refresh token (tabs, retries): every one
/// succeeds with the same new refresh token, and the session advances once.
pub async fn concurrent_reissues_get_one_successor(store: Store) {
    let reissue = reissue_over(store.clone(), Duration::from_secs(10));
    concurrent_reissues(std::slice::from_ref(&reissue), &reissue, store).await;
}

/// 50 concurrent reissues of one refresh token spread over `instances`: all
/// get the same successor, and `check`'s store advanced once.
pub async fn concurrent_reissues(
    instances: &[Reissue<AnyUser>],
    check: &Reissue<AnyUser>,
    store: Store,
) {
    let first = check
        .login("alice".to_owned(), &ClientMeta::default())
        .await
        .unwrap();
    let claims = check.tokens().verify_refresh(&first.refresh_token).unwrap();
    assert_eq!(claims.generation, 1);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let reissue = instances[i % instances.len()].clone();
        let token = first.refresh_token.clone();
        tasks.spawn(async move { reissue.reissue(&token, &ClientMeta::default()).await });
    }
    let mut refresh_tokens = Vec::new();
    while let Some(result) = tasks.join_next().await {
        refresh_tokens.push(
            result
                .unwrap()
                .expect("every concurrent reissue succeeds")
                .refresh_token,
        );
    }
    assert_eq!(refresh_tokens.len(), 50);
    assert!(
        refresh_tokens.iter().all(|t| *t == refresh_tokens[0]),
        "all receive the same refresh token"
    );
    assert_ne!(refresh_tokens[0], first.refresh_token);
    let next = check.tokens().verify_refresh(&refresh_tokens[0]).unwrap();
    assert_eq!(next.generation, 2, "the generation advanced by exactly one");
    // The store agrees: generation 2 is current (a second advance would make it spent).
    let s = rotated(rotate(&store, "alice", &claims.sid, 2).await);
    assert_eq!(s.generation, 3);
}

/// Scenario: reissue after grace is theft.
pub async fn reissue_after_grace_is_theft(store: Store) {
    let reissue = reissue_over(store, Duration::ZERO);
    let first = reissue
        .login("alice".to_owned(), &ClientMeta::default())
        .await
        .unwrap();
    let second = reissue
        .reissue(&first.refresh_token, &ClientMeta::default())
        .await
        .unwrap();
    let err = reissue
        .reissue(&first.refresh_token, &ClientMeta::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidToken(TokenRejection::ReuseDetected)),
        "{err:?}"
    );
    let err = reissue
        .reissue(&second.refresh_token, &ClientMeta::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidToken(TokenRejection::SessionRevoked)),
        "{err:?}"
    );
}

/// A token a few generations ahead of the store, minted after the store's
/// newest state, is what a failover that lost rotations leaves behind: the
/// session goes on from it, and its predecessors are spent.
pub async fn ahead_within_tolerance_is_a_lost_write(store: Store) {
    let sid = create(&store, "alice").await;
    let s2 = rotated(rotate(&store, "alice", &sid, 1).await);
    // The client rotated to 5 on a primary that died before its replica had
    // generations 3..5; the store (the promoted replica) is at 2.
    let minted = s2.rotated_at_ms / 1000 * 1000;
    let s6 = rotated(rotate_ahead(&store, &sid, 5, minted, 8).await);
    assert_eq!(
        s6.generation, 6,
        "the session goes on from the client's token"
    );
    assert_eq!(
        rotate_ahead(&store, &sid, 5, minted, 8).await,
        Rotation::Replayed(s6.clone()),
        "a retry of the same token is a grace replay"
    );
    rotated(rotate(&store, "alice", &sid, 6).await);
    assert_eq!(
        rotate(&store, "alice", &sid, 2).await,
        Rotation::Reused,
        "what the store had is older now: theft"
    );
    assert!(!store.is_live("alice", &sid).await.unwrap());
}

/// Scenario: ahead beyond tolerance is theft.
pub async fn ahead_beyond_tolerance_is_theft(store: Store) {
    let sid = create(&store, "alice").await;
    assert_eq!(
        rotate_ahead(&store, &sid, 1 + 9, now_ms(), 8).await,
        Rotation::Reused,
        "nine generations ahead with a tolerance of eight"
    );
    assert!(!store.is_live("alice", &sid).await.unwrap());
    let sid = create(&store, "alice").await;
    assert_eq!(
        rotate_ahead(&store, &sid, 2, now_ms(), 0).await,
        Rotation::Reused,
        "no tolerance: any token ahead is theft"
    );
    let sid = create(&store, "alice").await;
    rotated(rotate_ahead(&store, &sid, 1 + 8, now_ms(), 8).await);
}

/// A token ahead of the store but minted before the store's newest rotation
/// cannot be a lost write: the store has moved on since (e.g. a thief's
/// rotation after the failover). It is theft, and ends the session.
pub async fn ahead_but_older_than_the_store_is_theft(store: Store) {
    let sid = create(&store, "alice").await;
    sleep_ms(1100).await;
    let s2 = rotated(rotate(&store, "alice", &sid, 1).await);
    let before = s2.rotated_at_ms / 1000 * 1000 - 1000;
    assert_eq!(
        rotate_ahead(&store, &sid, 4, before, 8).await,
        Rotation::Reused
    );
    assert!(!store.is_live("alice", &sid).await.unwrap());
}

/// Scenario: 20 tasks racing one DPoP proof (one key and `jti`), as
/// instances racing a copied proof would: exactly one is accepted. Another
/// proof, or the same digest of another user, is not affected.
pub async fn racing_proofs_are_accepted_once(store: Store) {
    let ttl = Duration::from_secs(60);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.spawn(async move { store.first_use("alice", "proof-1", ttl).await });
    }
    let mut accepted = 0;
    while let Some(answer) = tasks.join_next().await {
        if answer.unwrap().expect("the store answers") {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1, "exactly one of the racing proofs is accepted");
    assert!(!store.first_use("alice", "proof-1", ttl).await.unwrap());
    assert!(store.first_use("alice", "proof-2", ttl).await.unwrap());
    assert!(store.first_use("bob", "proof-1", ttl).await.unwrap());
}

/// Scenario: a proof is remembered for its TTL (the store's clock), then
/// forgotten: the proof itself is then too old to pass its `iat` check.
pub async fn proofs_are_forgotten_after_their_ttl(store: Store) {
    let ttl = Duration::from_millis(300);
    assert!(store.first_use("alice", "proof", ttl).await.unwrap());
    assert!(!store.first_use("alice", "proof", ttl).await.unwrap());
    sleep_ms(400).await;
    assert!(store.first_use("alice", "proof", ttl).await.unwrap());
}
