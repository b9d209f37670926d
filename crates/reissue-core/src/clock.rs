//! The one clock of this instance. Session and rotation times are the
//! store's (see [`RefreshStore`](crate::store::RefreshStore)); this clock
//! stamps access tokens and times what stays on this instance.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The instance's clock, Unix milliseconds: what access tokens are stamped
/// with. Replaceable for tests that give instances skewed clocks.
pub(crate) type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
