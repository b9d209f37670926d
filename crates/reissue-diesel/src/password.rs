//! argon2id hashing. Everything here is CPU-bound and blocking: callers run it
//! on tokio's blocking pool, never on an async worker thread.

use std::sync::{Mutex, OnceLock, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;

use crate::UserError;

/// argon2id cost parameters for new password hashes.
///
/// The default is the OWASP minimum: m = 19456 KiB (19 MiB), t = 2, p = 1.
/// Hashes stored with other parameters still verify, and are rehashed with
/// these on the user's next successful login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl Argon2Params {
    /// The OWASP minimum for argon2id: m = 19456 KiB, t = 2, p = 1.
    pub const OWASP: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// Parameters: memory in KiB, iterations (time cost), lanes (parallelism).
    ///
    /// # Errors
    /// [`UserError::Config`] when argon2 refuses them (e.g. memory under
    /// 8 KiB per lane, zero iterations).
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, UserError> {
        let params = Self {
            memory_kib,
            iterations,
            parallelism,
        };
        params.to_argon2()?;
        Ok(params)
    }

    /// Memory cost in KiB (`m`).
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Time cost (`t`).
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Lanes (`p`).
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }

    fn to_argon2(self) -> Result<Params, UserError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| UserError::Config(format!("invalid argon2 parameters: {e}")))
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

/// Hashes and verifies with one set of parameters.
pub(crate) struct Hasher {
    params: Argon2Params,
    argon2: Argon2<'static>,
    /// A hash of a random password with the current parameters: unknown
    /// emails are verified against it so they cost what a wrong password does.
    dummy: OnceLock<String>,
    /// argon2 work areas, reused. Allocating 19 MiB per hash lets glibc map
    /// fresh pages or not depending on which thread ran the previous hash,
    /// and those page faults made a login's time depend on what ran before
    /// it (measurably: an unknown email came out ~1.5x a wrong password).
    /// At most one area per concurrent hash exists, and callers bound those.
    memory: Mutex<Vec<Vec<Block>>>,
}

/// What verifying a password found.
pub(crate) enum Verified {
    /// Wrong password, unknown account, or an unreadable stored hash.
    No,
    /// Correct, and the stored hash uses the current parameters.
    Yes,
    /// Correct, and this is a new hash with the current parameters.
    YesRehashed(String),
}

impl Hasher {
    pub(crate) fn new(params: Argon2Params) -> Result<Self, UserError> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_argon2()?);
        Ok(Self {
            params,
            argon2,
            dummy: OnceLock::new(),
            memory: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn params(&self) -> Argon2Params {
        self.params
    }

    /// A PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    pub(crate) fn hash(&self, password: &str) -> Result<String, UserError> {
        self.hash_bytes(password.as_bytes())
    }

    fn hash_bytes(&self, password: &[u8]) -> Result<String, UserError> {
        let failed =
            |e: &dyn std::fmt::Display| UserError::Config(format!("argon2 hashing failed: {e}"));
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let params = self.argon2.params();
        self.with_memory(params.block_count(), |memory| {
            self.argon2
                .hash_password_into_with_memory(password, &salt, &mut out, memory)
        })
        .map_err(|e| failed(&e))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| failed(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(|e| failed(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Checks `password` against `stored`, or, for an unknown account
    /// (`None`), spends the same time and answers [`Verified::No`].
    pub(crate) fn verify(&self, password: &str, stored: Option<&str>) -> Verified {
        let Some(stored) = stored else {
            self.dummy_verify(password);
            return Verified::No;
        };
        let Ok(parsed) = PasswordHash::new(stored) else {
            tracing::error!("a stored password hash is not a PHC string; refusing the login");
            self.dummy_verify(password);
            return Verified::No;
        };
        match self.check(password.as_bytes(), &parsed) {
            Some(true) => {}
            Some(false) => return Verified::No,
            None => {
                tracing::error!(
                    "a stored password hash is not a usable argon2 hash; refusing the login"
                );
                self.dummy_verify(password);
                return Verified::No;
            }
        }
        if self.is_current(&parsed) {
            return Verified::Yes;
        }
        match self.hash(password) {
            Ok(new) => Verified::YesRehashed(new),
            Err(e) => {
                tracing::warn!(error = %e, "could not rehash an outdated password hash");
                Verified::Yes
            }
        }
    }

    /// Whether `password` matches, with the hash's own algorithm, version
    /// and parameters, whatever ours are; `None` if the hash is unusable.
    fn check(&self, password: &[u8], hash: &PasswordHash<'_>) -> Option<bool> {
        let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
        let version = hash
            .version
            .map(Version::try_from)
            .transpose()
            .ok()?
            .unwrap_or_default();
        let params = Params::try_from(hash).ok()?;
        let mut salt = [0u8; 64];
        let salt = hash.salt?.decode_b64(&mut salt).ok()?;
        let expected = hash.hash?;
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = out.get_mut(..expected.len())?;
        let argon2 = Argon2::new(algorithm, version, params);
        self.with_memory(argon2.params().block_count(), |memory| {
            argon2.hash_password_into_with_memory(password, salt, out, memory)
        })
        .ok()?;
        // `Output`'s equality is constant-time.
        Some(Output::new(out).ok()? == expected)
    }

    fn is_current(&self, hash: &PasswordHash<'_>) -> bool {
        hash.algorithm == Algorithm::Argon2id.ident()
            && hash.version == Some(Version::V0x13.into())
            && hash
                .hash
                .is_some_and(|h| h.len() == Params::DEFAULT_OUTPUT_LEN)
            && Params::try_from(hash).is_ok_and(|p| {
                p.m_cost() == self.params.memory_kib
                    && p.t_cost() == self.params.iterations
                    && p.p_cost() == self.params.parallelism
            })
    }

    fn dummy_verify(&self, password: &str) {
        if let Some(dummy) = self.dummy.get() {
            if let Ok(parsed) = PasswordHash::new(dummy) {
                let _ = self.check(password.as_bytes(), &parsed);
            }
            return;
        }
        // The first time, computing the dummy hash costs what a verify costs,
        // so this login takes the same time without a second argon2 run.
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        if let Ok(hash) = self.hash_bytes(&random) {
            let _ = self.dummy.set(hash);
        }
    }

    /// Runs `work` with a reused work area of at least `blocks` blocks.
    fn with_memory<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let pool = || self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        let mut memory = pool().pop().unwrap_or_default();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let result = work(&mut memory);
        // An area grown for a stored hash with larger parameters is freed,
        // not kept: only areas of the current size stay resident.
        if memory.len() == self.argon2.params().block_count() {
            pool().push(memory);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Params {
        Argon2Params::new(8, 1, 1).unwrap()
    }

    #[test]
    fn hash_verify_and_upgrade() {
        let old = Hasher::new(cheap()).unwrap();
        let h = old.hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        assert!(matches!(
            old.verify("correct horse", Some(&h)),
            Verified::Yes
        ));
        assert!(matches!(old.verify("wrong horse", Some(&h)), Verified::No));
        assert!(matches!(old.verify("correct horse", None), Verified::No));
        assert!(old.dummy.get().is_some());
        assert!(matches!(old.verify("correct horse", None), Verified::No));
        assert!(matches!(
            old.verify("correct horse", Some("garbage")),
            Verified::No
        ));

        // Interoperable with the argon2 crate's own hasher and verifier.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let theirs = Argon2::default();
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(theirs.verify_password(b"correct horse", &parsed).is_ok());
        assert!(theirs.verify_password(b"wrong horse", &parsed).is_err());
        let salt = SaltString::encode_b64(&[1; 16]).unwrap();
        let foreign = theirs
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(matches!(
            old.verify("correct horse", Some(&foreign)),
            Verified::YesRehashed(_)
        ));
        assert!(matches!(
            old.verify("wrong horse", Some(&foreign)),
            Verified::No
        ));
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        );
        let argon2i = argon2i
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(matches!(
            old.verify("correct horse", Some(&argon2i)),
            Verified::YesRehashed(_)
        ));
        // A work area grown for a larger stored hash is not kept.
        assert!(old.memory.lock().unwrap().iter().all(|m| m.len() == 8));

        let new = Hasher::new(Argon2Params::new(16, 2, 1).unwrap()).unwrap();
        match new.verify("correct horse", Some(&h)) {
            Verified::YesRehashed(n) => {
                assert!(n.starts_with("$argon2id$v=19$m=16,t=2,p=1$"), "{n}")
            }
            _ => panic!("expected a rehash"),
        }
    }

    #[test]
    fn params() {
        assert_eq!(
            Argon2Params::default(),
            Argon2Params::new(19456, 2, 1).unwrap()
        );
        assert!(matches!(
            Argon2Params::new(0, 1, 1),
            Err(UserError::Config(_))
        ));
        assert!(matches!(
            Argon2Params::new(8, 0, 1),
            Err(UserError::Config(_))
        ));
    }
}
