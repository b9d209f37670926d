//! reissue-core's own test helpers. What the workspace's tests share (the
//! Redis servers and deployments, the test keys, a tiny authenticator) is
//! in the `reissue-test-support` crate, re-exported here; the store suite
//! is `reissue_core::testkit`.
//!
//! Each test binary uses a different subset of these.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::sync::Arc;

use reissue_core::Algorithm;
use reissue_core::store::RedisStore;
pub use reissue_test_support::{
    AnyUser, HS256_SECRET, RedisServer, deploy, hs256_keys, now_ms, now_s, pem,
};

/// The Redis store at `url`, under `prefix`.
pub async fn redis_store(url: &str, prefix: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::builder(url)
            .key_prefix(prefix)
            .connect()
            .await
            .expect("connect to the test redis"),
    )
}

/// Whether `alg` signs the same bytes for the same input with the crypto
/// backend this test binary was built with: RSASSA-PSS never does (a random
/// salt), ECDSA only under `rust-crypto` (RFC 6979; aws-lc-rs draws a fresh
/// nonce), everything else always.
pub fn signs_deterministically(alg: Algorithm) -> bool {
    use Algorithm::*;
    match alg {
        PS256 | PS384 | PS512 => false,
        ES256 | ES384 => !cfg!(feature = "aws-lc-rs"),
        _ => true,
    }
}
