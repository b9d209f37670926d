//! The store behind Sentinel (a primary, its replica and three sentinels,
//! started once for this test binary): the whole store suite.

#[path = "support/deploy.rs"]
mod deploy;
mod suite;
mod support;

use reissue_core::store::Deployment;

suite::store_suite!(sentinel, |prefix| {
    super::suite::redis_store(&super::deploy::Sentinel::shared().url(), &prefix).await
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_is_found_with_its_replica() {
    let set = deploy::Sentinel::shared();
    let store = suite::redis_store(&set.url(), "found:").await;
    assert_eq!(store.deployment(), Deployment::Sentinel);
    assert_eq!(store.replica_acks(), 1, "revocations wait for the replica");
}
