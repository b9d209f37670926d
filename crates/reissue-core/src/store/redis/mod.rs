//! The Redis store, on fred. Every operation that touches more than one key,
//! or reads then writes, is one Lua script (EVALSHA): atomic under any
//! concurrency and across any number of application instances, and one round
//! trip per operation.
//!
//! One layout on every deployment (one server, Sentinel, Cluster). A user's
//! keys and the revocation log they write to share one hash slot: the user's
//! *bucket*, `{b<n>}`, n a hash of the user id modulo the bucket count (256
//! by default), so that every script touches one slot and runs on a cluster
//! as on one server:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `reissue:{b<n>}u:<user>` | string | all of the user's sessions, packed (`lua/records.lua` has the format): generation, times, request id, login country, client |
//! | `reissue:{b<n>}:rv` | sorted set | the bucket's revocation log: ended sessions by the time they ended; also its sharded pub/sub channel |
//! | `reissue:{b<n>}:rv:ak:<sid>` | set | strict mode: the instances that have an ended session in their revocation set (`leases.rs`) |
//! | `reissue:{lease}:holders` | sorted set | strict mode: the instances holding a lease on the feed, by the store time it ends |
//! | `reissue:f:{<account digest>}` | string | login attempts on an account, from all networks |
//! | `reissue:f:{<account digest>}:<network>` | string | login attempts on an account from one network |
//!
//! Every key has a TTL: a user's key lives until the latest idle expiry of
//! its sessions (rounded up to a step), renewed by reissues; a log keeps an
//! entry for the access-token lifetime.
//!
//! Time is Redis's own (`TIME` inside each script), so instances whose clocks
//! differ apply the same rotation rules. Revocations (logout, logout-all,
//! forced logout, reuse detection) are acknowledged only once a replica has
//! them (`WAIT`), where the deployment has replicas: a failover then cannot
//! undo them (DESIGN.md, "Failover").
//!
//! The files: `builder.rs` connects and checks the deployment, `layout.rs`
//! names the keys, `record.rs` reads the records and the replies, `store.rs`
//! runs the operations, `scripts.rs` loads `lua/`; `nodes.rs` routes a
//! script to its primary (and waits for replicas), `feed.rs` follows the
//! revocation logs (and holds strict mode's lease), `leases.rs` waits for
//! the lease holders' acknowledgements, `health.rs` answers `reissue-admin health`.

mod builder;
mod feed;
mod health;
mod layout;
mod leases;
mod nodes;
mod record;
#[cfg(feature = "fuzzing")]
pub(crate) use record::{decode_client, encode_client, expiries, successor};
mod scripts;
mod store;

pub use builder::{Deployment, Eviction, RedisStoreBuilder};
pub use health::Replication;
use record::{array, int, text};
pub use store::RedisStore;

/// Raw access to what a [`RedisStore`] keeps, for tests, benchmarks and
/// operators' tools: the fred pools and the names of a user's keys. Writing
/// through a pool can break what the store promises (a session edited by
/// hand, a key without a TTL); reading is safe.
pub mod dangerous {
    use fred::prelude::Pool;

    use super::RedisStore;
    use super::nodes::Nodes;

    /// The fred pool of one server or Sentinel deployment, e.g. to measure
    /// memory. On a cluster, a pool to the first primary found at connect:
    /// use [`pool_for`] for a key.
    pub fn pool(store: &RedisStore) -> &Pool {
        &store.first_pool
    }

    /// The fred pool of one server or Sentinel deployment; on a cluster, the
    /// pool of the primary serving `key`'s slot.
    pub fn pool_for(store: &RedisStore, key: &str) -> Option<Pool> {
        match &*store.nodes {
            Nodes::Single { pool, .. } => Some(pool.clone()),
            Nodes::Cluster(c) => c.node_for(key).ok().map(|n| n.pool.clone()),
        }
    }

    /// `reissue:{b<n>}u:<user>`: the key holding all of a user's sessions.
    pub fn user_key(store: &RedisStore, user_id: &str) -> String {
        store.keys_of(user_id).user
    }

    /// Strict mode's lease holders (one key for the deployment).
    pub fn lease_key(store: &RedisStore) -> String {
        store.lease_key()
    }

    /// The revocation log of a user's bucket, and the channel it is
    /// published on.
    pub fn revocation_log_key(store: &RedisStore, user_id: &str) -> String {
        store.keys_of(user_id).log
    }
}
