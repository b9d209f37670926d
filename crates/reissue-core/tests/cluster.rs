//! The store on a real Redis Cluster of 3 primaries and 3 replicas, started
//! once for this test binary: the whole store suite, and what only a cluster
//! can show (keys of one user on one slot, users spread over every primary,
//! a key of another slot refused loudly, revocations heard from every shard).

mod support;

use reissue_core::store::dangerous;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{LuaInterface, Value};
use reissue_core::Revocations;
use reissue_core::store::{Deployment, RevocationFeed};
use reissue_core::testkit::{Store, create, wait_until};
use support::{deploy, redis_store};

reissue_core::store_suite!(cluster, |prefix| {
    redis_store(&deploy::Cluster::shared().url(), &prefix).await
});

/// Every key of a user hashes to one slot (the user's bucket, with its
/// revocation log); users spread over all three primaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_keys_share_a_slot_and_users_spread_over_every_primary() {
    let cluster = deploy::Cluster::shared();
    let store = redis_store(&cluster.url(), "spread:").await;
    assert_eq!(store.deployment(), Deployment::Cluster);
    assert_eq!(
        store.replica_acks(),
        1,
        "the cluster has replicas: revocations wait for one"
    );
    let mut primaries = HashSet::new();
    for i in 0..48 {
        let user = format!("user-{i}");
        let keys = [
            dangerous::user_key(&store, &user),
            dangerous::revocation_log_key(&store, &user),
        ];
        let owners: HashSet<u16> = keys.iter().map(|k| cluster.primary_of(k)).collect();
        assert_eq!(owners.len(), 1, "{user}: {keys:?} on {owners:?}");
        primaries.extend(owners);
    }
    assert_eq!(primaries.len(), 3, "48 users on {primaries:?}");
}

/// A script that touches a key of another slot than its declared keys is
/// refused by the cluster, loudly, when it declares itself with `#!lua` as
/// the store's scripts do (without it Redis 7.0 lets the key through: the
/// second half shows why the shebang matters). The store's scripts never
/// touch one (the suite runs them all here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_another_slot_fails_loudly() {
    let cluster = deploy::Cluster::shared();
    let store = redis_store(&cluster.url(), "slots:").await;
    let declared = dangerous::user_key(&store, "alice");
    let pool = dangerous::pool_for(&store, &declared).expect("alice's primary");
    let client = pool.next();
    // Another key served by the same primary but in another slot: the
    // cluster must refuse it although it could reach it.
    let mine = cluster.primary_of(&declared);
    let other = (0..10_000)
        .map(|i| format!("slots:other{i}"))
        .find(|k| cluster.primary_of(k) == mine && !same_slot(client, k, &declared))
        .expect("a key of another slot on the same primary");
    let body = "redis.call('SET', KEYS[1], 1); return redis.call('SET', ARGV[1], 1)";
    let result: Result<Value, _> = client
        .eval(
            format!("#!lua\n{body}"),
            vec![declared.clone()],
            vec![other.clone()],
        )
        .await;
    let err = result.expect_err("a key of another slot must fail");
    assert!(
        err.details().contains("do not hash to the same slot"),
        "{err:?}"
    );
    let legacy: Result<Value, _> = client
        .eval(body, vec![declared.clone()], vec![other.clone()])
        .await;
    assert!(
        legacy.is_ok(),
        "without the shebang Redis 7.0 allows it: {legacy:?}"
    );
    // Declaring keys of two slots is refused before anything runs.
    let result: Result<Value, _> = client
        .eval("return 1", vec![declared, other], Vec::<Value>::new())
        .await;
    assert!(
        result
            .expect_err("CROSSSLOT")
            .details()
            .contains("CROSSSLOT")
    );
    // The store's own scripts, for a user on each primary, never are.
    for i in 0..12 {
        let user = format!("u{i}");
        let store: Store = store.clone();
        let sid = create(&store, &user).await;
        assert!(store.is_live(&user, &sid).await.unwrap());
        assert_eq!(store.list(&user).await.unwrap().len(), 1);
        assert_eq!(store.revoke_all(&user).await.unwrap(), vec![sid]);
    }
}

fn same_slot(_client: &fred::prelude::Client, a: &str, b: &str) -> bool {
    fred::util::redis_keyslot(a.as_bytes()) == fred::util::redis_keyslot(b.as_bytes())
}

/// A follower hears of sessions ended on every shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_are_heard_from_every_primary() {
    let cluster = deploy::Cluster::shared();
    let store = redis_store(&cluster.url(), "heard:").await;
    let follower = Arc::new(Revocations::new(Duration::from_secs(60)));
    store.follow_revocations(follower.clone()).unwrap();
    wait_until(|| follower.is_synced(), "the follower gets in sync").await;
    let store: Store = store;
    let mut ended = Vec::new();
    let mut primaries = HashSet::new();
    for i in 0..24 {
        let user = format!("heard-{i}");
        let sid = create(&store, &user).await;
        assert!(store.revoke(&user, &sid).await.unwrap());
        ended.push(sid);
        primaries.insert(cluster.primary_of(&format!("heard:{{b{}}}", bucket_of(&user))));
    }
    assert_eq!(primaries.len(), 3);
    wait_until(
        || ended.iter().all(|s| follower.contains(s)),
        "revocations on all three primaries reach the follower",
    )
    .await;
    // A new follower catches up from every bucket's log.
    let late = Arc::new(Revocations::new(Duration::from_secs(60)));
    store.follow_revocations(late.clone()).unwrap();
    wait_until(|| late.is_synced(), "the late follower gets in sync").await;
    assert!(
        ended.iter().all(|s| late.contains(s)),
        "caught up from every log"
    );
}

fn bucket_of(user: &str) -> u16 {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(user.as_bytes());
    u16::from_be_bytes([d[0], d[1]]) % 256
}
