//! DPoP (RFC 9449): sessions bound to a key the client holds.
//!
//! A login that carries a valid `DPoP` proof binds its session to the proof
//! key's thumbprint (`jkt`, RFC 7638). The binding travels in the session's
//! signed tokens (`cnf.jkt`, RFC 7800), which every successor copies, so it
//! cannot be shed; every reissue, logout and reauthentication of a bound
//! session then needs a fresh proof by that key, checked before anything in
//! the store changes. See docs/DPOP.md.
//!
//! This module checks one proof (`proof.rs`) and holds the settings; the
//! session model decides when a proof is needed, and the store remembers
//! the `jti`s it has accepted ([`ProofReplay`](crate::store::ProofReplay)).

use std::fmt;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::{Error, Origin, Result};

mod proof;

pub use proof::{DpopProof, MAX_PROOF_LEN, ProofRejection};
pub(crate) use proof::{HtuOrigin, Verified, verify};

/// Whether logins bind their sessions to a DPoP key
/// ([`Config::dpop`](crate::Config::dpop)). Whatever the mode, a session
/// bound once stays bound: its reissues and logouts need proofs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DpopMode {
    /// `DPoP` headers are ignored at login: no new session is bound.
    Off,
    /// A login with a valid proof binds its session; one without stays
    /// unbound (the default).
    #[default]
    Optional,
    /// Every session is bound: a login without a proof gets 400
    /// `invalid_dpop_proof`, and an unbound session (from before) cannot be
    /// reissued.
    Required,
}

/// The proof algorithms a server accepts: asymmetric JWS algorithms only.
/// Default ES256 and EdDSA (Ed25519).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DpopAlgorithms(u8);

/// Every algorithm a proof may use, its bit and its name.
const KNOWN: [(Algorithm, u8); 5] = [
    (Algorithm::ES256, 1),
    (Algorithm::EdDSA, 2),
    (Algorithm::ES384, 4),
    (Algorithm::PS256, 8),
    (Algorithm::RS256, 16),
];

impl DpopAlgorithms {
    /// These algorithms; refuses an empty list and any algorithm that is not
    /// one of ES256, ES384, EdDSA, PS256 and RS256 (HMAC never: a proof is
    /// signed by a key the server does not share).
    pub fn new(algorithms: impl IntoIterator<Item = Algorithm>) -> Result<Self> {
        let mut bits = 0;
        for alg in algorithms {
            let Some((_, bit)) = KNOWN.iter().find(|(a, _)| *a == alg) else {
                return Err(Error::Config(format!(
                    "{alg:?} is not a DPoP proof algorithm (ES256, ES384, EdDSA, PS256, RS256)"
                )));
            };
            bits |= bit;
        }
        if bits == 0 {
            return Err(Error::Config(
                "at least one DPoP proof algorithm is needed".into(),
            ));
        }
        Ok(Self(bits))
    }

    /// Whether proofs may be signed with `alg`.
    pub fn contains(self, alg: Algorithm) -> bool {
        KNOWN.iter().any(|(a, bit)| *a == alg && self.0 & bit != 0)
    }
}

impl Default for DpopAlgorithms {
    fn default() -> Self {
        Self(1 | 2)
    }
}

/// The names, space-separated, as the `algs` of a `DPoP` challenge.
impl fmt::Display for DpopAlgorithms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (alg, _) in KNOWN.iter().filter(|(a, _)| self.contains(*a)) {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{alg:?}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DpopAlgorithms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DpopAlgorithms({self})")
    }
}

/// The DPoP settings of a [`Config`](crate::Config).
#[derive(Debug, Clone)]
pub(crate) struct DpopSettings {
    pub(crate) mode: DpopMode,
    pub(crate) algorithms: DpopAlgorithms,
    /// How far a proof's `iat` may lie from now, either way.
    pub(crate) window: Duration,
    /// The origin `htu` names; `None`: the request's `Host`.
    pub(crate) public_origin: Option<Origin>,
}

impl Default for DpopSettings {
    fn default() -> Self {
        Self {
            mode: DpopMode::default(),
            algorithms: DpopAlgorithms::default(),
            window: Duration::from_secs(60),
            public_origin: None,
        }
    }
}

impl DpopSettings {
    /// How long an accepted `jti` is remembered: a proof is acceptable while
    /// its `iat` is within the window of now, so at most twice the window
    /// after it was made (a proof dated ahead by the window, then used when
    /// it is as far behind).
    pub(crate) fn replay_ttl(&self) -> Duration {
        self.window * 2 + Duration::from_secs(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_are_asymmetric_and_named_in_the_challenge() {
        assert_eq!(DpopAlgorithms::default().to_string(), "ES256 EdDSA");
        assert!(DpopAlgorithms::new([Algorithm::HS256]).is_err());
        assert!(DpopAlgorithms::new([]).is_err());
        let es = DpopAlgorithms::new([Algorithm::ES256]).unwrap();
        assert!(es.contains(Algorithm::ES256) && !es.contains(Algorithm::EdDSA));
        assert_eq!(es.to_string(), "ES256");
    }
}
