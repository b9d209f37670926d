//! `X-Forwarded-For` through the trusted-proxy rule: the client address that
//! login throttling, the address policy and the session list use. Input: the
//! header values, `\n`-separated; the peer is a trusted proxy.
#![no_main]

use std::net::IpAddr;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reissue_core::policy::TrustedProxies;

static TRUSTED: LazyLock<TrustedProxies> =
    LazyLock::new(|| TrustedProxies::parse("10.0.0.0/8, 127.0.0.1/32, ::1/128, fd00::/8").unwrap());

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let peer: IpAddr = [10, 0, 0, 1].into();
    let ip = reissue_core::policy::client_ip(peer, &values, &TRUSTED);
    // One form per address: an IPv4-mapped IPv6 address comes back as IPv4.
    assert_eq!(ip, ip.to_canonical(), "{ip} is not canonical");
    // An untrusted peer's header is never believed.
    let stranger: IpAddr = [192, 0, 2, 1].into();
    assert_eq!(
        reissue_core::policy::client_ip(stranger, &values, &TRUSTED),
        stranger
    );
});
