//! Signing and verification keys: a set addressed by `kid`, with one active
//! signing key, and its JWKS (RFC 7517).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Validation};

use crate::{Error, Result};

#[cfg(not(any(feature = "rust-crypto", feature = "aws-lc-rs")))]
compile_error!(
    "reissue-core needs a crypto backend: enable the `rust-crypto` or the `aws-lc-rs` feature"
);

/// Installs jsonwebtoken's process-wide crypto provider before its first use.
///
/// jsonwebtoken infers the provider from its own features and, when feature
/// unification turns both on, falls back to one that panics on first use.
/// Installing ours explicitly makes that impossible. An error from
/// `install_default` means a provider is already installed: the application's
/// choice, or ours from an earlier call, and either way not a panic.
fn ensure_provider() {
    #[cfg(feature = "aws-lc-rs")]
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

/// One key: an id (`kid`), its algorithm, and what it can do (sign and verify,
/// or verify only).
pub struct Key {
    kid: String,
    alg: Algorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    /// The public JWK, for asymmetric keys only; an HMAC secret is never published.
    public_jwk: Option<Jwk>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("signs", &self.encoding.is_some())
            .finish_non_exhaustive()
    }
}

impl Key {
    /// An HMAC key (HS256, HS384 or HS512). The secret must be at least as long
    /// as the hash output (RFC 7518 §3.2): 32, 48 or 64 bytes.
    pub fn hmac(kid: impl Into<String>, alg: Algorithm, secret: &[u8]) -> Result<Self> {
        ensure_provider();
        let min = match alg {
            Algorithm::HS256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            other => return Err(Error::Config(format!("{other:?} is not an HMAC algorithm"))),
        };
        if secret.len() < min {
            return Err(Error::Config(format!(
                "an {alg:?} secret must be at least {min} bytes, got {}",
                secret.len()
            )));
        }
        Ok(Self {
            kid: checked_kid(kid.into())?,
            alg,
            encoding: Some(EncodingKey::from_secret(secret)),
            decoding: DecodingKey::from_secret(secret),
            public_jwk: None,
        })
    }

    /// A signing key from a private key in PEM: RSA (`RS*`, `PS*`), EC
    /// (`ES256`, `ES384`, PKCS#8) or Ed25519 (`EdDSA`, PKCS#8).
    pub fn from_private_pem(kid: impl Into<String>, alg: Algorithm, pem: &[u8]) -> Result<Self> {
        ensure_provider();
        let kid = checked_kid(kid.into())?;
        let bad = |e: jsonwebtoken::errors::Error| Error::Config(format!("key `{kid}`: {e}"));
        let encoding = match alg.family() {
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
            AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
            AlgorithmFamily::Hmac => {
                return Err(Error::Config(format!(
                    "key `{kid}`: use Key::hmac for {alg:?}"
                )));
            }
        }
        .map_err(bad)?;
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(bad)?;
        publishable(&mut jwk, &kid);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(bad)?;
        Ok(Self {
            kid,
            alg,
            encoding: Some(encoding),
            decoding,
            public_jwk: Some(jwk),
        })
    }

    /// A verification-only key from a public key in PEM, e.g. a retired signing
    /// key kept so that its tokens stay valid until they expire.
    pub fn from_public_pem(kid: impl Into<String>, alg: Algorithm, pem: &[u8]) -> Result<Self> {
        ensure_provider();
        let kid = checked_kid(kid.into())?;
        let bad = |e: jsonwebtoken::errors::Error| Error::Config(format!("key `{kid}`: {e}"));
        let decoding = match alg.family() {
            AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
            AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
            AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
            AlgorithmFamily::Hmac => {
                return Err(Error::Config(format!(
                    "key `{kid}`: use Key::hmac for {alg:?}"
                )));
            }
        }
        .map_err(bad)?;
        let mut jwk = Jwk::from_decoding_key(&decoding, Some(alg)).map_err(bad)?;
        publishable(&mut jwk, &kid);
        Ok(Self {
            kid,
            alg,
            encoding: None,
            decoding,
            public_jwk: Some(jwk),
        })
    }

    /// A signing key from a PEM private key whose type picks the algorithm:
    /// Ed25519 → `EdDSA`, EC P-256 → `ES256`, RSA of at least 2048 bits →
    /// `RS256`. Its `kid` is its RFC 7638 JWK thumbprint (SHA-256), so the
    /// same key has the same id on every instance and after every restart,
    /// with nothing to configure. Anything else (not PEM, a public key, a
    /// smaller RSA key, another curve or type) is refused with the reason.
    pub fn from_private_pem_detected(pem: &[u8]) -> Result<Self> {
        ensure_provider();
        if !looks_like_pem(pem) {
            return Err(Error::Config("not a PEM file".into()));
        }
        let candidates = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];
        let key = candidates
            .into_iter()
            .find_map(|alg| Self::from_private_pem("pending", alg, pem).ok())
            .ok_or_else(|| {
                Error::Config(
                    "not an Ed25519, P-256 or RSA private key in PKCS#8 or PKCS#1 PEM \
                     (for an `EC PRIVATE KEY`: openssl pkcs8 -topk8 -nocrypt)"
                        .into(),
                )
            })?;
        key.thumbprinted()
    }

    /// A verification-only key from a PEM key of the kinds
    /// [`Key::from_private_pem_detected`] takes, private or public: a
    /// retired signing key. Its `kid` is the thumbprint, the same whichever
    /// half is given.
    pub fn from_pem_detected(pem: &[u8]) -> Result<Self> {
        if !looks_like_pem(pem) {
            return Err(Error::Config("not a PEM file".into()));
        }
        if let Ok(key) = Self::from_private_pem_detected(pem) {
            return Ok(key.verify_only());
        }
        let candidates = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];
        let key = candidates
            .into_iter()
            .find_map(|alg| Self::from_public_pem("pending", alg, pem).ok())
            .ok_or_else(|| {
                Error::Config("not an Ed25519, P-256 or RSA key in PKCS#8 or PKCS#1 PEM".into())
            })?;
        key.thumbprinted()
    }

    /// Checks what a detected key must be (P-256, RSA ≥ 2048) and names it by
    /// its thumbprint.
    fn thumbprinted(mut self) -> Result<Self> {
        let jwk = self
            .public_jwk
            .as_mut()
            .ok_or_else(|| Error::Config("a secret key has no thumbprint".into()))?;
        match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(p) if p.curve != EllipticCurve::P256 => {
                return Err(Error::Config(format!(
                    "EC keys must be on P-256 (ES256), this one is on {:?}",
                    p.curve
                )));
            }
            AlgorithmParameters::RSA(p) => {
                let n = URL_SAFE_NO_PAD
                    .decode(&p.n)
                    .map_err(|_| Error::Config("RSA modulus does not decode".into()))?;
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if bits < 2048 {
                    return Err(Error::Config(format!(
                        "RSA keys must have at least 2048 bits, this one has about {bits}"
                    )));
                }
            }
            _ => {}
        }
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| Error::Config(format!("no thumbprint: {e}")))?;
        jwk.common.key_id = Some(kid.clone());
        self.kid = kid;
        Ok(self)
    }

    /// This key without its signing half: what a retired signing key becomes.
    pub fn verify_only(mut self) -> Self {
        self.encoding = None;
        self
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| s.contains("-----BEGIN "))
}

fn checked_kid(kid: String) -> Result<String> {
    if kid.is_empty() || kid.len() > 128 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Config(
            "a key id must be 1..=128 printable ASCII characters".into(),
        ));
    }
    Ok(kid)
}

fn publishable(jwk: &mut Jwk, kid: &str) {
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
}

/// A verification key with its precomputed validation rules, and an id no
/// other key of this process has (the per-thread verifier cache is keyed by it).
pub(crate) struct VerifyingKey {
    pub(crate) id: u64,
    pub(crate) key: Key,
    pub(crate) validation: Validation,
}

impl VerifyingKey {
    fn new(key: Key) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            key,
            validation: Validation::new(Algorithm::HS256),
        }
    }
}

/// The crypto provider reissue verifies with: the one its features select.
pub(crate) fn provider() -> &'static jsonwebtoken::crypto::CryptoProvider {
    ensure_provider();
    #[cfg(feature = "aws-lc-rs")]
    return &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    return &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
}

/// The keys tokens are signed and verified with.
///
/// Exactly one signing key; any number of verification-only keys, so a key can
/// be rotated without logging anyone out: add the new key as the signing key,
/// keep the old one with [`Key::verify_only`] until its tokens have expired.
/// A token's `kid` is looked up only in this set; `jku`, `jwk` and `x5u`
/// headers are never followed; the token's `alg` must be its key's.
pub struct KeySet {
    signing: usize,
    keys: Vec<VerifyingKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("signing", &self.keys[self.signing].key.kid)
            .field(
                "keys",
                &self.keys.iter().map(|k| &k.key).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeySet {
    /// A set whose only key signs and verifies.
    pub fn new(signing: Key) -> Result<Self> {
        if signing.encoding.is_none() {
            return Err(Error::Config(format!("key `{}` cannot sign", signing.kid)));
        }
        Ok(Self {
            signing: 0,
            keys: vec![VerifyingKey::new(signing)],
        })
    }

    /// Adds a key that verifies but does not sign.
    pub fn with_verification_key(mut self, key: Key) -> Result<Self> {
        if self.keys.iter().any(|k| k.key.kid == key.kid) {
            return Err(Error::Config(format!("duplicate key id `{}`", key.kid)));
        }
        self.keys.push(VerifyingKey::new(key.verify_only()));
        Ok(self)
    }

    /// The public keys as a JWKS document; `None` when the set holds only HMAC
    /// keys (a shared secret is never published).
    pub fn jwks(&self) -> Option<JwkSet> {
        let keys: Vec<Jwk> = self
            .keys
            .iter()
            .filter_map(|k| k.key.public_jwk.clone())
            .collect();
        (!keys.is_empty()).then_some(JwkSet { keys })
    }

    pub(crate) fn signing_key(&self) -> &Key {
        &self.keys[self.signing].key
    }

    /// Sets each key's validation from a template, forcing its own algorithm.
    pub(crate) fn configure(&mut self, template: &Validation) {
        for k in &mut self.keys {
            let mut v = template.clone();
            v.algorithms = vec![k.key.alg];
            k.validation = v;
        }
    }

    pub(crate) fn signing_validation(&self) -> &Validation {
        &self.keys[self.signing].validation
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        self.signing_key()
            .encoding
            .as_ref()
            .expect("checked in KeySet::new")
    }

    pub(crate) fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.key.kid == kid)
    }

    pub(crate) fn decoding_key(k: &VerifyingKey) -> &DecodingKey {
        &k.key.decoding
    }
}
