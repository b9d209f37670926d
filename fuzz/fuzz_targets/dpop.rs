//! The `DPoP` proof (RFC 9449 §4.3) as `/auth/reissue` checks it. Input:
//! either a whole proof (first byte even), or (first byte odd) a header and
//! claims of any bytes, `0xff`-separated, whose header, when it is a JSON
//! object, gets the target's public Ed25519 `jwk` and is signed with its
//! key, so that fuzzing gets past the signature into the claims. Checks
//! besides "never panics": an accepted proof is a compact JWS whose header
//! names `dpop+jwt` (in any case) and an allowed algorithm, and its thumbprint is the key's
//! (43 base64url characters).
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

/// RFC 8032 §7.1's first test key: not a secret.
const SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const PUBLIC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

static KEY: LazyLock<EncodingKey> = LazyLock::new(|| {
    // PKCS#8 v1 of an Ed25519 seed: the fixed prefix, then the 32 bytes.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&SEED);
    EncodingKey::from_ed_der(&der)
});

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn signed(header: &[u8], claims: &[u8]) -> Option<String> {
    let mut header: Value = serde_json::from_slice(header).ok()?;
    let object = header.as_object_mut()?;
    object.insert(
        "jwk".into(),
        json!({ "kty": "OKP", "crv": "Ed25519", "x": PUBLIC_X }),
    );
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &KEY, Algorithm::EdDSA).ok()?;
    Some(format!("{input}.{signature}"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let jwt = if mode % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(jwt) => jwt.to_owned(),
            Err(_) => return,
        }
    } else {
        let mut parts = rest.splitn(2, |&b| b == 0xff);
        let (header, claims) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
        match signed(header, claims) {
            Some(jwt) => jwt,
            None => return,
        }
    };
    if let Ok(jkt) = reissue_core::fuzzing::dpop_proof(&jwt, NOW) {
        assert_eq!(jkt.len(), 43, "{jkt}");
        let header = jwt.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .expect("an accepted proof's header is base64url"),
        )
        .expect("an accepted proof's header is JSON");
        // A media type, compared without case (RFC 7515 §4.1.9).
        assert!(
            header["typ"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")),
            "{header}"
        );
        assert!(
            matches!(header["alg"].as_str(), Some("ES256" | "EdDSA")),
            "{header}"
        );
    }
});
