//! A cache of verified access tokens, so that a client presenting the same
//! token for its whole lifetime pays for signature verification once.
//!
//! Safe by construction: only a token byte-identical to one that verified
//! can hit (the whole token is compared); a hit re-checks `exp` (with the
//! leeway); nothing that failed verification is stored. Revocation is not
//! affected: strict mode asks the store on every request, hit or miss.
//!
//! What a hit costs: the hash of the token's last 16 bytes (signature
//! bytes, which differ between any two tokens that verified), one look-up,
//! one comparison of the token, one expiry compare and one `Arc` clone.

use std::collections::HashMap;
use std::sync::Mutex;

const SHARDS: usize = 8;

/// The token's last bytes, the map's key.
const TAIL: usize = 16;

struct Entry<V> {
    token: Box<[u8]>,
    value: V,
    exp: u64,
}

/// One shard: the token's tail → (token, verified value, `exp`).
///
/// Hashed with foldhash (seeded per map), not SipHash, and over 16 bytes
/// rather than the whole token: this runs on every request. Only verified
/// tokens are inserted, so a client cannot crowd a bucket with keys of its
/// choosing; two verified tokens with the same tail (which takes a
/// signature collision) only evict each other.
type Shard<V> = Mutex<HashMap<u128, Entry<V>, foldhash::quality::RandomState>>;

/// A bounded, sharded map from token to verified value.
pub(crate) struct TokenCache<V> {
    shards: Box<[Shard<V>]>,
    per_shard: usize,
}

fn tail(token: &[u8]) -> u128 {
    let mut t = [0u8; TAIL];
    let n = token.len().min(TAIL);
    t[TAIL - n..].copy_from_slice(&token[token.len() - n..]);
    u128::from_le_bytes(t)
}

impl<V: Clone> TokenCache<V> {
    /// A cache for about `capacity` tokens; `None` when `capacity` is 0.
    pub(crate) fn new(capacity: usize) -> Option<Self> {
        (capacity > 0).then(|| Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        })
    }

    fn shard(&self, tail: u128) -> &Shard<V> {
        // The last bytes are signature bytes: spread well for real tokens, and a
        // crafted token only chooses which lock its (missing) lookup takes.
        let [.., a, b] = tail.to_le_bytes();
        &self.shards[(usize::from(a) + usize::from(b)) % SHARDS]
    }

    /// The cached value if `token` verified before and `now <= exp + leeway`.
    pub(crate) fn get(&self, token: &[u8], now: u64, leeway: u64) -> Option<V> {
        let key = tail(token);
        let shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        match shard.get(&key) {
            Some(e) if now <= e.exp.saturating_add(leeway) && *e.token == *token => {
                Some(e.value.clone())
            }
            _ => None,
        }
    }

    /// Remembers a verified token until `exp`.
    pub(crate) fn insert(&self, token: &str, value: V, exp: u64, now: u64) {
        let key = tail(token.as_bytes());
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard {
            shard.retain(|_, e| e.exp >= now);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        let token = token.as_bytes().into();
        shard.insert(key, Entry { token, value, exp });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_identical_token_and_only_until_expiry() {
        let cache = TokenCache::new(16).unwrap();
        cache.insert("a.b.c", 7, 100, 50);
        assert_eq!(cache.get(b"a.b.c", 60, 0), Some(7));
        assert_eq!(cache.get(b"a.b.x", 60, 0), None);
        assert_eq!(cache.get(b"a.b.c ", 60, 0), None);
        assert_eq!(cache.get(b"a.b.c", 101, 0), None, "expired");
        assert_eq!(cache.get(b"a.b.c", 104, 5), Some(7), "within leeway");
    }

    #[test]
    fn a_token_with_the_same_tail_is_a_miss() {
        let cache = TokenCache::new(16).unwrap();
        let tail = "s".repeat(TAIL);
        let verified = format!("header.payload.{tail}");
        cache.insert(&verified, 1, 100, 0);
        assert_eq!(cache.get(verified.as_bytes(), 1, 0), Some(1));
        let forged = format!("header.forged.{tail}");
        assert_eq!(cache.get(forged.as_bytes(), 1, 0), None);
        assert_eq!(cache.get(tail.as_bytes(), 1, 0), None, "the tail alone");
    }

    #[test]
    fn stays_bounded() {
        let cache = TokenCache::new(SHARDS * 4).unwrap();
        for i in 0..10_000 {
            cache.insert(&format!("token-{i}"), i, u64::MAX, 0);
        }
        let total: usize = cache.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= SHARDS * 4, "{total}");
        assert!(TokenCache::<u8>::new(0).is_none());
    }
}
