//! A cache of verified access tokens, so that a client presenting the same
//! token for its whole lifetime pays for signature verification once.
//!
//! Safe by construction: the key is the whole token string, so only a token
//! byte-identical to one that verified can hit; a hit re-checks `exp` (with
//! the leeway); nothing that failed verification is stored. Revocation is not
//! affected: strict mode asks the store on every request, hit or miss.

use std::collections::HashMap;
use std::sync::Mutex;

const SHARDS: usize = 8;

/// One shard: token → (verified value, `exp`).
///
/// Hashed with foldhash (seeded per map), not SipHash: the key is a whole
/// token, hashed on every request. Only verified tokens are inserted, so a
/// client cannot crowd a bucket with keys of its choosing.
type Shard<V> = Mutex<HashMap<Box<str>, (V, u64), foldhash::quality::RandomState>>;

/// A bounded, sharded map from token to verified value.
pub(crate) struct TokenCache<V> {
    shards: Box<[Shard<V>]>,
    per_shard: usize,
}

impl<V: Clone> TokenCache<V> {
    /// A cache for about `capacity` tokens; `None` when `capacity` is 0.
    pub(crate) fn new(capacity: usize) -> Option<Self> {
        (capacity > 0).then(|| Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        })
    }

    fn shard(&self, token: &str) -> &Shard<V> {
        // The last bytes are signature bytes: spread well for real tokens, and a
        // crafted token only chooses which lock its (missing) lookup takes.
        let b = token.as_bytes();
        let pick = b
            .len()
            .checked_sub(1)
            .map_or(0, |i| b[i] as usize + b[i.saturating_sub(1)] as usize);
        &self.shards[pick % SHARDS]
    }

    /// The cached value if `token` verified before and `now <= exp + leeway`.
    pub(crate) fn get(&self, token: &str, now: u64, leeway: u64) -> Option<V> {
        let shard = self.shard(token).lock().unwrap_or_else(|p| p.into_inner());
        match shard.get(token) {
            Some((v, exp)) if now <= exp.saturating_add(leeway) => Some(v.clone()),
            _ => None,
        }
    }

    /// Remembers a verified token until `exp`.
    pub(crate) fn insert(&self, token: &str, value: V, exp: u64, now: u64) {
        let mut shard = self.shard(token).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard {
            shard.retain(|_, (_, e)| *e >= now);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(token.into(), (value, exp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_identical_token_and_only_until_expiry() {
        let cache = TokenCache::new(16).unwrap();
        cache.insert("a.b.c", 7, 100, 50);
        assert_eq!(cache.get("a.b.c", 60, 0), Some(7));
        assert_eq!(cache.get("a.b.x", 60, 0), None);
        assert_eq!(cache.get("a.b.c ", 60, 0), None);
        assert_eq!(cache.get("a.b.c", 101, 0), None, "expired");
        assert_eq!(cache.get("a.b.c", 104, 5), Some(7), "within leeway");
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
