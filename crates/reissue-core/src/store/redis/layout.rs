//! Where the store keeps what: the key layout. A user's keys and the
//! revocation log they write to share one hash slot, the user's *bucket*
//! `{b<n>}`, n a hash of the user id modulo the bucket count, so that every
//! script touches one slot and runs on a cluster as on one server. The
//! records inside a user's key are [`record`](super::record)'s.

use base64::Engine as _;

use super::RedisStore;
use crate::store::Counter;

impl RedisStore {
    /// The bucket of a user: `{b<n>}`, the hash tag all of its keys share.
    pub(super) fn bucket(&self, user_id: &str) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(user_id.as_bytes());
        let n = u16::from_be_bytes([digest[0], digest[1]]) % self.buckets.max(1);
        format!("{{b{n}}}")
    }

    /// A user's keys, with the bucket hashed once for all of the keys an
    /// operation names.
    pub(super) fn keys_of(&self, user_id: &str) -> UserKeys {
        let bucket = format!("{}{}", self.prefix, self.bucket(user_id));
        UserKeys {
            user: format!("{bucket}u:{}", tag(user_id)),
            log: format!("{bucket}:rv"),
        }
    }

    /// A DPoP proof's key: `reissue:{b<n>}p:<digest>`, in its user's
    /// bucket. The digest (of the proof key and `jti`) is base64url.
    pub(super) fn proof_key(&self, user_id: &str, proof: &str) -> String {
        format!("{}{}p:{}", self.prefix, self.bucket(user_id), tag(proof))
    }

    /// Every bucket's revocation log.
    pub(super) fn revocation_logs(&self) -> Vec<String> {
        (0..self.buckets.max(1))
            .map(|n| format!("{}{{b{n}}}:rv", self.prefix))
            .collect()
    }

    /// Strict mode's lease holders: one key (one slot) for the deployment.
    pub(super) fn lease_key(&self) -> String {
        format!("{}{{lease}}:holders", self.prefix)
    }

    /// A login-attempt counter's key: `f:{<account>}` and the pair and
    /// device counters after it share the account's slot; a network's
    /// counter across accounts is `f:n:{<network>}`, in its own.
    pub(super) fn counter_key(&self, counter: &Counter<'_>) -> String {
        let p = &self.prefix;
        match counter {
            Counter::AccountNetwork { account, network } => {
                format!("{p}f:{{{}}}:{}", tag(account), tag(network))
            }
            Counter::Account(account) => format!("{p}f:{{{}}}", tag(account)),
            Counter::Device { account, device } => {
                format!("{p}f:{{{}}}:d:{}", tag(account), tag(device))
            }
            Counter::Network(network) => format!("{p}f:n:{{{}}}", tag(network)),
        }
    }
}

/// The keys of one user.
pub(super) struct UserKeys {
    /// `reissue:{b<n>}u:<user>`: all of the user's sessions.
    pub(super) user: String,
    /// `reissue:{b<n>}:rv`: the bucket's revocation log, and the channel it
    /// is published on.
    pub(super) log: String,
}

/// A user id or account as it may appear inside a key's hash tag: as it is when
/// it is plainly safe, else base64url behind a `~` (which plain ids never
/// contain), so no id can close the tag or imitate another key.
fn tag(id: &str) -> std::borrow::Cow<'_, str> {
    let plain = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+'));
    if plain {
        id.into()
    } else {
        format!(
            "~{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
        )
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::tag;

    #[test]
    fn hash_tags_cannot_be_escaped() {
        assert_eq!(tag("42"), "42");
        assert_eq!(tag("a@b.io"), "a@b.io");
        for hostile in ["a}b", "{x}", "a:s:b", "", "é", "a b"] {
            let t = tag(hostile);
            assert!(t.starts_with('~'), "{hostile:?} -> {t}");
            assert!(!t.contains(['{', '}', ':']), "{hostile:?} -> {t}");
        }
        assert_ne!(
            tag("~YQ"),
            tag("a"),
            "an id that looks encoded is encoded again"
        );
    }
}
