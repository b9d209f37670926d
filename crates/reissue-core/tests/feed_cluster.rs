//! The revocation feed on a real Redis Cluster of its own, while shard
//! channels move under it: a slot migrated to another primary (`CLUSTER
//! SETSLOT ... NODE`), and a planned failover (`CLUSTER FAILOVER` on a
//! replica). Redis unsubscribes the channels of a slot a node no longer
//! serves, and fred drops that notice; the follower's own store sends nothing
//! (no request of its own can hit `MOVED`), so only the feed's heartbeat can
//! notice. After each move, a session of the moved bucket is revoked through
//! another store and must reach the follower.
//!
//! Its own binary: it reshapes a cluster of its own.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reissue_core::store::{RedisStore, RevocationFeed};
use reissue_core::testkit::{Store, create};
use reissue_core::{Revocations, SessionId};
use support::deploy;

const BUCKETS: u16 = 16;
const PREFIX: &str = "fc:";

async fn store(url: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::builder(url)
            .key_prefix(PREFIX)
            .buckets(BUCKETS)
            .command_timeout(Duration::from_millis(600))
            .connect()
            .await
            .expect("connect to the test cluster"),
    )
}

fn bucket_of(user: &str) -> u16 {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(user.as_bytes());
    u16::from_be_bytes([d[0], d[1]]) % BUCKETS
}

fn user_in(bucket: u16, round: &str) -> String {
    (0..)
        .map(|i| format!("{round}-{i}"))
        .find(|u| bucket_of(u) == bucket)
        .unwrap()
}

fn log_key(bucket: u16) -> String {
    format!("{PREFIX}{{b{bucket}}}:rv")
}

fn id_of(port: u16) -> String {
    deploy::cli(port, &["CLUSTER", "MYID"])
}

/// Moves `slot` from `from` to `to`, keys included, and tells every primary.
fn migrate(cluster: &deploy::Cluster, slot: &str, from: u16, to: u16) {
    let (from_id, to_id) = (id_of(from), id_of(to));
    assert_eq!(
        deploy::cli(to, &["CLUSTER", "SETSLOT", slot, "IMPORTING", &from_id]),
        "OK"
    );
    assert_eq!(
        deploy::cli(from, &["CLUSTER", "SETSLOT", slot, "MIGRATING", &to_id]),
        "OK"
    );
    loop {
        let keys = deploy::cli(from, &["CLUSTER", "GETKEYSINSLOT", slot, "100"]);
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        if keys.is_empty() {
            break;
        }
        let port = to.to_string();
        let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
        args.extend(keys);
        assert_eq!(deploy::cli(from, &args), "OK");
    }
    for port in [to, from] {
        assert_eq!(
            deploy::cli(port, &["CLUSTER", "SETSLOT", slot, "NODE", &to_id]),
            "OK"
        );
    }
    for port in cluster.primaries() {
        deploy::cli(port, &["CLUSTER", "SETSLOT", slot, "NODE", &to_id]);
    }
}

/// Waits until `cond` holds, for at most `limit`.
async fn within(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

/// A session of `bucket`, revoked through `revoker`, reaches `follower`.
async fn heard(revoker: &Store, follower: &Revocations, bucket: u16, round: &str) {
    let user = user_in(bucket, round);
    let sid: SessionId = create(revoker, &user).await;
    let revoked = loop {
        // The revoker's first command after the move may meet the move (503).
        match revoker.revoke(&user, &sid).await {
            Ok(r) => break r,
            Err(e) if e.status() == 503 => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{round}: {e:?}"),
        }
    };
    assert!(revoked);
    let took = within(
        Duration::from_secs(3),
        &format!("{round}: the revocation in bucket {bucket} reaches the follower"),
        || follower.contains(&sid),
    )
    .await;
    println!("{round}: heard in {took:?}");
}

/// A slot moved away and a planned failover: the follower's feed notices
/// within its heartbeat and hears the moved bucket's revocations again.
/// Before the fix its heartbeat `PING`s answered, and it stayed in sync with
/// the channel gone until its own traffic happened to meet a `MOVED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_shard_channel_is_noticed_and_heard_again() {
    let cluster = deploy::Cluster::start();
    let follower_store = store(&cluster.url()).await;
    let follower = Arc::new(Revocations::new(Duration::from_secs(60)));
    follower_store.follow_revocations(follower.clone()).unwrap();
    let revoker: Store = store(&cluster.url()).await;
    within(Duration::from_secs(10), "in sync at start", || {
        follower.is_synced()
    })
    .await;
    let bucket = 3;
    heard(&revoker, &follower, bucket, "before").await;

    // A slot migration.
    let log = log_key(bucket);
    let slot = deploy::cli(cluster.primaries()[0], &["CLUSTER", "KEYSLOT", &log]);
    let from = cluster.primary_of(&log);
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    migrate(&cluster, &slot, from, to);
    assert_eq!(cluster.primary_of(&log), to);
    let noticed = within(
        Duration::from_secs(3),
        "the migration noticed by the heartbeat",
        || !follower.is_synced(),
    )
    .await;
    println!("migration: out of sync after {noticed:?}");
    within(
        Duration::from_secs(10),
        "in sync after the migration",
        || follower.is_synced(),
    )
    .await;
    heard(&revoker, &follower, bucket, "migrated").await;

    // A planned failover: the replica of the bucket's primary takes over.
    let primary = cluster.primary_of(&log);
    let replica = cluster.replica_of(primary);
    assert_eq!(deploy::cli(replica, &["CLUSTER", "FAILOVER"]), "OK");
    let started = Instant::now();
    while cluster.primary_of(&log) != replica {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the failover never completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let noticed = within(
        Duration::from_secs(3),
        "the failover noticed by the heartbeat",
        || !follower.is_synced(),
    )
    .await;
    println!("failover: out of sync after {noticed:?}");
    within(
        Duration::from_secs(10),
        "in sync after the failover",
        || follower.is_synced(),
    )
    .await;
    heard(&revoker, &follower, bucket, "failed over").await;
}
