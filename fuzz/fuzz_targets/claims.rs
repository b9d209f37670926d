//! A JWS header and claims of any bytes, signed with the verifier's own key:
//! past the signature, the header's `typ`/`crit`/`kid`/`alg` and every claim
//! are read as they would be from a token that a key holder minted. Input:
//! header bytes, a `0xff` byte (never in JSON), payload bytes.
//!
//! Never a panic; a refusal is `InvalidToken` (401); and what is accepted
//! says what the payload says (read by serde_json as a whole), with the
//! codec's issuer and audience.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reissue_core::fuzzing::sign_compact;
use reissue_core::{Algorithm, Error, Key, KeySet, TokenCodec, UserClaims};
use serde_json::Value;

static CODEC: LazyLock<TokenCodec> = LazyLock::new(|| {
    let keys = KeySet::new(Key::hmac("hs", Algorithm::HS256, &[7; 32]).unwrap()).unwrap();
    TokenCodec::new(keys, "fuzz", "fuzz", 60)
});

fn check<T>(r: &reissue_core::Result<T>) {
    if let Err(e) = r {
        assert!(matches!(e, Error::InvalidToken(_)), "{e:?}");
        assert_eq!(e.status(), 401);
    }
}

/// Accepted claims are UTF-8 JSON (RFC 7519 §7.2). serde_json's `Value`
/// refuses a lone surrogate escape (`"\ud800"`) that RFC 8259's grammar
/// allows: such a payload compares as `{}`, which no member check needs.
fn accepted_json(payload: &[u8]) -> Value {
    let text = std::str::from_utf8(payload).expect("accepted claims are UTF-8");
    match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if e.to_string().contains("surrogate") => Value::Null,
        Err(e) => panic!("accepted claims are not JSON: {e}"),
    }
}

/// The member as the whole payload gives it.
fn member<'v>(payload: &'v Value, name: &str) -> &'v Value {
    static SKIP: Value = Value::Null;
    if payload.is_null() {
        return &SKIP;
    }
    payload.get(name).expect("an accepted token has the member")
}

fuzz_target!(|data: &[u8]| {
    let (header, payload) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let codec = &*CODEC;
    let token = sign_compact(codec, header, payload);

    let access = codec.verify_access::<UserClaims>(&token);
    check(&access);
    check(&codec.verify_access::<Value>(&token));
    let refresh = codec.verify_refresh(&token);
    check(&refresh);
    assert!(
        access.is_err() || refresh.is_err(),
        "one token accepted as both kinds"
    );

    if let Ok(c) = &access {
        let p = accepted_json(payload);
        if !p.is_null() {
            assert_eq!(member(&p, "iss"), "fuzz");
            assert_eq!(member(&p, "aud"), "fuzz");
            assert_eq!(member(&p, "sub").as_str(), Some(c.sub.as_str()));
            assert_eq!(member(&p, "sid").as_str(), Some(c.sid.as_str()));
            assert_eq!(member(&p, "exp").as_u64(), Some(c.exp));
        }
    }
    if let Ok(c) = &refresh {
        let p = accepted_json(payload);
        if !p.is_null() {
            assert_eq!(member(&p, "iss"), "fuzz");
            assert_eq!(member(&p, "aud"), "fuzz");
            assert_eq!(member(&p, "sub").as_str(), Some(c.sub.as_str()));
            assert_eq!(member(&p, "sid").as_str(), Some(c.sid.as_str()));
            assert_eq!(member(&p, "gen").as_u64(), Some(c.generation));
        }
    }
});
