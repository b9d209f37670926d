//! A token as a client sends it, bytes of any kind: the compact-JWS reading
//! (segments, base64url, the JOSE header, `crit`, `kid`, `alg`), the
//! signature check and the claims, for access and refresh tokens alike.
//! Verification of arbitrary bytes answers `InvalidToken` (401), never a
//! panic. (One seed is a token the HMAC key signed, so that mutations start
//! from a signature that checks; a mutant that still verifies is a token
//! the key holder minted.)
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reissue_core::{Algorithm, Error, Key, KeySet, TokenCodec, UserClaims};

/// An HMAC signing key and an Ed25519 and an EC verification key, so that
/// `kid` picks among algorithms.
static CODEC: LazyLock<TokenCodec> = LazyLock::new(|| {
    let signing = Key::hmac("hs", Algorithm::HS256, &[7; 32]).unwrap();
    let ed = Key::from_public_pem(
        "ed",
        Algorithm::EdDSA,
        include_bytes!("../../crates/reissue-test-support/keys/ed25519.pub.pem"),
    )
    .unwrap();
    let ec = Key::from_public_pem(
        "ec",
        Algorithm::ES256,
        include_bytes!("../../crates/reissue-test-support/keys/ec.pub.pem"),
    )
    .unwrap();
    let keys = KeySet::new(signing)
        .and_then(|k| k.with_verification_key(ed))
        .and_then(|k| k.with_verification_key(ec))
        .unwrap();
    TokenCodec::new(keys, "fuzz", "fuzz", 0)
});

fn refused<T: std::fmt::Debug>(r: reissue_core::Result<T>) {
    match r {
        Ok(_) => {}
        Err(e @ Error::InvalidToken(_)) => assert_eq!(e.status(), 401),
        Err(other) => panic!("a token refused as something else: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let codec = &*CODEC;
    refused(codec.verify_access::<UserClaims>(&token));
    refused(codec.verify_access::<serde_json::Value>(&token));
    refused(codec.verify_refresh(&token));
});
