//! Tokens: the JWTs themselves. The keys that sign and verify them, the
//! compact-JWS reading that runs before any claim is trusted, the claims
//! both kinds carry, and the codec that issues and verifies them.

mod claims;
mod codec;
pub(crate) mod jws;
pub(crate) mod keys;
pub(crate) mod reserved;

pub use claims::{AccessClaims, Authentication, Claims, Confirmation, RefreshClaims, UserClaims};
pub use codec::{ACCESS_TOKEN_TYPE, MAX_TOKEN_LEN, REFRESH_TOKEN_TYPE, TokenCodec};
pub use keys::{Key, KeySet};
pub use reserved::RESERVED_CLAIMS;
