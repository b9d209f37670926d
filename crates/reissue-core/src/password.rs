//! Password hashing for any user store (feature `password`): argon2id on
//! tokio's blocking pool, with a bounded queue, and the same work and the
//! same answer for an unknown account as for a wrong password.
//!
//! [`Authenticator`](crate::Authenticator) asks that an unknown account and a
//! wrong password give the same error in the same time. [`PasswordHasher`]
//! does the timing part: pass it the stored hash, or `None` when the account
//! does not exist, and it does the same argon2 work either way.
//!
//! ```
//! use reissue_core::password::{Argon2Params, PasswordHasher, Verified};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> reissue_core::Result<()> {
//! // Cheap parameters for the example; use the default (OWASP) in an app.
//! let hasher = PasswordHasher::builder()
//!     .params(Argon2Params::new(64, 1, 1)?)
//!     .build()?;
//!
//! // At sign-up: store the PHC string.
//! let stored = hasher.hash("correct horse battery").await?;
//! assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
//!
//! // At login: the stored hash, or `None` for an unknown account.
//! assert!(hasher.verify("correct horse battery", Some(&stored)).await?.is_match());
//! assert_eq!(hasher.verify("wrong horse battery", Some(&stored)).await?, Verified::Mismatch);
//! assert_eq!(hasher.verify("correct horse battery", None).await?, Verified::Mismatch);
//! # Ok(())
//! # }
//! ```
//!
//! ## The blocking pool and its bound
//!
//! argon2 is deliberately slow (about 15 ms of one core per hash with the
//! default parameters on a 2-core machine). Every hash runs on tokio's
//! blocking pool, never on an async worker, and at most
//! [`concurrency`](PasswordHasherBuilder::concurrency) of them at once
//! (default: one fewer than the CPUs, at least one), so a burst of logins
//! leaves a core to every other request. Callers beyond that wait, first
//! come first served, in a queue of at most
//! [`queue`](PasswordHasherBuilder::queue) (default 64); past it the call
//! fails at once with [`Error::Overloaded`], which
//! both adapters answer with 503 `temporarily_unavailable` and
//! `Retry-After`. So one client sending logins for random emails fills the
//! queue and gets 503s, but cannot make everyone's login wait without end.
//!
//! Each running hash keeps its argon2 work area (the memory cost, 19 MiB by
//! default) for reuse: allocating it per hash let page faults make a login's
//! time depend on what ran before it.
//!
//! ## Login timing
//!
//! Three cases must cost the same: an unknown account, a wrong password
//! against a hash with the current parameters, and a wrong password against
//! a *legacy* hash (stored with older parameters). The first runs a dummy
//! verify with the current parameters; the second verifies with them.
//! A legacy hash is verified with its own parameters, which cost more or
//! less; when less, the verify is padded with argon2 passes of the difference,
//! so its work, counted in argon2 memory blocks × passes (what argon2's time
//! is proportional to), is the current parameters' work. A right password
//! against a legacy hash gets [`Verified::Rehashed`]: the store saves the new
//! hash, and that user's next logins cost the current parameters.
//!
//! What remains: a legacy hash that costs *more* than the current parameters
//! (they were lowered) cannot be padded down; its account is told apart from
//! an unknown one until its user logs in and is rehashed. Lower parameters
//! only with that in mind.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::{Error, Result};

/// `Retry-After` seconds when the queue is full: it drains in well under a
/// second with the defaults.
const OVERLOADED_RETRY_AFTER: u64 = 1;

/// Calls that may wait for a running hash, unless configured.
const DEFAULT_QUEUE: usize = 64;

/// argon2id cost parameters for new password hashes.
///
/// The default is the OWASP minimum: m = 19456 KiB (19 MiB), t = 2, p = 1.
/// Hashes stored with other parameters still verify, and
/// [`PasswordHasher::verify`] rehashes them with these on a right password.
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
    /// [`Error::Config`] when argon2 refuses them (e.g. memory under
    /// 8 KiB per lane, zero iterations).
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self> {
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

    fn to_argon2(self) -> Result<Params> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| Error::Config(format!("invalid argon2 parameters: {e}")))
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

/// What [`PasswordHasher::verify`] found.
#[derive(Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Verified {
    /// A wrong password, an unknown account (no stored hash), or a stored
    /// hash that is not a usable argon2 PHC string (logged at `error`).
    Mismatch,
    /// The right password; the stored hash has the current parameters.
    Match,
    /// The right password; the stored hash had other parameters. Store this
    /// new hash, made with the current ones, in its place.
    Rehashed(String),
}

impl Verified {
    /// Whether the password was right.
    pub fn is_match(&self) -> bool {
        !matches!(self, Self::Mismatch)
    }
}

impl fmt::Debug for Verified {
    // A new hash is as secret as a stored one: leave it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mismatch => "Mismatch",
            Self::Match => "Match",
            Self::Rehashed(_) => "Rehashed(..)",
        })
    }
}

/// argon2id hashing and verifying for a user store, on tokio's blocking pool
/// with bounded concurrency and a bounded queue (see the
/// [module docs](self)).
///
/// Cloning is cheap: clones share the bound, the queue and the work areas.
/// Its futures are `Send` and need a tokio runtime (actix-web's and axum's
/// both are).
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// One permit per hash that may run.
    running: Arc<Semaphore>,
    /// One permit per hash that may run or wait: `concurrency + queue`.
    admitted: Arc<Semaphore>,
    concurrency: usize,
    queue: usize,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.inner.engine.params)
            .field("concurrency", &self.inner.concurrency)
            .field("queue", &self.inner.queue)
            .finish_non_exhaustive()
    }
}

/// Settings for [`PasswordHasher`]; made by [`PasswordHasher::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PasswordHasherBuilder {
    params: Argon2Params,
    concurrency: Option<usize>,
    queue: usize,
}

impl PasswordHasherBuilder {
    /// argon2id parameters for new hashes; default [`Argon2Params::OWASP`].
    pub fn params(mut self, params: Argon2Params) -> Self {
        self.params = params;
        self
    }

    /// How many hashes (logins, sign-ups, password changes) may run at once.
    /// Default: one fewer than the CPUs (`std::thread::available_parallelism`),
    /// and at least one; 0 counts as 1.
    ///
    /// Every hash keeps one core busy for its whole run, so with one hash
    /// per core a burst of logins takes every core, and every other request
    /// of the process waits for the scheduler (on a 2-core machine `GET /me`
    /// p99 rose 15-25× during 50 concurrent logins; docs/BENCHMARKS.md,
    /// "Login storm"). The default leaves one core to everything else, at
    /// the cost of login throughput. On one CPU the default is one, which
    /// protects nothing.
    pub fn concurrency(mut self, permits: usize) -> Self {
        self.concurrency = Some(permits.max(1));
        self
    }

    /// How many calls may wait for a running hash to finish; default 64.
    /// A call beyond that fails at once with [`Error::Overloaded`] (503 with
    /// `Retry-After`). A full queue is about `queue ÷ concurrency` hashes of
    /// waiting (about 1 s on a 2-core machine with the defaults). 0 refuses
    /// every call that cannot run at once.
    pub fn queue(mut self, waiting: usize) -> Self {
        self.queue = waiting;
        self
    }

    /// The hasher.
    ///
    /// # Errors
    /// [`Error::Config`] when argon2 refuses the parameters.
    pub fn build(self) -> Result<PasswordHasher> {
        let engine = Engine::new(self.params)?;
        let concurrency = self.concurrency.unwrap_or_else(default_concurrency);
        Ok(PasswordHasher {
            inner: Arc::new(Inner {
                engine,
                running: Arc::new(Semaphore::new(concurrency)),
                admitted: Arc::new(Semaphore::new(concurrency.saturating_add(self.queue))),
                concurrency,
                queue: self.queue,
            }),
        })
    }
}

impl Default for PasswordHasher {
    /// The OWASP parameters, the default bound and queue.
    fn default() -> Self {
        Self::builder()
            .build()
            .expect("the OWASP parameters are valid")
    }
}

impl PasswordHasher {
    /// A builder, to change the parameters, the bound or the queue.
    pub fn builder() -> PasswordHasherBuilder {
        PasswordHasherBuilder {
            params: Argon2Params::default(),
            concurrency: None,
            queue: DEFAULT_QUEUE,
        }
    }

    /// The parameters of new hashes.
    pub fn params(&self) -> Argon2Params {
        self.inner.engine.params
    }

    /// How many hashes may run at once; see
    /// [`PasswordHasherBuilder::concurrency`].
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// How many calls may wait; see [`PasswordHasherBuilder::queue`].
    pub fn queue(&self) -> usize {
        self.inner.queue
    }

    /// An argon2id hash of `password` with the current parameters, as a PHC
    /// string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), the format
    /// every argon2 library reads.
    ///
    /// # Errors
    /// [`Error::Overloaded`] when the queue is full; [`Error::Internal`] if
    /// argon2 fails (it does not with valid parameters).
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move |engine| engine.hash(password.as_bytes()))
            .await?
    }

    /// Checks `password` against `stored`, the hash kept for the account,
    /// or `None` when no account matched: then it does the same argon2 work
    /// as a wrong password and answers [`Verified::Mismatch`], so the caller
    /// answers both with the same error in the same time. Hashes of other
    /// argon2 variants, versions and parameters verify; see the
    /// [module docs](self) for their timing.
    ///
    /// # Errors
    /// [`Error::Overloaded`] when the queue is full.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verified> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        self.run(move |engine| engine.verify(password.as_bytes(), stored.as_deref()))
            .await
    }

    /// Runs `work` on the blocking pool once a running permit is free;
    /// refuses at once when `concurrency + queue` calls are already in.
    /// Both permits move into the task, so a cancelled caller cannot free
    /// them while its hash still runs.
    async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&Engine) -> T + Send + 'static,
        T: Send + 'static,
    {
        let admitted = Arc::clone(&self.inner.admitted)
            .try_acquire_owned()
            .map_err(|_| Error::Overloaded {
                retry_after: OVERLOADED_RETRY_AFTER,
            })?;
        let running = Arc::clone(&self.inner.running)
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(format!("password hasher closed: {e}")))?;
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || {
            let _permits = (admitted, running);
            work(&inner.engine)
        })
        .await
        {
            Ok(value) => Ok(value),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the runtime is shutting down.
            Err(e) => Err(Error::unavailable(e)),
        }
    }
}

/// One hash fewer than there are CPUs, and at least one: a core stays free
/// for the requests that do not hash.
fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .saturating_sub(1)
        .max(1)
}

/// The blocking part: hashes and verifies with one set of parameters.
struct Engine {
    params: Argon2Params,
    argon2: Argon2<'static>,
    /// A hash of a random password with the current parameters: unknown
    /// accounts are verified against it so they cost what a wrong password does.
    dummy: OnceLock<String>,
    /// argon2 work areas, reused. Allocating 19 MiB per hash lets glibc map
    /// fresh pages or not depending on which thread ran the previous hash,
    /// and those page faults made a login's time depend on what ran before
    /// it (measurably: an unknown email came out ~1.5x a wrong password).
    /// At most one area per concurrent hash exists, and the permits bound those.
    memory: Mutex<Vec<Vec<Block>>>,
    /// Every argon2 run's (blocks, passes), for the tests of equal work.
    #[cfg(test)]
    runs: Mutex<Vec<(u64, u64)>>,
}

/// What an argon2 run costs: memory blocks × passes. Its time is
/// proportional to that, whatever the variant, version or lanes (this
/// build of argon2 fills lanes one after the other).
fn work(params: &Params) -> u64 {
    u64::try_from(params.block_count()).unwrap_or(u64::MAX) * u64::from(params.t_cost())
}

impl Engine {
    fn new(params: Argon2Params) -> Result<Self> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_argon2()?);
        Ok(Self {
            params,
            argon2,
            dummy: OnceLock::new(),
            memory: Mutex::new(Vec::new()),
            #[cfg(test)]
            runs: Mutex::new(Vec::new()),
        })
    }

    fn hash(&self, password: &[u8]) -> Result<String> {
        let failed = |e: &dyn fmt::Display| Error::Internal(format!("argon2 hashing failed: {e}"));
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.fill(&self.argon2, password, &salt, &mut out)
            .map_err(|e| failed(&e))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| failed(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(self.argon2.params()).map_err(|e| failed(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(phc.to_string())
    }

    fn verify(&self, password: &[u8], stored: Option<&str>) -> Verified {
        let Some(stored) = stored else {
            self.dummy_verify(password);
            return Verified::Mismatch;
        };
        let Ok(parsed) = PasswordHash::new(stored) else {
            tracing::error!("a stored password hash is not a PHC string; refusing the login");
            self.dummy_verify(password);
            return Verified::Mismatch;
        };
        match self.check(password, &parsed) {
            Some((true, _)) => {}
            Some((false, done)) => {
                self.pad(password, done);
                return Verified::Mismatch;
            }
            None => {
                tracing::error!(
                    "a stored password hash is not a usable argon2 hash; refusing the login"
                );
                self.dummy_verify(password);
                return Verified::Mismatch;
            }
        }
        if self.is_current(&parsed) {
            return Verified::Match;
        }
        match self.hash(password) {
            Ok(new) => Verified::Rehashed(new),
            Err(e) => {
                tracing::warn!(error = %e, "could not rehash an outdated password hash");
                Verified::Match
            }
        }
    }

    /// Whether `password` matches, with the hash's own algorithm, version
    /// and parameters, whatever ours are, and the work that took; `None` if
    /// the hash is unusable.
    fn check(&self, password: &[u8], hash: &PasswordHash<'_>) -> Option<(bool, u64)> {
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
        self.fill(&argon2, password, salt, out).ok()?;
        // `Output`'s equality is constant-time.
        Some((Output::new(out).ok()? == expected, work(argon2.params())))
    }

    /// After a verify that took `done` work, runs argon2 for the rest of
    /// what the current parameters cost: whole passes over the current
    /// memory, then one pass over the remaining blocks.
    fn pad(&self, password: &[u8], done: u64) {
        let current = self.argon2.params();
        let Some(mut rest) = work(current).checked_sub(done).filter(|r| *r > 0) else {
            return;
        };
        let blocks = u64::try_from(current.block_count()).unwrap_or(u64::MAX);
        let passes = rest / blocks;
        let salt = [0u8; 16];
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let mut run = |m: u64, t: u64, p: u32| {
            let (Ok(m), Ok(t)) = (u32::try_from(m), u32::try_from(t)) else {
                return;
            };
            if let Ok(params) = Params::new(m, t, p, None) {
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let _ = self.fill(&argon2, password, &salt, &mut out);
            }
        };
        if passes > 0 {
            run(blocks, passes, current.p_cost());
            rest -= passes * blocks;
        }
        // argon2's minimum is 8 blocks; a rest under that is left out.
        if rest >= 8 {
            run(rest, 1, 1);
        }
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

    fn dummy_verify(&self, password: &[u8]) {
        if let Some(dummy) = self.dummy.get() {
            if let Ok(parsed) = PasswordHash::new(dummy) {
                let _ = self.check(password, &parsed);
            }
            return;
        }
        // The first time, computing the dummy hash costs what a verify costs,
        // so this login takes the same time without a second argon2 run.
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        if let Ok(hash) = self.hash(&random) {
            let _ = self.dummy.set(hash);
        }
    }

    /// One argon2 run into `out`, in a reused work area.
    fn fill(
        &self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        #[cfg(test)]
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((
                argon2.params().block_count() as u64,
                u64::from(argon2.params().t_cost()),
            ));
        self.with_memory(argon2.params().block_count(), |memory| {
            argon2.hash_password_into_with_memory(password, salt, out, memory)
        })
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn engine(m: u32, t: u32, p: u32) -> Engine {
        Engine::new(Argon2Params::new(m, t, p).unwrap()).unwrap()
    }

    fn hasher(concurrency: usize, queue: usize) -> PasswordHasher {
        PasswordHasher::builder()
            .params(Argon2Params::new(8, 1, 1).unwrap())
            .concurrency(concurrency)
            .queue(queue)
            .build()
            .unwrap()
    }

    /// The work of the runs since the last call: blocks × passes, summed.
    fn work_done(engine: &Engine) -> u64 {
        engine
            .runs
            .lock()
            .unwrap()
            .drain(..)
            .map(|(m, t)| m * t)
            .sum()
    }

    #[test]
    fn hash_verify_and_upgrade() {
        let old = engine(8, 1, 1);
        let h = old.hash(b"correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        assert_eq!(old.verify(b"correct horse", Some(&h)), Verified::Match);
        assert_eq!(old.verify(b"wrong horse", Some(&h)), Verified::Mismatch);
        assert_eq!(old.verify(b"correct horse", None), Verified::Mismatch);
        assert!(old.dummy.get().is_some());
        assert_eq!(old.verify(b"correct horse", None), Verified::Mismatch);
        assert_eq!(
            old.verify(b"correct horse", Some("garbage")),
            Verified::Mismatch
        );

        // Interoperable with the argon2 crate's own hasher and verifier.
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
            old.verify(b"correct horse", Some(&foreign)),
            Verified::Rehashed(_)
        ));
        assert_eq!(
            old.verify(b"wrong horse", Some(&foreign)),
            Verified::Mismatch
        );
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
            old.verify(b"correct horse", Some(&argon2i)),
            Verified::Rehashed(_)
        ));
        // A work area grown for a larger stored hash is not kept.
        assert!(old.memory.lock().unwrap().iter().all(|m| m.len() == 8));

        let new = engine(16, 2, 1);
        match new.verify(b"correct horse", Some(&h)) {
            Verified::Rehashed(n) => {
                assert!(n.starts_with("$argon2id$v=19$m=16,t=2,p=1$"), "{n}")
            }
            other => panic!("expected a rehash, got {other:?}"),
        }
        assert_eq!(format!("{:?}", Verified::Rehashed(h)), "Rehashed(..)");
    }

    /// 25.14: an unknown account, a wrong password against a current hash
    /// and a wrong password against a legacy (cheaper) hash all do the
    /// current parameters' work, counted in blocks × passes; without the
    /// padding the legacy case did a fraction of it.
    #[test]
    fn a_legacy_hash_costs_what_the_dummy_costs() {
        let current = engine(1024, 3, 1);
        let target = 1024 * 3;
        let legacies = [
            engine(64, 1, 1),   // far cheaper: whole passes plus a partial one
            engine(1024, 1, 1), // fewer passes only
            engine(512, 2, 2),  // other lanes
            engine(200, 5, 1),  // a rest that is not a whole pass
        ];
        let stored_current = current.hash(b"right password").unwrap();
        work_done(&current);
        // The first dummy verify creates the dummy: the same work too.
        for _ in 0..2 {
            assert_eq!(current.verify(b"guess", None), Verified::Mismatch);
            assert_eq!(work_done(&current), target, "unknown account");
        }
        assert_eq!(
            current.verify(b"guess", Some(&stored_current)),
            Verified::Mismatch
        );
        assert_eq!(work_done(&current), target, "current hash");
        for legacy in &legacies {
            let stored = legacy.hash(b"right password").unwrap();
            assert_eq!(current.verify(b"guess", Some(&stored)), Verified::Mismatch);
            let done = work_done(&current);
            assert!(
                done.abs_diff(target) < 8,
                "{stored}: {done} blocks × passes, the dummy does {target}"
            );
            // The right password: verified, then rehashed to the current parameters.
            match current.verify(b"right password", Some(&stored)) {
                Verified::Rehashed(new) => {
                    assert!(new.starts_with("$argon2id$v=19$m=1024,t=3,p=1$"), "{new}");
                    assert_eq!(
                        current.verify(b"right password", Some(&new)),
                        Verified::Match
                    );
                }
                other => panic!("{stored}: expected a rehash, got {other:?}"),
            }
            work_done(&current);
        }
        // Stronger than current (the parameters were lowered): no padding
        // can take work away; the module docs say so.
        let stronger = engine(2048, 3, 1).hash(b"right password").unwrap();
        assert_eq!(
            current.verify(b"guess", Some(&stronger)),
            Verified::Mismatch
        );
        assert_eq!(work_done(&current), 2048 * 3);
    }

    #[test]
    fn params() {
        assert_eq!(
            Argon2Params::default(),
            Argon2Params::new(19456, 2, 1).unwrap()
        );
        assert!(matches!(Argon2Params::new(0, 1, 1), Err(Error::Config(_))));
        assert!(matches!(Argon2Params::new(8, 0, 1), Err(Error::Config(_))));
        let h = hasher(0, 3);
        assert_eq!((h.concurrency(), h.queue()), (1, 3));
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(
            PasswordHasher::default().concurrency(),
            cores.saturating_sub(1).max(1)
        );
        assert!(format!("{h:?}").contains("queue: 3"), "{h:?}");
    }

    /// More calls than permits: all of them run, never more than the bound
    /// at once. Each holds its permit a little while so that they overlap;
    /// nothing here depends on how long anything takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn calls_beyond_the_bound_queue_and_all_run() {
        const BOUND: usize = 2;
        let hasher = hasher(BOUND, 64);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let (hasher, running, most) = (hasher.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    hasher
                        .run(move |engine| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(5));
                            let hash = engine.hash(format!("password {i}").as_bytes());
                            running.fetch_sub(1, Ordering::SeqCst);
                            hash
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap().is_ok());
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=BOUND).contains(&most), "{most} hashes ran at once");
        assert_eq!(hasher.inner.running.available_permits(), BOUND);
        assert_eq!(hasher.inner.admitted.available_permits(), BOUND + 64);
    }

    /// 25.8: with the running hash held and the queue full, the next call is
    /// refused at once with `Overloaded` (503 + Retry-After), and once the
    /// queue drains calls are admitted again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let hasher = hasher(1, 2);
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let started = Arc::new(tokio::sync::Notify::new());
        let blocker = {
            let (hasher, held, started) = (hasher.clone(), held.clone(), started.clone());
            tokio::spawn(async move {
                hasher
                    .run(move |_| {
                        started.notify_one();
                        let _ = held.lock().unwrap().recv();
                    })
                    .await
            })
        };
        started.notified().await;
        // Two wait in the queue...
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.verify("guess", None).await })
            })
            .collect();
        while hasher.inner.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // ...and the next is refused without waiting.
        let refused = hasher.verify("guess", None).await.unwrap_err();
        assert!(matches!(refused, Error::Overloaded { .. }), "{refused:?}");
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.code(), "temporarily_unavailable");
        assert_eq!(refused.retry_after(), Some(OVERLOADED_RETRY_AFTER));
        assert!(matches!(
            hasher.hash("another password").await,
            Err(Error::Overloaded { .. })
        ));
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for w in waiting {
            assert_eq!(w.await.unwrap().unwrap(), Verified::Mismatch);
        }
        assert_eq!(
            hasher.verify("guess", None).await.unwrap(),
            Verified::Mismatch
        );
    }
}
