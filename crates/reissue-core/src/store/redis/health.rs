//! What an operator asks of a running store: does every primary answer, and
//! how much does the store hold. Read-only, and never blocking Redis: keys
//! are counted with `SCAN`, not `KEYS`.

use std::time::{Duration, Instant};

use fred::prelude::ClientLike;
use fred::types::Value;

use super::{RedisStore, array, int, text};
use crate::{Error, Result};

/// Keys asked for per `SCAN` step: large enough for few round trips, small
/// enough that no step holds Redis up.
const SCAN_COUNT: &str = "1000";

impl RedisStore {
    /// A `PING` to every primary (one on a single server or behind Sentinel,
    /// each on a cluster): the slowest round trip.
    pub async fn ping(&self) -> Result<Duration> {
        let mut slowest = Duration::ZERO;
        for client in self.nodes.primaries() {
            let start = Instant::now();
            tokio::time::timeout(self.command_timeout, client.ping::<Value>(None))
                .await
                .map_err(|_| Error::unavailable("PING timed out"))?
                .map_err(Error::unavailable)?;
            slowest = slowest.max(start.elapsed());
        }
        Ok(slowest)
    }

    /// How many keys start with the store's prefix: sessions, indexes,
    /// revocation logs and login counters, summed over every primary (`SCAN`
    /// with `MATCH`; a cluster's replicas hold copies and are not counted).
    /// Keys that come or go during the scan may be counted or not.
    pub async fn count_keys(&self) -> Result<u64> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut total = 0u64;
        for client in self.nodes.primaries() {
            let mut cursor = "0".to_owned();
            loop {
                let args = vec![
                    cursor.clone(),
                    "MATCH".to_owned(),
                    pattern.clone(),
                    "COUNT".to_owned(),
                    SCAN_COUNT.to_owned(),
                ];
                let reply: Value = tokio::time::timeout(
                    self.command_timeout,
                    client.custom(fred::cmd!("SCAN"), args),
                )
                .await
                .map_err(|_| Error::unavailable("SCAN timed out"))?
                .map_err(Error::unavailable)?;
                let [next, keys] = <[Value; 2]>::try_from(array(reply)?)
                    .map_err(|_| Error::Internal("unexpected SCAN reply".into()))?;
                total += array(keys)?.len() as u64;
                // A cursor is digits; `int` reads both integer and bulk replies.
                cursor = text(&next).unwrap_or_else(|| int(&next).unwrap_or(0).to_string());
                if cursor == "0" {
                    break;
                }
            }
        }
        Ok(total)
    }
}

/// `prefix` as a literal in a Redis glob pattern.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn a_prefix_is_matched_literally() {
        assert_eq!(glob_escape("reissue-x:"), "reissue-x:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
