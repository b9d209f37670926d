//! The browser transport's request headers: `Cookie` (the refresh token),
//! `Origin`, `Host`, `Sec-Fetch-Site` and `X-Reissue-Transport`, as
//! `/auth/reissue` and `/auth/logout` read them. Input: lines, each a
//! header whose name is chosen by its first byte, its value the rest.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reissue_core::fuzzing::{FuzzRequest, refresh_cookie, same_site_allowed};
use reissue_core::{CookieTransport, Origin, REFRESH_COOKIE};

const NAMES: [&str; 5] = [
    "cookie",
    "origin",
    "host",
    "sec-fetch-site",
    "x-reissue-transport",
];

static TRANSPORTS: LazyLock<[CookieTransport; 2]> = LazyLock::new(|| {
    [
        CookieTransport::new(),
        CookieTransport::new().allowed_origins([Origin::parse("https://app.example.com").unwrap()]),
    ]
});

/// The text values of one header.
fn values<'r>(req: &'r FuzzRequest, name: &'r str) -> impl Iterator<Item = &'r str> {
    req.headers
        .iter()
        .filter(move |(n, _)| *n == name)
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
}

fuzz_target!(|data: &[u8]| {
    let req = FuzzRequest {
        headers: data
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let (&name, value) = line.split_first()?;
                Some((NAMES[usize::from(name) % NAMES.len()], value.to_vec()))
            })
            .collect(),
        path: Some("/auth/reissue"),
        ..FuzzRequest::default()
    };
    for cookies in TRANSPORTS.iter() {
        if let Some(token) = refresh_cookie(cookies, &req) {
            assert!(!token.is_empty());
            assert!(
                values(&req, "cookie").any(|v| v.contains(REFRESH_COOKIE) && v.contains(&token)),
                "{token:?} is in no Cookie header"
            );
        }
        if same_site_allowed(cookies, &req) {
            assert!(
                values(&req, "x-reissue-transport")
                    .any(|v| v.trim().eq_ignore_ascii_case("cookie")),
                "allowed without the transport header"
            );
        }
    }
    assert!(refresh_cookie(&CookieTransport::off(), &req).is_none());
});
