//! What the workspace's tests share, in one crate that Cargo sees (a
//! dev-dependency of each crate whose tests use it; never published):
//!
//! - [`RedisServer`]: the one `redis-server` spawner, a server of the test's
//!   own on a free port that dies with the test process, to pause, kill and
//!   restart; [`RedisServer::shared`] once per test binary.
//! - [`deploy`]: a Redis Cluster (3 primaries, 3 replicas) and a Sentinel
//!   set built of those servers, shared per test binary or started to fail.
//! - [`geoip`]: the test country database and its writer.
//! - [`pem`]: the test keys (not secret, test only).
//! - [`apps`]: the tests of the example apps' binaries (`--help`, flags,
//!   SIGHUP), run by both apps with the path of their binary.
//! - [`AnyUser`], [`hs256_keys`], [`now_ms`]: the small parts most core tests
//!   need.
//!
//! The store suite that every `RefreshStore` runs is not here but in
//! reissue-core (`reissue_core::store_suite!`, feature `testkit`), where
//! other stores' authors find it.
#![forbid(unsafe_code)]

pub mod apps;
pub mod deploy;
pub mod geoip;
pub mod redis;

use std::time::{SystemTime, UNIX_EPOCH};

use reissue_core::{Algorithm, Authenticated, Authenticator, Key, KeySet, Result, UserClaims};

pub use redis::RedisServer;

/// Milliseconds since the Unix epoch, as the stores take it.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// Seconds since the Unix epoch.
pub fn now_s() -> u64 {
    now_ms() / 1000
}

/// Logs anyone in: the credentials are the user id.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyUser;

impl Authenticator for AnyUser {
    type Credentials = String;
    type Claims = UserClaims;

    fn account_key(&self, credentials: &String) -> Result<String> {
        Ok(credentials.clone())
    }

    async fn authenticate(&self, user: String) -> Result<Authenticated<UserClaims>> {
        let claims = UserClaims::new(format!("{user}@example.com"), vec!["user".to_owned()]);
        Ok(Authenticated::new(user, claims))
    }
}

/// A 32-byte HS256 test secret.
pub const HS256_SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

/// A one-key HS256 set.
pub fn hs256_keys() -> KeySet {
    KeySet::new(Key::hmac("hs-1", Algorithm::HS256, HS256_SECRET).unwrap()).unwrap()
}

/// The test PEM keys of `keys/` (see its README: not secret, test only),
/// embedded so that tests and benches find them from any working directory.
pub mod pem {
    /// RSA 2048, PKCS#8.
    pub const RSA: &[u8] = include_bytes!("../keys/rsa.pem");
    /// Its public key.
    pub const RSA_PUB: &[u8] = include_bytes!("../keys/rsa.pub.pem");
    /// Another RSA key: the attacker's.
    pub const RSA_ATTACKER: &[u8] = include_bytes!("../keys/rsa-attacker.pem");
    /// EC P-256, PKCS#8.
    pub const EC: &[u8] = include_bytes!("../keys/ec.pem");
    /// Its public key.
    pub const EC_PUB: &[u8] = include_bytes!("../keys/ec.pub.pem");
    /// Another P-256 key: the attacker's.
    pub const EC_ATTACKER: &[u8] = include_bytes!("../keys/ec-attacker.pem");
    /// EC P-384, PKCS#8.
    pub const EC384: &[u8] = include_bytes!("../keys/ec384.pem");
    /// Its public key.
    pub const EC384_PUB: &[u8] = include_bytes!("../keys/ec384.pub.pem");
    /// Ed25519, PKCS#8.
    pub const ED: &[u8] = include_bytes!("../keys/ed25519.pem");
    /// Its public key.
    pub const ED_PUB: &[u8] = include_bytes!("../keys/ed25519.pub.pem");
    /// Another Ed25519 key: the attacker's.
    pub const ED_ATTACKER: &[u8] = include_bytes!("../keys/ed25519-attacker.pem");
}
