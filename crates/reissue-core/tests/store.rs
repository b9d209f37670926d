//! The store suite (`reissue_core::testkit`, as any store's author runs it)
//! on the in-process `MemoryStore` and on the `RedisStore` with one private
//! `redis-server`, plus what only a Redis store has: keys and TTLs,
//! outages, memory per session.

mod support;

use reissue_core::store::dangerous;
use std::time::{Duration, Instant};

use fred::prelude::{LuaInterface, MemoryInterface, Value};
use reissue_core::store::NewSession;
use reissue_core::store::{
    Admission, AttemptEnd, ClientMeta, LoginAttempt, LoginThrottle, MemoryStore, RedisStore,
    RotateRequest, SessionStore,
};
use reissue_core::testkit::*;
use reissue_core::{Country, Error, SessionId};
use support::{RedisServer, redis_store};

reissue_core::store_suite!(memory, |_prefix| std::sync::Arc::new(MemoryStore::new()));
reissue_core::store_suite!(redis, |prefix| {
    redis_store(&RedisServer::shared().url(), &prefix).await
});

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
    let rows: Value = dangerous::pool(store)
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
                // binary (a user's packed sessions): searched as bytes
                values: String::from_utf8_lossy(c[3].as_bytes().unwrap_or_default()).into_owned(),
            }
        })
        .collect()
}

/// One network spraying random accounts makes the store keep a bounded
/// number of counters: its ceiling across accounts (20 here) times the two
/// counters each admitted attempt opens, plus its own; every one with a TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_counters_per_network_are_bounded() {
    let server = RedisServer::shared();
    let store = redis_store(&server.url(), "spray:").await;
    let mut admitted = 0;
    for i in 0..500 {
        let account = format!("random-{i}@example.com");
        let mut a = attempt(&account, "198.51.100.0/24", 5, 50);
        a.max_per_client_network = 20;
        if store.begin_login(&a).await.unwrap() == Admission::Allowed {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 20);
    let keys = dump(&store, "spray:").await;
    assert_eq!(
        keys.len(),
        2 * 20 + 1,
        "pair and account per admitted attempt, and the network's"
    );
    assert!(keys.iter().all(|k| k.pttl > 0));
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
    let sid = create(&(store.clone() as Store), "dave").await;
    rotated(rotate(&(store.clone() as Store), "dave", &sid, 1).await);
    store
        .begin_login(&LoginAttempt::new("eve", "n", Duration::from_secs(300)))
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
        kinds.contains(&"zset") && kinds.contains(&"string") && !kinds.contains(&"hash"),
        "{kinds:?}"
    );
    let users = keys.iter().filter(|k| k.key.contains("}u:")).count();
    let log = keys
        .iter()
        .filter(|k| k.key.starts_with("ttl:{b") && k.key.ends_with("}:rv"))
        .count();
    assert_eq!(
        (keys.len(), users, log),
        (4 + 3 + 1, 4, 1),
        "one key per user holding its sessions, three attempt counters (account and network, \
         account, network) and the revocation log of mallory's bucket"
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
    let sessions: Vec<&Dumped> = keys.iter().filter(|k| k.key.contains("}u:")).collect();
    for s in sessions {
        assert!(
            s.pttl <= (14 * 24 + 1) * 3600 * 1000,
            "{}: the idle lifetime, rounded up to at most an hour",
            s.key
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_fast_with_unavailable_then_recovers() {
    let mut server = RedisServer::start();
    let store: Store = redis_store(&server.url(), "t:").await;
    let sid = create(&store, "alice").await;
    server.kill();

    let deadline = Duration::from_secs(5);
    let client = ClientMeta::default();
    let request = RotateRequest::new("alice", &sid, 1, Duration::ZERO, IDLE, &client);
    let (session, _) = new_session("alice");
    let attempt = LoginAttempt::new("alice", "n", Duration::from_secs(60));
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
        async { fails_fast!("begin_login", store.begin_login(&attempt)) },
        async {
            fails_fast!(
                "end_login",
                store.end_login(&attempt, AttemptEnd::Succeeded)
            )
        },
        async { fails_fast!("revoke_all", store.revoke_all("alice")) },
    );
    let err = Error::Unavailable("x".into());
    assert_eq!((err.status(), err.code()), (503, "temporarily_unavailable"));

    server.restart();
    let started = Instant::now();
    loop {
        let (session, sid) = new_session("alice");
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

/// Bytes a session costs in Redis for a user with one session: MEMORY USAGE
/// of the user's key (its sessions and its index in one).
async fn session_bytes(store: &RedisStore, user_agent: &str) -> u64 {
    let (mut session, _) = new_session("user-123456");
    session.client = ClientMeta::new(
        Some("203.0.113.7".parse().unwrap()),
        Country::new("DE"),
        Some(user_agent),
    );
    store.revoke_all("user-123456").await.unwrap();
    store.create(&session).await.unwrap();
    let client = dangerous::pool(store).next();
    client
        .memory_usage(dangerous::user_key(store, "user-123456"), Some(0))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_memory_usage_per_session() {
    let server = RedisServer::start();
    let store = redis_store(&server.url(), "reissue:").await;
    let curl = session_bytes(&store, "curl/8.5.0").await;
    println!("MEMORY USAGE, short user agent: {curl} B");
    // A browser's user agent is kept as "Firefox 128 / Windows 10", not as
    // its ~80 bytes: a browser session costs what a curl one does. Guarded
    // against growing.
    let firefox =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let browser = session_bytes(&store, firefox).await;
    println!("MEMORY USAGE, browser user agent: {browser} B");
    assert!(curl > 0 && browser > 0);
    assert!(browser <= 200, "{browser} bytes per session");
    assert!(curl <= 200, "{curl} bytes per session");
}

/// The liveness check finds a session's record in the user's key by a plain
/// search for its id, which a client can also put there: an unknown user
/// agent is stored as sent (cut to 48 bytes). An id found only inside
/// another record is not taken for a record of its own, live or ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_session_id_in_another_records_user_agent_is_not_its_record() {
    let server = RedisServer::shared();
    let redis = redis_store(&server.url(), "decoy:").await;
    let store: Store = redis.clone();
    let create_with_agent = |user: &'static str, agent: String| {
        let store = store.clone();
        async move {
            let (mut s, sid) = new_session(user);
            s.client = ClientMeta::new(None, None, Some(&agent));
            store.create(&s).await.unwrap();
            sid
        }
    };

    // a live session, its id in a newer record's agent
    let old = create(&store, "alice").await;
    let decoy = create_with_agent("alice", format!("x {}", old.as_str())).await;
    // an ended session, its id in the agent of the one that replaced it
    let ended = create(&store, "alice").await;
    assert!(store.revoke("alice", &ended).await.unwrap());
    let decoy2 = create_with_agent("alice", format!("y {}", ended.as_str())).await;
    let agents: Vec<String> = store
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.client.user_agent)
        .collect();
    assert!(
        agents.iter().any(|a| a.contains(old.as_str()))
            && agents.iter().any(|a| a.contains(ended.as_str())),
        "the ids are in the user's key: {agents:?}"
    );

    let checks = [
        (&old, true),
        (&decoy, true),
        (&ended, false),
        (&decoy2, true),
    ];
    let batch: Vec<(&str, &SessionId)> = checks.iter().map(|(s, _)| ("alice", *s)).collect();
    let want: Vec<bool> = checks.iter().map(|(_, live)| *live).collect();
    assert_eq!(store.are_live(&batch).await.unwrap(), want);
    for (sid, live) in checks {
        assert_eq!(store.is_live("alice", sid).await.unwrap(), live, "{sid:?}");
    }
}

/// Retries after 1 s, 30 s, 5 min and 2 h (a phone that slept) get the same
/// successor: the memory store on an injected clock. Redis judges by its own
/// TIME, which cannot be moved; its rule has no time bound at all without a
/// cap (the cap is 2^53 ms), shown in real time by the suite's
/// `replay_until_successor_used`.
#[tokio::test]
async fn replay_hours_later_on_an_injected_clock() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let now = Arc::new(AtomicU64::new(1_900_000_000_000));
    let clock = now.clone();
    let store: Store = Arc::new(reissue_core::store::MemoryStore::with_clock(move || {
        clock.load(Ordering::SeqCst)
    }));
    let idle = Duration::from_secs(14 * 24 * 3600);
    let sid = SessionId::random();
    let session = NewSession::new(
        "alice",
        sid.clone(),
        Duration::from_secs(30 * 24 * 3600),
        idle,
    );
    store.create(&session).await.unwrap();
    let first = rotated(rotate_with(&store, "alice", &sid, 1, None, idle).await);
    for secs in [1, 30, 300, 7200] {
        now.store(1_900_000_000_000 + secs * 1000, Ordering::SeqCst);
        assert_eq!(
            rotate_with(&store, "alice", &sid, 1, None, idle).await,
            reissue_core::store::Rotation::Replayed(first.clone()),
            "a retry {secs} s later"
        );
    }
    // a cap in seconds still bounds it
    assert_eq!(
        rotate_with(&store, "alice", &sid, 1, Duration::from_secs(3600), idle).await,
        reissue_core::store::Rotation::Reused,
        "2 h is past a 1 h cap"
    );
}
