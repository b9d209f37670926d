//! The `Authorization` header and its bearer token (RFC 6750 §2.1), as every
//! protected request and `/auth/reissue` read it. The input is one or more
//! header values separated by `\n` (a request may carry several).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reissue_core::fuzzing::FuzzRequest;
use reissue_core::{Error, bearer_token};

fuzz_target!(|data: &[u8]| {
    let req = FuzzRequest {
        headers: data
            .split(|&b| b == b'\n')
            .map(|v| ("authorization", v.to_vec()))
            .collect(),
        ..FuzzRequest::default()
    };
    match bearer_token(&req) {
        Ok(token) => {
            // One header, and the token is inside it, in the b64token alphabet.
            assert!(!data.contains(&b'\n'), "a token from two headers");
            assert!(!token.is_empty());
            assert!(token.len() <= 8 * 1024 - "Bearer ".len());
            let body = token.trim_end_matches('=');
            assert!(!body.is_empty(), "a token of padding only: {token:?}");
            assert!(
                body.bytes().all(|b| b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')),
                "{token:?}"
            );
            let value = std::str::from_utf8(data).expect("an accepted value is text");
            assert!(value.contains(token));
            assert!(value.trim_start()[..6].eq_ignore_ascii_case("bearer"));
        }
        Err(e @ (Error::MissingToken | Error::MalformedAuthorization(_))) => {
            assert!(matches!(e.status(), 400 | 401), "{e:?}");
        }
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
});
