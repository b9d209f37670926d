//! The packed Redis session record as the store reads it back: a user's key
//! (records `I2 length .. body`, searched for a sid's expiries, as strict mode
//! does outside any script), a record's client bytes (country, address,
//! user-agent summary: the session list), and a rotation script's reply.
//! The bytes are Redis's, but a damaged key, an old layout or another
//! program's writes must read as "no record" or an error, never a panic.
//! Input: a selector byte, then the bytes.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use reissue_core::SessionId;
use reissue_core::fuzzing::{decode_client, encode_client, record_expiries, rotation_reply};

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            // the sid: the 22 bytes after each length prefix when they form
            // one, so that matching records are found, else a fixed one
            let sid = bytes
                .get(2..24)
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(SessionId::parse)
                .unwrap_or_else(|| SessionId::parse("AAAAAAAAAAAAAAAAAAAAAA").unwrap());
            if let Some((absolute, idle)) = record_expiries(bytes, &sid) {
                assert!(absolute < 1 << 48 && idle < 1 << 48);
            }
        }
        1 => {
            let (country, client) = bytes.split_at(bytes.len().min(2));
            if let Some(meta) = decode_client(client, country) {
                // what was read writes back to bytes that read the same
                let again = decode_client(&encode_client(&meta), country);
                if let Some(again) = again {
                    assert_eq!(again.ip, meta.ip);
                    assert_eq!(again.country, meta.country);
                    if let Some(ip) = meta.ip {
                        assert!(matches!(ip, IpAddr::V4(_) | IpAddr::V6(_)));
                    }
                }
            }
        }
        _ => {
            if let Some((_, s)) = rotation_reply(bytes) {
                assert_eq!(bytes.len(), 25);
                assert!(s.generation < 1 << 32);
            }
        }
    }
});
