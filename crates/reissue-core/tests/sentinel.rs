//! The store behind Sentinel (a primary, its replica and three sentinels,
//! started once for this test binary): the whole store suite.

mod support;

use reissue_core::store::Deployment;
use reissue_core::testkit as suite;
use support::{deploy, redis_store};

reissue_core::store_suite!(sentinel, |prefix| {
    redis_store(&deploy::Sentinel::shared().url(), &prefix).await
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_is_found_with_its_replica() {
    let set = deploy::Sentinel::shared();
    let store = redis_store(&set.url(), "found:").await;
    assert_eq!(store.deployment(), Deployment::Sentinel);
    assert_eq!(store.replica_acks(), 1, "revocations wait for the replica");
}

/// What waiting for the replica costs here: revocations (always acknowledged
/// where there is a replica) and rotations with and without
/// `acknowledged_rotations`. Prints the figures docs/OPERATIONS.md quotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_cost_one_replica_round_trip() {
    use reissue_core::SessionId;
    use reissue_core::store::{ClientMeta, RedisStore, RotateRequest, Rotation, SessionStore};
    use std::time::{Duration, Instant};
    let set = deploy::Sentinel::shared();
    let plain = redis_store(&set.url(), "cost:").await;
    let acked = RedisStore::builder(set.url())
        .key_prefix("cost:")
        .acknowledged_rotations(true)
        .connect()
        .await
        .map(std::sync::Arc::new)
        .unwrap();
    let client = ClientMeta::default();
    let pct = |mut v: Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
    };
    let mut figures = Vec::new();
    for (name, store) in [("rotation", &plain), ("acknowledged rotation", &acked)] {
        let sid = suite::create(&(store.clone() as suite::Store), "cost").await;
        let mut took = Vec::new();
        for g in 1..=200u64 {
            let r = RotateRequest::new("cost", &sid, g, Duration::ZERO, suite::IDLE, &client);
            let t = Instant::now();
            assert!(matches!(
                store.rotate(&r).await.unwrap(),
                Rotation::Rotated(_)
            ));
            took.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        figures.push((name, pct(took.clone(), 0.5), pct(took, 0.99)));
    }
    let mut took = Vec::new();
    for _ in 0..200 {
        let sid = SessionId::random();
        let s =
            reissue_core::store::NewSession::new("cost", sid.clone(), suite::LIFETIME, suite::IDLE);
        plain.create(&s).await.unwrap();
        let t = Instant::now();
        assert!(plain.revoke("cost", &sid).await.unwrap());
        took.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    figures.push((
        "revocation (acknowledged)",
        pct(took.clone(), 0.5),
        pct(took, 0.99),
    ));
    for (name, p50, p99) in figures {
        println!("SENTINEL {name}: p50 {p50:.2} ms, p99 {p99:.2} ms");
    }
}
