//! Verifying a compact JWS in one pass: the header parsed once (into only the
//! members reissue decides on), the key chosen by `kid`, `alg` required to be
//! the key's, the signature checked with jsonwebtoken's crypto through a
//! verifier built once per key and thread, and the payload decoded once.
//!
//! Written here rather than through `jsonwebtoken::decode` because that
//! parses the header twice (its `Header` has a dozen members, and it drops
//! `crit`, which must be refused), rebuilds the verifier for every token
//! (re-parsing an Ed25519 or RSA public key each time), and deserializes the
//! claims twice. The registered claims are then checked by `TokenCodec`,
//! from the same decoded bytes.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::crypto::JwtVerifier;
use serde::Deserialize;

use crate::tokens::keys::{KeySet, VerifyingKey};
use crate::{Error, Result, TokenRejection};

/// The header members reissue reads; every other member is skipped unread,
/// and a duplicate of one of these makes the header malformed.
#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    typ: Option<Cow<'a, str>>,
    /// RFC 7515 §4.1.11: extensions the recipient must understand; reissue
    /// understands none, so any `crit` (`null` and `[]` included) is refused.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` for any value, `null` included: the member is there.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

fn reject<T>(why: TokenRejection) -> Result<T> {
    Err(Error::InvalidToken(why))
}

/// Checks everything but the claims: three base64url segments, a JSON header
/// without `crit`, a known `kid` (or the only key), the key's `alg`, the
/// signature, and `typ` (RFC 9068 §4). Returns the decoded payload.
pub(crate) fn verify(keys: &KeySet, token: &str, typ: &str) -> Result<Vec<u8>> {
    let mut parts = token.splitn(3, '.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return reject(TokenRejection::Malformed);
    };
    if signature_b64.contains('.') {
        return reject(TokenRejection::Malformed);
    }
    let Ok(header_json) = URL_SAFE_NO_PAD.decode(header_b64) else {
        return reject(TokenRejection::Malformed);
    };
    // RFC 7519 §7.2: header and claims are UTF-8 JSON. serde_json checks the
    // text of the members it reads but skips the others unchecked, so a
    // member it ignores could carry any bytes (found by fuzz/claims).
    if std::str::from_utf8(&header_json).is_err() {
        return reject(TokenRejection::Malformed);
    }
    let Ok(header) = serde_json::from_slice::<JoseHeader<'_>>(&header_json) else {
        return reject(TokenRejection::Malformed);
    };
    if header.crit {
        return reject(TokenRejection::CriticalHeader);
    }
    // `none` and names jsonwebtoken does not know are refused like any
    // algorithm that is not the key's.
    let Ok(alg) = header.alg.parse::<Algorithm>() else {
        return reject(TokenRejection::AlgorithmNotAllowed);
    };
    let key = match header.kid.as_deref() {
        Some(kid) => keys.find(kid),
        None => None,
    };
    let Some(key) = key else {
        return reject(TokenRejection::UnknownKey);
    };
    if alg != key.key.algorithm() {
        return reject(TokenRejection::AlgorithmNotAllowed);
    }
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature_b64) else {
        return reject(TokenRejection::Malformed);
    };
    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    with_verifier(key, |verifier| verifier.verify(signed, &signature))?
        .map_err(|_| Error::InvalidToken(TokenRejection::BadSignature))?;
    if !type_matches(header.typ.as_deref(), typ) {
        return reject(TokenRejection::WrongTokenType);
    }
    URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .filter(|payload| std::str::from_utf8(payload).is_ok())
        .ok_or(Error::InvalidToken(TokenRejection::Malformed))
}

/// RFC 9068 §4: compare `typ` case-insensitively, with or without `application/`.
/// Never slices inside a character: `typ` is attacker-chosen text.
pub(crate) fn type_matches(found: Option<&str>, expected: &str) -> bool {
    const MEDIA: &str = "application/";
    found.is_some_and(|t| {
        let t = match t.get(..MEDIA.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(MEDIA) => &t[MEDIA.len()..],
            _ => t,
        };
        t.eq_ignore_ascii_case(expected)
    })
}

/// Verifiers built from a key, per thread (jsonwebtoken's verifiers are not
/// `Sync`), by the key's process-unique id. A thread that has seen more keys
/// than this starts over, so key sets built and dropped (tests, reloads) do
/// not accumulate.
const VERIFIERS_PER_THREAD: usize = 64;

thread_local! {
    static VERIFIERS: RefCell<HashMap<u64, Box<dyn JwtVerifier>>> = RefCell::new(HashMap::new());
}

fn with_verifier<T>(key: &VerifyingKey, f: impl FnOnce(&dyn JwtVerifier) -> T) -> Result<T> {
    VERIFIERS.with(|cell| {
        let mut verifiers = cell.borrow_mut();
        if !verifiers.contains_key(&key.id) {
            if verifiers.len() >= VERIFIERS_PER_THREAD {
                verifiers.clear();
            }
            let verifier = (crate::tokens::keys::provider().verifier_factory)(
                &key.key.algorithm(),
                KeySet::decoding_key(key),
            )
            // A key that does not fit its own algorithm was refused when the
            // key was made; this is the provider disagreeing.
            .map_err(|e| Error::Internal(format!("no verifier for key: {e}")))?;
            verifiers.insert(key.id, verifier);
        }
        Ok(f(verifiers[&key.id].as_ref()))
    })
}
