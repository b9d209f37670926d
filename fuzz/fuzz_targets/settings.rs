//! The settings' value parsers that read outside text (an environment
//! variable, a flag): trusted proxies, address rules, country rules,
//! allowed origins and the revocation mode. Input: the first byte picks the
//! parser, the rest is the value. Each refuses with an error, never a panic;
//! what parses comes back the same through its printed form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reissue_core::policy::{CidrRules, CountryRule, TrustedProxies};
use reissue_core::{Origin, RevocationMode};

fuzz_target!(|data: &[u8]| {
    let Some((&which, value)) = data.split_first() else {
        return;
    };
    // Settings are environment strings: UTF-8 or refused before parsing.
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    match which % 5 {
        0 => {
            let _ = TrustedProxies::parse(value);
        }
        1 => {
            let (allow, deny) = value.split_once('|').unwrap_or((value, ""));
            let _ = CidrRules::parse(allow, deny);
        }
        2 => {
            let _ = CountryRule::parse_allow(value);
            let _ = CountryRule::parse_deny(value);
        }
        3 => {
            if let Ok(origin) = Origin::parse(value) {
                let printed = origin.to_string();
                assert_eq!(
                    Origin::parse(&printed).ok().as_ref(),
                    Some(&origin),
                    "{value:?} printed as {printed:?}"
                );
            }
        }
        _ => {
            if let Some(mode) = RevocationMode::parse(value) {
                assert_eq!(RevocationMode::parse(mode.as_str()), Some(mode));
            }
        }
    }
});
