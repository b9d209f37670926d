//! The `User-Agent` header reduced to what a session stores and lists
//! ("Firefox 128 / Windows 10", else the header cut short): woothee's
//! matcher, the cut at a character boundary, the bounded memo in front.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reissue_core::fuzzing::{MAX_STORED_USER_AGENT, stored_user_agent};

fuzz_target!(|data: &[u8]| {
    // Adapters hand over the header's text; a header that is not UTF-8 is
    // read lossily by some frameworks, so both shapes reach the summary.
    let header = String::from_utf8_lossy(data);
    if let Some(kept) = stored_user_agent(&header) {
        assert!(!kept.is_empty());
        assert!(kept.len() <= MAX_STORED_USER_AGENT, "{kept:?}");
        // Asked again, the memo answers the same.
        assert_eq!(stored_user_agent(&header).as_deref(), Some(kept.as_str()));
    }
});
