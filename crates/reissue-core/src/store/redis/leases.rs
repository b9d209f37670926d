//! Strict mode's acknowledged revocations: a call that ended sessions
//! returns once every instance holding a lease on the feed has them in its
//! revocation set (it acknowledged them, `lua/ack.lua`), or once that
//! instance's lease has run out in the store (DESIGN.md, "Strict revocation
//! by leases").
//!
//! The holders are read after the sessions ended (`lua/holders.lua`): an
//! instance granted a lease later catches up with the logs before its lease
//! counts (`feed.rs`), so it has them without being waited for. Each round
//! asks which of the holders still owe an acknowledgement (`lua/acked.lua`,
//! in the bucket's slot) and which of those still hold their lease; a holder
//! that renews goes on being waited for, one whose lease ended is not.

use std::time::{Duration, Instant};

use fred::types::Value;

use super::feed::ack_key;
use super::{RedisStore, array, text};
use crate::{Error, Result, SessionId};

/// The longest a call waits for a holder that renews its lease without
/// acknowledging (which its feed's heartbeats make impossible short of a
/// bug), or for a store it cannot read: then it fails with 503, its sessions
/// ended in the store all the same. Beyond two of the longest lease
/// `Config::strict_lease` allows (4 s), so that a stopped holder is waited
/// out, never failed.
pub(super) const ACK_WAIT_CAP: Duration = Duration::from_secs(10);

/// The pause between rounds, doubling up to this.
const MAX_PAUSE: Duration = Duration::from_millis(4);

impl RedisStore {
    /// Waits until every lease holder has acknowledged the ending of `sids`
    /// (all of one bucket, whose log is `log`), or its lease has ended.
    pub(super) async fn confirm_ended(&self, log: &str, sids: &[SessionId]) -> Result<()> {
        if sids.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let keys: Vec<String> = sids.iter().map(|s| ack_key(log, s)).collect();
        let mut pending: Option<Vec<String>> = None;
        let mut pause = Duration::from_millis(1);
        let mut last_error: Option<Error>;
        loop {
            match self.owing(&keys, pending.as_deref()).await {
                Ok(owing) if owing.is_empty() => return Ok(()),
                Ok(owing) => {
                    pending = Some(owing);
                    last_error = None;
                }
                Err(e) => last_error = Some(e),
            }
            if started.elapsed() >= ACK_WAIT_CAP {
                metrics::counter!("reissue_revocations_unacknowledged_total").increment(1);
                tracing::error!(
                    holders = ?pending,
                    "sessions ended in the store, but lease holders did not acknowledge it in time"
                );
                return Err(last_error.unwrap_or_else(|| {
                    Error::unavailable(
                        "instances holding a lease did not acknowledge the revocation",
                    )
                }));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// The holders (of `among`, or all) that still hold their lease and
    /// have not acknowledged every key.
    async fn owing(&self, keys: &[String], among: Option<&[String]>) -> Result<Vec<String>> {
        let ids = |v: Vec<String>| v.into_iter().map(Value::from).collect::<Vec<_>>();
        let holding = |among: Vec<Value>| {
            self.nodes
                .run(&self.scripts.holders, vec![self.lease_key()], among, None)
        };
        let holders = match among {
            // The first round: who holds a lease now.
            None => names(holding(Vec::new()).await?)?,
            Some(among) => names(holding(ids(among.to_vec())).await?)?,
        };
        if holders.is_empty() {
            return Ok(holders);
        }
        let reply = self
            .nodes
            .run(&self.scripts.acked, keys.to_vec(), ids(holders), None)
            .await?;
        names(reply)
    }
}

fn names(reply: Value) -> Result<Vec<String>> {
    Ok(array(reply)?.iter().filter_map(text).collect())
}
