//! What every row shares: keys, the issuer and audience, a trivial
//! authenticator, and the token each scheme is measured with.

use reissue_core::RevocationMode;
use std::sync::Arc;
use std::time::Duration;

use reissue_core::store::{ClientMeta, MemoryStore, RefreshStore};
use reissue_core::{
    Algorithm, Authenticated, Authenticator, Config, Key, KeySet, Reissue, ReissueBuilder,
    UserClaims,
};
use serde::Deserialize;

pub(crate) const ISSUER: &str = "https://issuer.bench";
pub(crate) const AUDIENCE: &str = "api.bench";
/// Clock skew allowed everywhere it can be set, reissue's default.
pub(crate) const LEEWAY: u64 = 5;
/// The user every protected-route token belongs to; `/me` answers it.
pub(crate) const USER_ID: &str = "42";
/// 32 bytes: the HS256 minimum (RFC 7518 §3.2). ASCII because jwt-authorizer
/// takes its secret as a `&str`.
pub(crate) const HS256_SECRET: &str = "bench-secret-of-32-bytes-length!";

/// Test-only keys, generated with openssl (see benches/keys/README.md).
pub(crate) mod pem {
    pub(crate) const ED: &[u8] = include_bytes!("../keys/ed25519.pem");
    pub(crate) const ED_PUB: &[u8] = include_bytes!("../keys/ed25519.pub.pem");
    pub(crate) const EC: &[u8] = include_bytes!("../keys/ec.pem");
    pub(crate) const EC_PUB: &[u8] = include_bytes!("../keys/ec.pub.pem");
    pub(crate) const RSA: &[u8] = include_bytes!("../keys/rsa.pem");
    pub(crate) const RSA_PUB: &[u8] = include_bytes!("../keys/rsa.pub.pem");
}

/// The two algorithms the HTTP rows compare: a shared secret and a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Hs256,
    EdDsa,
}

impl Scheme {
    /// reissue's signing key for this scheme.
    pub(crate) fn key(self) -> Key {
        match self {
            Self::Hs256 => Key::hmac("bench", Algorithm::HS256, HS256_SECRET.as_bytes()),
            Self::EdDsa => Key::from_private_pem("bench", Algorithm::EdDSA, pem::ED),
        }
        .expect("the bench keys are valid")
    }

    /// The raw Ed25519 public key: the last 32 bytes of the SubjectPublicKeyInfo.
    pub(crate) fn ed25519_public_raw() -> [u8; 32] {
        let der = pem_body(pem::ED_PUB);
        der[der.len() - 32..].try_into().expect("32 bytes")
    }
}

fn pem_body(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).expect("PEM is ASCII");
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
        .expect("PEM body is base64")
}

/// Login body of the benchmark: `{"user": "<id>"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Login {
    pub(crate) user: String,
}

/// Accepts every user: password hashing is measured on its own (argon2 row),
/// so the reissue endpoint rows measure sessions, not a password check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnyUser;

impl Authenticator for AnyUser {
    type Credentials = Login;
    type Claims = UserClaims;

    fn account_key(&self, login: &Login) -> reissue_core::Result<String> {
        Ok(login.user.clone())
    }

    async fn authenticate(&self, login: Login) -> reissue_core::Result<Authenticated<UserClaims>> {
        let email = format!("{}@example.com", login.user);
        Ok(Authenticated::new(
            login.user,
            UserClaims::new(email, vec!["user".to_owned()]),
        ))
    }
}

/// Whether the verifier remembers verified tokens (reissue's default) or
/// verifies the signature on every request, as the peers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cache {
    On,
    Off,
}

/// The configuration of every reissue row: defaults, bench issuer/audience.
pub(crate) fn config(mode: RevocationMode, cache: Cache) -> Config {
    let config = Config::new(ISSUER, AUDIENCE)
        .leeway(Duration::from_secs(LEEWAY))
        .revocation(mode);
    match cache {
        Cache::On => config,
        Cache::Off => config.verified_token_cache(0),
    }
}

/// A reissue instance over `store`.
pub(crate) fn reissue(
    scheme: Scheme,
    store: Arc<dyn RefreshStore>,
    mode: RevocationMode,
    cache: Cache,
) -> Reissue<AnyUser> {
    builder(scheme, store, mode, cache)
        .build()
        .expect("a valid configuration")
}

/// [`reissue`] with a Prometheus recorder attached, as the example apps run.
pub(crate) fn metered(
    scheme: Scheme,
    store: Arc<dyn RefreshStore>,
    mode: RevocationMode,
    cache: Cache,
) -> Reissue<AnyUser> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    builder(scheme, store, mode, cache)
        .metrics(Arc::new(recorder))
        .build()
        .expect("a valid configuration")
}

fn builder(
    scheme: Scheme,
    store: Arc<dyn RefreshStore>,
    mode: RevocationMode,
    cache: Cache,
) -> ReissueBuilder<AnyUser> {
    let keys = KeySet::new(scheme.key()).expect("a signing key");
    Reissue::builder(config(mode, cache), keys, store, AnyUser)
}

/// Logs `user` in and returns the access token.
pub(crate) async fn access_token(reissue: &Reissue<AnyUser>, user: &str) -> String {
    let login = Login {
        user: user.to_owned(),
    };
    reissue
        .login(login, &ClientMeta::default())
        .await
        .expect("login")
        .access_token
}

/// A stateless reissue instance (memory store, never consulted by the layer)
/// and an access token of [`USER_ID`] signed with `scheme`.
pub(crate) fn stateless(scheme: Scheme, cache: Cache) -> (Reissue<AnyUser>, String) {
    logged_in(reissue(
        scheme,
        Arc::new(MemoryStore::new()),
        RevocationMode::Stateless,
        cache,
    ))
}

/// `reissue` and an access token of [`USER_ID`], logged in outside any
/// server's runtime (for stores that need none, like the memory store).
pub(crate) fn logged_in(reissue: Reissue<AnyUser>) -> (Reissue<AnyUser>, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let token = rt.block_on(access_token(&reissue, USER_ID));
    (reissue, token)
}

/// The claims the peers' handlers read: only `sub`, like reissue's `/me`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub(crate) struct Subject {
    pub(crate) sub: String,
}
