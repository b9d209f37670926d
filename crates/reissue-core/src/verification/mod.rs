//! Verification: what a protected request costs. The verifier checks an
//! access token (remembering those it verified), and asks whether its
//! session still lives as the revocation mode says: not at all, from what
//! the store's feed told this instance, or in the store itself, with the
//! checks of concurrent requests sent together.

pub(crate) mod gate;
pub(crate) mod live_batch;
pub(crate) mod revocation;
mod token_cache;
pub(crate) mod verifier;

pub use gate::{Access, Admission, Gate, Pending};
pub use revocation::{RevocationMode, Revocations};
pub use verifier::{Identity, Verifier};
