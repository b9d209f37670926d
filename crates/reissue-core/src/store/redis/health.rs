//! What an operator asks of a running store: does every primary answer, how
//! much does the store hold, and can a replica confirm revocations. Read-only,
//! and never blocking Redis: keys are counted with `SCAN`, not `KEYS`.

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

    /// The replication of every primary (`INFO replication` on each).
    pub async fn replication(&self) -> Result<Vec<Replication>> {
        let mut all = Vec::new();
        for client in self.nodes.primaries() {
            let info: String = tokio::time::timeout(
                self.command_timeout,
                client.custom(fred::cmd!("INFO"), vec!["replication"]),
            )
            .await
            .map_err(|_| Error::unavailable("INFO timed out"))?
            .map_err(Error::unavailable)?;
            let primary = client
                .active_connections()
                .first()
                .map_or_else(|| "?".to_owned(), |s| format!("{}:{}", s.host, s.port));
            all.push(parse_replication(primary, &info));
        }
        Ok(all)
    }
}

/// One primary's replication, as its `INFO replication` tells it: whether
/// a replica can confirm the revocations written there now. A revocation a
/// replica has not confirmed still takes effect, and is counted by
/// `reissue_revocations_unconfirmed_total`, but a failover before a replica
/// has it could undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Replication {
    /// The primary, `host:port` as this store reached it.
    pub primary: String,
    /// Its replicas that are connected and online.
    pub replicas: u32,
    /// How many bytes of its replication stream the furthest behind of those
    /// has not acknowledged (0 without replicas).
    pub behind_bytes: u64,
}

/// `INFO replication`'s `master_repl_offset` and its `slaveN:` lines
/// (`ip=..,port=..,state=online,offset=N,lag=0`).
fn parse_replication(primary: String, info: &str) -> Replication {
    let field = |line: &str, name: &str| {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let mut head = 0u64;
    let mut offsets = Vec::new();
    for line in info.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("master_repl_offset:") {
            head = v.parse().unwrap_or(0);
        } else if let Some((name, rest)) = line.split_once(':')
            && name.starts_with("slave")
            && name[5..].bytes().all(|b| b.is_ascii_digit())
            && field(rest, "state").as_deref() == Some("online")
        {
            offsets.push(
                field(rest, "offset")
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(0),
            );
        }
    }
    Replication {
        primary,
        replicas: offsets.len() as u32,
        behind_bytes: offsets
            .iter()
            .map(|o: &u64| head.saturating_sub(*o))
            .max()
            .unwrap_or(0),
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
    use super::{glob_escape, parse_replication};

    #[test]
    fn replication_counts_online_replicas_and_the_furthest_behind() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:3\r\n\
            slave0:ip=127.0.0.1,port=7001,state=online,offset=900,lag=0\r\n\
            slave1:ip=127.0.0.1,port=7002,state=online,offset=1000,lag=1\r\n\
            slave2:ip=127.0.0.1,port=7003,state=wait_bgsave,offset=0,lag=0\r\n\
            master_failover_state:no-failover\r\nmaster_repl_offset:1000\r\n";
        let r = parse_replication("p:1".into(), info);
        assert_eq!((r.replicas, r.behind_bytes), (2, 100));
        let alone = parse_replication(
            "p:1".into(),
            "role:master\r\nconnected_slaves:0\r\nmaster_repl_offset:5\r\n",
        );
        assert_eq!((alone.replicas, alone.behind_bytes), (0, 0));
    }

    #[test]
    fn a_prefix_is_matched_literally() {
        assert_eq!(glob_escape("reissue-x:"), "reissue-x:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
