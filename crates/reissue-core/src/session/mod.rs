//! The session model: login, reissue with rotation and reuse detection,
//! logout, forced logout, over a [`RefreshStore`](crate::store::RefreshStore); login throttling
//! in `throttle.rs`.

mod reissue;
mod throttle;

pub use reissue::{Reissue, ReissueBuilder, TokenPair};
