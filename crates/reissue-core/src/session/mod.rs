//! The session model: login, reissue with rotation and reuse detection,
//! logout, forced logout, over a [`RefreshStore`](crate::store::RefreshStore).

mod reissue;

pub use reissue::{Reissue, ReissueBuilder, TokenPair};
