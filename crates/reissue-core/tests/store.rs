//! One store test suite, written once and run against every `RefreshStore`:
//! the in-process `MemoryStore` and the `RedisStore` on a private
//! `redis-server`. `store_suite!` emits one test per scenario per store, so a
//! failure names both (`memory::reuse_after_grace_revokes`).
//!
//! Scenarios drive time through `now_ms` where the store takes it, and sleep
//! (briefly) only where expiry is the store's own clock (TTLs).

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::prelude::{LuaInterface, MemoryInterface, Value};
use reissue_core::store::{
    ClientMeta, MemoryStore, NewSession, RedisStore, RefreshStore, RotateRequest, Rotation,
    Successor,
};
use reissue_core::{Config, Country, Error, Reissue, SessionId, TokenRejection};
use support::{AnyUser, RedisServer, hs256_keys, now_ms};

type Store = Arc<dyn RefreshStore>;

const IDLE: Duration = Duration::from_secs(60);
const LIFETIME_MS: u64 = 3_600_000;
const GRACE_MS: u64 = 10_000;
const CLAIMS: &str = r#"{"email":"alice@example.com","roles":["user"]}"#;

macro_rules! store_suite {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let store: super::Store = std::sync::Arc::new(super::MemoryStore::new());
                    super::$scenario(store).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let server = super::RedisServer::start();
                    let store: super::Store = super::redis_store(&server.url(), "t:").await;
                    super::$scenario(store).await;
                    drop(server);
                }
            )*
        }
    };
}

store_suite!(
    create_list_is_live,
    rotate_happy_path,
    replay_within_grace_changes_nothing,
    reuse_after_grace_revokes,
    older_generation_is_reuse,
    zero_grace_is_strict,
    not_found_after_revoke,
    not_found_after_revoke_all,
    idle_ttl_expires_and_rotation_renews_it,
    absolute_lifetime_is_never_extended,
    rotation_after_the_idle_lifetime_is_not_found,
    max_sessions_evicts_the_oldest,
    users_are_isolated,
    hostile_user_ids_stay_isolated,
    login_failures_count_reset_and_clear,
    concurrent_reissues_get_one_successor,
    reissue_after_grace_is_theft,
);

async fn redis_store(url: &str, prefix: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::builder(url)
            .key_prefix(prefix)
            .connect()
            .await
            .expect("connect to the test redis"),
    )
}

fn client() -> ClientMeta {
    ClientMeta::new(
        Some("203.0.113.7".parse().unwrap()),
        Country::new("DE"),
        Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    )
}

/// A session of `user` created at `now`, idle lifetime `IDLE`, absolute one hour.
fn new_session(user: &str, now: u64) -> (NewSession, SessionId) {
    let sid = SessionId::random();
    let mut s = NewSession::new(user, sid.clone(), now, now + LIFETIME_MS, IDLE);
    s.client = client();
    s.claims = CLAIMS.to_owned();
    (s, sid)
}

async fn create(store: &Store, user: &str, now: u64) -> SessionId {
    let (s, sid) = new_session(user, now);
    assert_eq!(store.create(&s).await.unwrap(), vec![], "nothing evicted");
    sid
}

async fn rotate_with(
    store: &Store,
    user: &str,
    sid: &SessionId,
    generation: u64,
    now: u64,
    grace_ms: u64,
    idle: Duration,
) -> Rotation {
    let client = ClientMeta::new(Some("198.51.100.1".parse().unwrap()), None, Some("curl/8"));
    let request = RotateRequest::new(
        user,
        sid,
        generation,
        now,
        Duration::from_millis(grace_ms),
        idle,
        &client,
    );
    store.rotate(&request).await.unwrap()
}

async fn rotate(store: &Store, user: &str, sid: &SessionId, generation: u64, now: u64) -> Rotation {
    rotate_with(store, user, sid, generation, now, GRACE_MS, IDLE).await
}

fn rotated(r: Rotation) -> Successor {
    match r {
        Rotation::Rotated(s) => s,
        other => panic!("expected Rotated, got {other:?}"),
    }
}

async fn create_list_is_live(store: Store) {
    let t = now_ms();
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
    let a = create(&store, "alice", t).await;
    let b = create(&store, "alice", t + 1000).await;
    let list = store.list("alice").await.unwrap();
    assert_eq!(
        list.iter().map(|s| &s.sid).collect::<Vec<_>>(),
        vec![&a, &b],
        "oldest first"
    );
    assert_eq!(list[0].created_at, t / 1000);
    assert_eq!(list[0].last_used_at, t / 1000);
    assert_eq!(list[1].created_at, (t + 1000) / 1000);
    assert_eq!(list[0].client, client());
    assert!(store.is_live("alice", &a).await.unwrap());
    assert!(store.is_live("alice", &b).await.unwrap());
    assert!(!store.is_live("alice", &SessionId::random()).await.unwrap());
    assert_eq!(store.list("bob").await.unwrap(), vec![]);
}

async fn rotate_happy_path(store: Store) {
    let t = now_ms();
    let sid = create(&store, "alice", t).await;
    let s2 = rotated(rotate(&store, "alice", &sid, 1, t + 1000).await);
    assert_eq!(s2.generation, 2);
    assert_eq!(s2.rotated_at_ms, t + 1000);
    assert_eq!(
        s2.expires_at_ms,
        t + 1000 + IDLE.as_millis() as u64,
        "the idle lifetime is renewed"
    );
    assert_eq!(s2.absolute_expiry_ms, t + LIFETIME_MS);
    assert_eq!(s2.claims, CLAIMS);
    assert_eq!(s2.login_country, Country::new("DE"));
    let s3 = rotated(rotate(&store, "alice", &sid, 2, t + 2000).await);
    assert_eq!(s3.generation, 3);
    assert_eq!(s3.rotated_at_ms, t + 2000);
    assert_eq!(
        s3.login_country,
        Country::new("DE"),
        "the login country survives rotations"
    );
    let list = store.list("alice").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].created_at, t / 1000);
    assert_eq!(list[0].last_used_at, (t + 2000) / 1000);
    assert_eq!(
        list[0].client.ip,
        Some("198.51.100.1".parse::<IpAddr>().unwrap()),
        "client of the last reissue"
    );
    assert_eq!(list[0].client.country, None);
    assert_eq!(list[0].client.user_agent.as_deref(), Some("curl/8"));
}

async fn replay_within_grace_changes_nothing(store: Store) {
    let t = now_ms();
    let sid = create(&store, "alice", t).await;
    let first = rotated(rotate(&store, "alice", &sid, 1, t).await);
    for dt in [0, 1, 5_000, GRACE_MS] {
        assert_eq!(
            rotate(&store, "alice", &sid, 1, t + dt).await,
            Rotation::Replayed(first.clone()),
            "the spent token {dt} ms later gets the same successor"
        );
    }
    let list = store.list("alice").await.unwrap();
    assert_eq!(list.len(), 1, "the session did not fork");
    assert_eq!(list[0].last_used_at, t / 1000, "a replay is not a use");
    let next = rotated(rotate(&store, "alice", &sid, 2, t + GRACE_MS).await);
    assert_eq!(next.generation, 3, "replays did not advance the generation");
}

async fn reuse_after_grace_revokes(store: Store) {
    let t = now_ms();
    let sid = create(&store, "alice", t).await;
    rotated(rotate(&store, "alice", &sid, 1, t).await);
    assert_eq!(
        rotate(&store, "alice", &sid, 1, t + GRACE_MS + 1).await,
        Rotation::Reused
    );
    assert!(
        !store.is_live("alice", &sid).await.unwrap(),
        "reuse revokes the session"
    );
    assert_eq!(
        rotate(&store, "alice", &sid, 2, t + GRACE_MS + 2).await,
        Rotation::NotFound,
        "the current generation fails too"
    );
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
}

async fn older_generation_is_reuse(store: Store) {
    let t = now_ms();
    let sid = create(&store, "alice", t).await;
    rotated(rotate(&store, "alice", &sid, 1, t).await);
    rotated(rotate(&store, "alice", &sid, 2, t + 1).await);
    assert_eq!(
        rotate(&store, "alice", &sid, 1, t + 2).await,
        Rotation::Reused,
        "generation current-2 is theft even within the grace window"
    );
    assert_eq!(
        rotate(&store, "alice", &sid, 3, t + 3).await,
        Rotation::NotFound
    );

    let sid = create(&store, "alice", t).await;
    assert_eq!(
        rotate(&store, "alice", &sid, 2, t + 1).await,
        Rotation::Reused,
        "a generation never issued is no better"
    );
    assert!(!store.is_live("alice", &sid).await.unwrap());
}

async fn zero_grace_is_strict(store: Store) {
    let t = now_ms();
    let sid = create(&store, "alice", t).await;
    rotated(rotate_with(&store, "alice", &sid, 1, t, 0, IDLE).await);
    assert_eq!(
        rotate_with(&store, "alice", &sid, 1, t, 0, IDLE).await,
        Rotation::Reused,
        "grace 0: even a second use in the same millisecond is theft"
    );
    assert_eq!(
        rotate_with(&store, "alice", &sid, 2, t, 0, IDLE).await,
        Rotation::NotFound
    );
}

async fn not_found_after_revoke(store: Store) {
    let t = now_ms();
    let sid = create(&store, "alice", t).await;
    let other = create(&store, "alice", t).await;
    assert!(store.revoke("alice", &sid).await.unwrap());
    assert!(
        !store.revoke("alice", &sid).await.unwrap(),
        "revoking twice: false"
    );
    assert!(!store.is_live("alice", &sid).await.unwrap());
    assert_eq!(
        rotate(&store, "alice", &sid, 1, t + 1).await,
        Rotation::NotFound
    );
    assert_eq!(store.list("alice").await.unwrap().len(), 1);
    rotated(rotate(&store, "alice", &other, 1, t + 1).await);
}

async fn not_found_after_revoke_all(store: Store) {
    let t = now_ms();
    let sids = [
        create(&store, "alice", t).await,
        create(&store, "alice", t + 1).await,
        create(&store, "alice", t + 2).await,
    ];
    let bob = create(&store, "bob", t).await;
    assert_eq!(store.revoke_all("alice").await.unwrap(), 3);
    for sid in &sids {
        assert!(!store.is_live("alice", sid).await.unwrap());
        assert_eq!(
            rotate(&store, "alice", sid, 1, t + 3).await,
            Rotation::NotFound
        );
    }
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
    assert_eq!(store.revoke_all("alice").await.unwrap(), 0);
    assert!(
        store.is_live("bob", &bob).await.unwrap(),
        "another user's session is untouched"
    );
    // The user can log in again after a logout everywhere.
    let again = create(&store, "alice", t + 4).await;
    rotated(rotate(&store, "alice", &again, 1, t + 5).await);
}

async fn idle_ttl_expires_and_rotation_renews_it(store: Store) {
    let idle = Duration::from_millis(500);
    let t = now_ms();
    let (mut s, sid) = new_session("alice", t);
    s.idle_ttl = idle;
    store.create(&s).await.unwrap();
    let (mut s, unused) = new_session("alice", t);
    s.idle_ttl = idle;
    store.create(&s).await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    rotated(rotate_with(&store, "alice", &sid, 1, now_ms(), GRACE_MS, idle).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.is_live("alice", &sid).await.unwrap(),
        "renewed by the rotation"
    );
    assert!(
        !store.is_live("alice", &unused).await.unwrap(),
        "unused for longer than its idle lifetime"
    );
    assert_eq!(
        rotate_with(&store, "alice", &unused, 1, now_ms(), GRACE_MS, idle).await,
        Rotation::NotFound
    );
    assert_eq!(store.list("alice").await.unwrap().len(), 1);

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!store.is_live("alice", &sid).await.unwrap());
    assert_eq!(store.list("alice").await.unwrap(), vec![]);
    assert_eq!(
        rotate_with(&store, "alice", &sid, 2, now_ms(), GRACE_MS, idle).await,
        Rotation::NotFound
    );
}

async fn absolute_lifetime_is_never_extended(store: Store) {
    let t = now_ms();
    let abs = t + 600;
    // Driven by now_ms: a rotation renews the idle lifetime only up to the end.
    let sid = SessionId::random();
    store
        .create(&NewSession::new("alice", sid.clone(), t, abs, IDLE))
        .await
        .unwrap();
    let s = rotated(rotate(&store, "alice", &sid, 1, t + 100).await);
    assert_eq!(
        s.expires_at_ms, abs,
        "the idle expiry is capped by the absolute one"
    );
    assert_eq!(s.absolute_expiry_ms, abs);
    let s = rotated(rotate(&store, "alice", &sid, 2, abs - 1).await);
    assert_eq!(s.expires_at_ms, abs);
    assert_eq!(
        rotate(&store, "alice", &sid, 3, abs).await,
        Rotation::NotFound
    );
    assert!(!store.is_live("alice", &sid).await.unwrap());

    // Driven by the store's clock: rotations do not keep the session alive.
    let sid = SessionId::random();
    store
        .create(&NewSession::new("bob", sid.clone(), t, abs, IDLE))
        .await
        .unwrap();
    rotated(rotate(&store, "bob", &sid, 1, now_ms()).await);
    tokio::time::sleep(Duration::from_millis(abs.saturating_sub(now_ms()) + 100)).await;
    assert!(!store.is_live("bob", &sid).await.unwrap());
    assert_eq!(store.list("bob").await.unwrap(), vec![]);
    assert_eq!(
        rotate(&store, "bob", &sid, 2, now_ms()).await,
        Rotation::NotFound
    );
}

/// The idle lifetime is judged by the request's clock, like the absolute one,
/// so that both stores agree whatever the clock of the Redis server.
async fn rotation_after_the_idle_lifetime_is_not_found(store: Store) {
    let t = now_ms();
    let idle = IDLE.as_millis() as u64;
    let sid = create(&store, "alice", t).await;
    let s = rotated(rotate(&store, "alice", &sid, 1, t + idle - 1).await);
    assert_eq!(s.expires_at_ms, t + 2 * idle - 1);
    assert_eq!(
        rotate(&store, "alice", &sid, 2, t + 2 * idle - 1).await,
        Rotation::NotFound
    );
    assert!(!store.is_live("alice", &sid).await.unwrap());
}

async fn max_sessions_evicts_the_oldest(store: Store) {
    let t = now_ms();
    let mut sids: Vec<SessionId> = Vec::new();
    for i in 0..3 {
        let (mut s, sid) = new_session("alice", t + i * 1000);
        s.max_sessions = 2;
        let evicted = store.create(&s).await.unwrap();
        if i < 2 {
            assert_eq!(evicted, vec![]);
        } else {
            assert_eq!(evicted, vec![sids[0].clone()], "the oldest is evicted");
        }
        sids.push(sid);
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
        rotate(&store, "alice", &sids[0], 1, t + 3000).await,
        Rotation::NotFound
    );

    let (mut s, newest) = new_session("alice", t + 4000);
    s.max_sessions = 1;
    assert_eq!(store.create(&s).await.unwrap(), sids[1..], "oldest first");
    let listed: Vec<SessionId> = store
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(listed, vec![newest]);

    // "No limit" must not wrap around into "evict everything".
    let (mut s, unlimited) = new_session("carol", t);
    s.max_sessions = usize::MAX;
    assert_eq!(store.create(&s).await.unwrap(), vec![]);
    assert!(store.is_live("carol", &unlimited).await.unwrap());
}

async fn users_are_isolated(store: Store) {
    let t = now_ms();
    let alice = create(&store, "alice", t).await;
    assert!(
        !store.revoke("bob", &alice).await.unwrap(),
        "bob cannot revoke alice's session"
    );
    assert!(!store.is_live("bob", &alice).await.unwrap());
    assert_eq!(
        rotate(&store, "bob", &alice, 1, t + 1).await,
        Rotation::NotFound
    );
    assert_eq!(store.revoke_all("bob").await.unwrap(), 0);
    assert_eq!(store.list("bob").await.unwrap(), vec![]);
    assert!(store.is_live("alice", &alice).await.unwrap());
    rotated(rotate(&store, "alice", &alice, 1, t + 2).await);
}

async fn hostile_user_ids_stay_isolated(store: Store) {
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
        "f:{a}",
        "*",
        "a\r\nDEL *",
    ];
    let t = now_ms();
    let mut sids = Vec::new();
    for id in ids {
        sids.push(create(&store, id, t).await);
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
    assert_eq!(store.revoke_all("a").await.unwrap(), 1);
    for (i, id) in ids.iter().enumerate().skip(1) {
        assert!(
            store.is_live(id, &sids[i]).await.unwrap(),
            "{id:?} survives revoke_all(\"a\")"
        );
    }
    rotated(rotate(&store, "a}", &sids[1], 1, t + 1).await);
    assert_eq!(
        rotate(&store, "{a}", &sids[1], 2, t + 2).await,
        Rotation::NotFound
    );
    assert!(store.is_live("a}", &sids[1]).await.unwrap());

    // Failure counters of hostile accounts are isolated too.
    store
        .record_login_failure("a}", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.login_failures("a").await.unwrap(), None);
    assert_eq!(store.login_failures("~YQ").await.unwrap(), None);
    assert_eq!(
        store.login_failures("a}").await.unwrap().map(|f| f.count),
        Some(1)
    );
}

async fn login_failures_count_reset_and_clear(store: Store) {
    let window = Duration::from_secs(60);
    assert_eq!(store.login_failures("a@x.io").await.unwrap(), None);
    for n in 1..=3 {
        let f = store.record_login_failure("a@x.io", window).await.unwrap();
        assert_eq!(f.count, n);
        assert!((59..=60).contains(&f.retry_after), "{f:?}");
    }
    let f = store
        .login_failures("a@x.io")
        .await
        .unwrap()
        .expect("counted");
    assert_eq!(f.count, 3);
    assert!((59..=60).contains(&f.retry_after), "{f:?}");
    assert_eq!(
        store.login_failures("b@x.io").await.unwrap(),
        None,
        "per account"
    );
    store.clear_login_failures("a@x.io").await.unwrap();
    assert_eq!(store.login_failures("a@x.io").await.unwrap(), None);
    assert_eq!(
        store
            .record_login_failure("a@x.io", window)
            .await
            .unwrap()
            .count,
        1
    );

    // The window starts at the first failure and is not extended by later ones.
    let short = Duration::from_millis(400);
    let f = store.record_login_failure("c@x.io", short).await.unwrap();
    assert_eq!((f.count, f.retry_after), (1, 1));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        store
            .record_login_failure("c@x.io", short)
            .await
            .unwrap()
            .count,
        2
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        store.login_failures("c@x.io").await.unwrap(),
        None,
        "the window has passed"
    );
    assert_eq!(
        store
            .record_login_failure("c@x.io", short)
            .await
            .unwrap()
            .count,
        1
    );
}

fn reissue_over(store: Store, grace: Duration) -> Reissue<AnyUser> {
    let config = Config::new("test-issuer", "test-audience").reuse_grace(grace);
    Reissue::builder(config, hs256_keys(), store, AnyUser)
        .build()
        .unwrap()
}

/// Many concurrent reissues with one refresh token (tabs, retries): every one
/// succeeds with the same new refresh token, and the session advances once.
async fn concurrent_reissues_get_one_successor(store: Store) {
    let reissue = reissue_over(store.clone(), Duration::from_secs(10));
    concurrent_reissues(std::slice::from_ref(&reissue), &reissue, store).await;
}

async fn concurrent_reissues(
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
    let s = rotated(rotate(&store, "alice", &claims.sid, 2, now_ms()).await);
    assert_eq!(s.generation, 3);
}

async fn reissue_after_grace_is_theft(store: Store) {
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

// ---- Redis only ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_instances_concurrent_reissues_get_one_successor() {
    let server = RedisServer::start();
    let a = reissue_over(
        redis_store(&server.url(), "t:").await,
        Duration::from_secs(10),
    );
    let b = reissue_over(
        redis_store(&server.url(), "t:").await,
        Duration::from_secs(10),
    );
    let store: Store = redis_store(&server.url(), "t:").await;
    concurrent_reissues(&[a.clone(), b], &a, store).await;
}

/// Every key under `prefix`: (key, PTTL, type, values joined).
const DUMP: &str = r#"
local out, cursor = {}, '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    local t = redis.call('TYPE', k)['ok']
    local vals = {}
    if t == 'hash' then vals = redis.call('HGETALL', k)
    elseif t == 'zset' then vals = redis.call('ZRANGE', k, 0, -1)
    elseif t == 'string' then vals = {redis.call('GET', k)} end
    table.insert(out, {k, redis.call('PTTL', k), t, table.concat(vals, '\n')})
  end
until cursor == '0'
return out
"#;

struct Dumped {
    key: String,
    pttl: i64,
    kind: String,
    values: String,
}

async fn dump(store: &RedisStore, prefix: &str) -> Vec<Dumped> {
    let rows: Value = store
        .pool()
        .next()
        .eval(DUMP, Vec::<String>::new(), vec![format!("{prefix}*")])
        .await
        .unwrap();
    let Value::Array(rows) = rows else {
        panic!("unexpected {rows:?}")
    };
    rows.into_iter()
        .map(|row| {
            let Value::Array(c) = row else {
                panic!("unexpected {row:?}")
            };
            Dumped {
                key: c[0].as_string().unwrap(),
                pttl: c[1].as_i64().unwrap(),
                kind: c[2].as_string().unwrap(),
                values: c[3].as_string().unwrap_or_default(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_every_key_has_a_ttl_and_no_token_is_stored() {
    let server = RedisServer::start();
    let store = redis_store(&server.url(), "ttl:").await;
    let reissue = reissue_over(store.clone(), Duration::from_secs(10));
    let mut tokens = Vec::new();
    for user in ["alice", "b}ob", "é"] {
        let pair = reissue.login(user.to_owned(), &client()).await.unwrap();
        let next = reissue
            .reissue(&pair.refresh_token, &client())
            .await
            .unwrap();
        tokens.extend([
            pair.refresh_token,
            pair.access_token,
            next.refresh_token,
            next.access_token,
        ]);
    }
    let t = now_ms();
    let sid = create(&(store.clone() as Store), "dave", t).await;
    rotated(rotate(&(store.clone() as Store), "dave", &sid, 1, t).await);
    store
        .record_login_failure("eve@x.io", Duration::from_secs(300))
        .await
        .unwrap();
    reissue
        .login("mallory".to_owned(), &client())
        .await
        .unwrap();
    reissue.logout_all("mallory").await.unwrap();

    let keys = dump(&store, "ttl:").await;
    let kinds: Vec<&str> = keys.iter().map(|k| k.kind.as_str()).collect();
    assert!(
        kinds.contains(&"hash") && kinds.contains(&"zset") && kinds.contains(&"string"),
        "{kinds:?}"
    );
    assert_eq!(
        keys.len(),
        4 * 2 + 1,
        "a session and an index per user, one failure counter"
    );
    for k in &keys {
        assert!(k.pttl > 0, "{} has no TTL ({})", k.key, k.pttl);
        assert!(
            !k.values.contains("eyJ"),
            "{} holds a JWT: {}",
            k.key,
            k.values
        );
        for token in &tokens {
            let signature = token.rsplit('.').next().unwrap();
            assert!(
                !k.values.contains(signature),
                "{} holds a token signature",
                k.key
            );
        }
    }
    let sessions: Vec<&Dumped> = keys.iter().filter(|k| k.kind == "hash").collect();
    for s in sessions {
        assert!(
            s.pttl <= 14 * 24 * 3600 * 1000,
            "{}: the idle lifetime",
            s.key
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_fast_with_unavailable_then_recovers() {
    let mut server = RedisServer::start();
    let store: Store = redis_store(&server.url(), "t:").await;
    let t = now_ms();
    let sid = create(&store, "alice", t).await;
    server.kill();

    let deadline = Duration::from_secs(5);
    let client = ClientMeta::default();
    let request = RotateRequest::new("alice", &sid, 1, now_ms(), Duration::ZERO, IDLE, &client);
    let (session, _) = new_session("alice", now_ms());
    macro_rules! fails_fast {
        ($what:literal, $op:expr) => {{
            let started = Instant::now();
            let result = tokio::time::timeout(Duration::from_secs(15), $op)
                .await
                .expect(concat!($what, " hangs"));
            let took = started.elapsed();
            println!("{}: failed in {took:?}", $what);
            assert!(
                matches!(result, Err(Error::Unavailable(_))),
                "{}: {result:?}",
                $what
            );
            assert!(took < deadline, "{} took {took:?} to fail", $what);
        }};
    }
    fails_fast!("rotate", store.rotate(&request));
    // The others concurrently, each timed on its own.
    tokio::join!(
        async { fails_fast!("create", store.create(&session)) },
        async { fails_fast!("is_live", store.is_live("alice", &sid)) },
        async { fails_fast!("list", store.list("alice")) },
        async { fails_fast!("revoke", store.revoke("alice", &sid)) },
        async { fails_fast!("login_failures", store.login_failures("alice")) },
        async { fails_fast!("clear_login_failures", store.clear_login_failures("alice")) },
    );
    let err = Error::Unavailable("x".into());
    assert_eq!((err.status(), err.code()), (503, "temporarily_unavailable"));

    server.restart();
    let started = Instant::now();
    loop {
        let (session, sid) = new_session("alice", now_ms());
        match store.create(&session).await {
            Ok(_) => {
                assert!(store.is_live("alice", &sid).await.unwrap());
                println!("recovered {:?} after the restart", started.elapsed());
                break;
            }
            Err(Error::Unavailable(_)) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery within 10 s of the restart: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_connect_to_nothing_fails_fast() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    let started = Instant::now();
    let result = RedisStore::builder(url)
        .command_timeout(Duration::from_millis(500))
        .connect()
        .await;
    assert!(matches!(result, Err(Error::Unavailable(_))), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Bytes a session costs in Redis, its index included, for a user with one
/// session (the index is not shared): MEMORY USAGE of both keys.
async fn session_bytes(store: &RedisStore, user_agent: &str) -> (u64, u64) {
    let (mut session, sid) = new_session("user-123456", now_ms());
    session.client = ClientMeta::new(
        Some("203.0.113.7".parse().unwrap()),
        Country::new("DE"),
        Some(user_agent),
    );
    store.revoke_all("user-123456").await.unwrap();
    store.create(&session).await.unwrap();
    let client = store.pool().next();
    let session_key = format!("{}{sid}", store.session_key_base("user-123456"));
    let s: u64 = client.memory_usage(&session_key, Some(0)).await.unwrap();
    let i: u64 = client
        .memory_usage(store.index_key("user-123456"), Some(0))
        .await
        .unwrap();
    (s, i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_memory_usage_per_session() {
    let server = RedisServer::start();
    let store = redis_store(&server.url(), "reissue:").await;
    // Every value within Redis' hash-max-listpack-value (64 B): a compact hash.
    let (s, i) = session_bytes(&store, "curl/8.5.0").await;
    println!(
        "MEMORY USAGE, short user agent: session {s} B + index {i} B = {} B",
        s + i
    );
    assert!(s > 0 && i > 0);
    assert!(s + i < 600, "{} bytes per session", s + i);
    // A browser's user agent is longer than 64 bytes, which turns the hash into
    // a hashtable: several times the memory. Guarded against growing further.
    let firefox =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let (s, i) = session_bytes(&store, firefox).await;
    println!(
        "MEMORY USAGE, browser user agent: session {s} B + index {i} B = {} B",
        s + i
    );
    assert!(s + i < 1200, "{} bytes per session", s + i);
}
