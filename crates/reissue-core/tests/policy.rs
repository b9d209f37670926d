//! The address and country policy: the client address behind proxies, the
//! built-in rules, and country look-ups in a MaxMind database.

use std::net::IpAddr;
use std::sync::Arc;

use reissue_core::policy::{
    CidrRules, CountryChanged, CountryRule, Decision, Policy, PolicyContext, PolicySet, Stage,
    TrustedProxies, client_ip,
};
use reissue_core::{Country, Error};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn country(code: &str) -> Country {
    Country::new(code).unwrap()
}

fn proxies() -> TrustedProxies {
    TrustedProxies::parse("10.0.0.0/8, 2001:db8:ffff::/48").unwrap()
}

/// `client_ip` behind the trusted proxy 10.0.0.1, with these header lines.
fn behind_proxy(lines: &[&[u8]]) -> IpAddr {
    client_ip(ip("10.0.0.1"), lines, &proxies())
}

fn config_error<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Config(msg)) => msg,
        other => panic!("expected a config error, got {other:?}"),
    }
}

mod client_address {
    use super::*;

    #[test]
    fn spoofed_header_from_an_untrusted_peer_is_ignored() {
        let peer = ip("198.51.100.20");
        let spoof: &[&[u8]] = &[b"10.0.0.7", b"1.2.3.4, 10.0.0.2"];
        assert_eq!(client_ip(peer, spoof, &proxies()), peer);
        assert_eq!(client_ip(peer, spoof, &TrustedProxies::none()), peer);
        // Nor is it read when nobody is trusted, even from a private peer.
        assert_eq!(
            client_ip(ip("10.0.0.1"), spoof, &TrustedProxies::default()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_chain_yields_the_right_most_untrusted_entry() {
        // The client forged the two left-most entries; the proxies appended the rest.
        assert_eq!(
            behind_proxy(&[b"10.9.9.9, 6.6.6.6, 198.51.100.7, 10.0.0.3, 10.0.0.2"]),
            ip("198.51.100.7")
        );
        // Several header lines form one list, in order.
        assert_eq!(
            behind_proxy(&[b"6.6.6.6", b"198.51.100.7", b"10.0.0.2"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            behind_proxy(&[b"198.51.100.7, 10.0.0.2", b"203.0.113.5"]),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        assert_eq!(behind_proxy(&[]), ip("10.0.0.1"));
        assert_eq!(behind_proxy(&[b""]), ip("10.0.0.1"));
        assert_eq!(behind_proxy(&[b" , ,", b""]), ip("10.0.0.1"));
    }

    #[test]
    fn all_trusted_entries_yield_the_left_most() {
        assert_eq!(
            behind_proxy(&[b"10.1.1.1, 10.2.2.2", b"10.3.3.3"]),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn empty_entries_are_skipped() {
        assert_eq!(
            behind_proxy(&[b"198.51.100.7,, 10.0.0.2,"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            behind_proxy(&[b"198.51.100.7", b"", b"10.0.0.2"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_vouched_address() {
        // Written by the hop at 10.0.0.2, which we trust: 10.0.0.2 is the client.
        assert_eq!(
            behind_proxy(&[b"198.51.100.7, garbage, 10.0.0.2"]),
            ip("10.0.0.2")
        );
        // Right-most garbage: only the peer is vouched for.
        assert_eq!(behind_proxy(&[b"198.51.100.7, unknown"]), ip("10.0.0.1"));
        assert_eq!(behind_proxy(&[b"198.51.100.7, 1.2.3.4.5"]), ip("10.0.0.1"));
        // Garbage left of the client is never reached.
        assert_eq!(
            behind_proxy(&[b"garbage, 198.51.100.7, 10.0.0.2"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn non_utf8_bytes_are_garbage() {
        assert_eq!(
            behind_proxy(&[b"198.51.100.7, \xff\xfe, 10.0.0.2"]),
            ip("10.0.0.2")
        );
        assert_eq!(
            behind_proxy(&[b"198.51.100.7, 203.0.113.\xc3\xa9"]),
            ip("10.0.0.1")
        );
        assert_eq!(
            behind_proxy(&[b"\xff\xff, 198.51.100.7"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ports_brackets_and_quotes_are_stripped() {
        assert_eq!(behind_proxy(&[b"198.51.100.7:5678"]), ip("198.51.100.7"));
        assert_eq!(behind_proxy(&[b"[2001:db8::1]:443"]), ip("2001:db8::1"));
        assert_eq!(behind_proxy(&[b"[2001:db8::1]"]), ip("2001:db8::1"));
        assert_eq!(behind_proxy(&[b"2001:db8::1"]), ip("2001:db8::1"));
        assert_eq!(behind_proxy(&[b"\"[2001:db8::1]:443\""]), ip("2001:db8::1"));
        assert_eq!(
            behind_proxy(&[b"  198.51.100.7  ,\t10.0.0.2 "]),
            ip("198.51.100.7")
        );
        // A trusted IPv6 hop with a port is still recognised as trusted.
        assert_eq!(
            behind_proxy(&[b"198.51.100.7, [2001:db8:ffff::9]:8080"]),
            ip("198.51.100.7")
        );
        // Malformed ports and brackets are garbage.
        assert_eq!(
            behind_proxy(&[b"198.51.100.7, 1.2.3.4:99999"]),
            ip("10.0.0.1")
        );
        assert_eq!(
            behind_proxy(&[b"198.51.100.7, [2001:db8::1"]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv6_zones_are_stripped() {
        assert_eq!(behind_proxy(&[b"fe80::1%eth0"]), ip("fe80::1"));
        assert_eq!(behind_proxy(&[b"[fe80::1%eth0]:443"]), ip("fe80::1"));
        // A zone on IPv4, or an empty zone, is garbage.
        assert_eq!(
            behind_proxy(&[b"198.51.100.7, 1.2.3.4%eth0"]),
            ip("10.0.0.1")
        );
        assert_eq!(behind_proxy(&[b"198.51.100.7, fe80::1%"]), ip("10.0.0.1"));
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_networks() {
        // A mapped peer inside 10.0.0.0/8 is trusted...
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &[b"198.51.100.7"], &proxies()),
            ip("198.51.100.7")
        );
        // ...and mapped entries are trusted or returned as IPv4.
        assert_eq!(
            behind_proxy(&[b"198.51.100.7, ::ffff:10.0.0.2"]),
            ip("198.51.100.7")
        );
        assert_eq!(behind_proxy(&[b"::ffff:198.51.100.7"]), ip("198.51.100.7"));
        // An untrusted mapped peer is the client, as IPv4.
        assert_eq!(
            client_ip(ip("::ffff:198.51.100.20"), &[b"10.0.0.7"], &proxies()),
            ip("198.51.100.20")
        );
        // Mapped networks in the configuration are IPv4 networks.
        let mapped = TrustedProxies::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.contains(ip("10.1.2.3")));
        assert!(mapped.contains(ip("::ffff:10.1.2.3")));
        assert!(!mapped.contains(ip("11.1.2.3")));
    }

    #[test]
    fn at_most_32_entries_are_read() {
        // 500 entries, all trusted but the spoofed left-most: it is out of reach,
        // and the left-most entry read (the 32nd from the right) is the client.
        let mut entries = vec!["198.51.100.66".to_owned()];
        entries.extend((0..499).map(|i| format!("10.0.{}.{}", i / 256, i % 256)));
        let header = entries.join(", ");
        let expected = ip(&entries[entries.len() - 32]);
        assert_eq!(behind_proxy(&[header.as_bytes()]), expected);
        // The same as 500 header lines.
        let lines: Vec<&[u8]> = entries.iter().map(|e| e.as_bytes()).collect();
        assert_eq!(behind_proxy(&lines), expected);
        // 500 spoofed entries left of the real client change nothing.
        let spoofed = format!(
            "{}, 198.51.100.7, 10.0.0.2",
            vec!["6.6.6.6"; 500].join(", ")
        );
        assert_eq!(behind_proxy(&[spoofed.as_bytes()]), ip("198.51.100.7"));
    }

    #[test]
    fn at_most_4_kib_are_read() {
        // The client is beyond the byte limit: the nearest vouched hop answers.
        let padded = format!("198.51.100.7{}, 10.0.0.2", " ".repeat(5000));
        assert_eq!(behind_proxy(&[padded.as_bytes()]), ip("10.0.0.2"));
        let lines: Vec<&[u8]> = vec![b"198.51.100.7", &[b' '; 5000], b"10.0.0.2"];
        assert_eq!(behind_proxy(&lines), ip("10.0.0.2"));
        // A megabyte of garbage left of the client is never read.
        let huge = format!("{}, 198.51.100.7, 10.0.0.2", "x".repeat(1 << 20));
        assert_eq!(behind_proxy(&[huge.as_bytes()]), ip("198.51.100.7"));
        // A megabyte-long entry is garbage, not the tail of a number.
        let long = format!("{}1.2.3.4", "1".repeat(1 << 20));
        assert_eq!(behind_proxy(&[long.as_bytes()]), ip("10.0.0.1"));
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_addresses() {
        let list = TrustedProxies::parse(" 10.0.0.0/8 ,192.168.1.7, fd00::/8,, ").unwrap();
        assert_eq!(list.nets().len(), 3);
        assert!(list.contains(ip("10.200.0.1")));
        assert!(list.contains(ip("192.168.1.7")));
        assert!(!list.contains(ip("192.168.1.8")));
        assert!(list.contains(ip("fd12::1")));
        assert!(!list.contains(ip("fe80::1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("  ").unwrap().is_empty());
    }

    #[test]
    fn trusted_proxy_errors_name_the_bad_entry() {
        for bad in [
            "nope",
            "10.0.0.0/33",
            "10.0.0",
            "fe80::1%eth0",
            "10.0.0.0/8/8",
        ] {
            let msg = config_error(TrustedProxies::parse(&format!(
                "10.0.0.0/8, {bad}, 192.168.0.0/16"
            )));
            assert!(msg.contains(bad), "{msg:?} does not name {bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic_and_never_override_an_untrusted_peer(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..8),
            tail in "[0-9a-f:.,\\[\\]% ]{0,64}",
        ) {
            let mut lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            lines.push(tail.as_bytes());
            let untrusted = ip("198.51.100.20");
            proptest::prop_assert_eq!(client_ip(untrusted, &lines, &proxies()), untrusted);
            let _ = behind_proxy(&lines);
        }
    }
}

mod rules {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn login(ip_addr: &str) -> PolicyContext<'static> {
        PolicyContext::new(Stage::Login, "user-1", ip(ip_addr))
    }

    fn reissue(ip_addr: &str) -> PolicyContext<'static> {
        PolicyContext::new(Stage::Reissue, "user-1", ip(ip_addr))
    }

    fn deny(rule: &'static str) -> Decision {
        Decision::Deny { rule: rule.into() }
    }

    fn revoke(rule: &'static str) -> Decision {
        Decision::RevokeSession { rule: rule.into() }
    }

    #[test]
    fn cidr_deny_list_refuses_at_login_and_revokes_at_reissue() {
        let rules = CidrRules::parse("", "203.0.113.0/24, 2001:db8:bad::/48").unwrap();
        assert_eq!(rules.check(&login("203.0.113.9")), deny("cidr_denied"));
        assert_eq!(rules.check(&reissue("203.0.113.9")), revoke("cidr_denied"));
        assert_eq!(rules.check(&login("2001:db8:bad::1")), deny("cidr_denied"));
        assert_eq!(
            rules.check(&login("::ffff:203.0.113.9")),
            deny("cidr_denied")
        );
        assert_eq!(rules.check(&login("203.0.114.1")), Decision::Allow);
        assert_eq!(rules.check(&login("2001:db8:bae::1")), Decision::Allow);
    }

    #[test]
    fn cidr_allow_list_refuses_everything_outside_and_deny_wins() {
        let rules = CidrRules::parse("10.0.0.0/8, 2001:db8::/32", "10.66.0.0/16").unwrap();
        assert_eq!(rules.check(&login("10.1.2.3")), Decision::Allow);
        assert_eq!(rules.check(&login("2001:db8::5")), Decision::Allow);
        assert_eq!(
            rules.check(&login("198.51.100.1")),
            deny("cidr_not_allowed")
        );
        assert_eq!(
            rules.check(&reissue("2001:db9::5")),
            revoke("cidr_not_allowed")
        );
        assert_eq!(rules.check(&login("10.66.1.1")), deny("cidr_denied"));
        // Built without parsing, the same.
        let built = CidrRules::new(["10.0.0.0/8".parse().unwrap()], [])
            .deny(["10.66.0.0/16".parse().unwrap()]);
        assert_eq!(built.check(&login("10.66.1.1")), deny("cidr_denied"));
        assert_eq!(built.check(&login("11.0.0.1")), deny("cidr_not_allowed"));
        assert_eq!(
            CidrRules::default().check(&login("11.0.0.1")),
            Decision::Allow
        );
        // Mapped networks match IPv4 addresses, and the reverse.
        let mapped = CidrRules::new([], ["::ffff:198.51.100.0/120".parse().unwrap()]);
        assert_eq!(mapped.check(&login("198.51.100.9")), deny("cidr_denied"));
        assert_eq!(
            mapped.check(&login("::ffff:198.51.100.9")),
            deny("cidr_denied")
        );
        assert_eq!(mapped.check(&login("198.51.101.9")), Decision::Allow);
    }

    #[test]
    fn cidr_errors_name_the_bad_entry() {
        assert!(config_error(CidrRules::parse("10.0.0.0/8, 300.1.1.1", "")).contains("300.1.1.1"));
        assert!(config_error(CidrRules::parse("", "2001:db8::/129")).contains("2001:db8::/129"));
    }

    #[test]
    fn country_allow_list() {
        let rule = CountryRule::parse_allow("gb, SE ,").unwrap();
        assert_eq!(rule.countries(), [country("GB"), country("SE")]);
        assert_eq!(
            rule.check(&login("81.2.69.142").country(country("GB"))),
            Decision::Allow
        );
        assert_eq!(
            rule.check(&login("216.160.83.56").country(country("US"))),
            deny("country_not_allowed")
        );
        assert_eq!(
            rule.check(&reissue("216.160.83.56").country(country("US"))),
            revoke("country_not_allowed")
        );
        // Unknown country: allowed.
        assert_eq!(rule.check(&login("10.0.0.1")), Decision::Allow);
        assert_eq!(rule.check(&reissue("127.0.0.1")), Decision::Allow);
        // An empty allow list allows every country.
        let all = CountryRule::parse_allow(" ").unwrap();
        assert_eq!(
            all.check(&login("216.160.83.56").country(country("US"))),
            Decision::Allow
        );
    }

    #[test]
    fn country_deny_list() {
        let rule = CountryRule::deny([country("US")]);
        assert_eq!(
            rule.check(&login("216.160.83.56").country(country("US"))),
            deny("country_denied")
        );
        assert_eq!(
            rule.check(&reissue("216.160.83.56").country(country("US"))),
            revoke("country_denied")
        );
        assert_eq!(
            rule.check(&login("81.2.69.142").country(country("GB"))),
            Decision::Allow
        );
        assert_eq!(rule.check(&login("10.0.0.1")), Decision::Allow);
        assert_eq!(CountryRule::parse_deny("us").unwrap(), rule);
    }

    #[test]
    fn country_errors_name_the_bad_entry() {
        for bad in ["XX", "UK", "DEU", "d", "1A", "é"] {
            let msg = config_error(CountryRule::parse_allow(&format!("DE, {bad}, AT")));
            assert!(msg.contains(bad), "{msg:?} does not name {bad:?}");
            let msg = config_error(CountryRule::parse_deny(bad));
            assert!(msg.contains(bad), "{msg:?} does not name {bad:?}");
        }
    }

    #[test]
    fn country_changed_revokes_at_reissue() {
        let ctx = reissue("216.160.83.56")
            .country(country("US"))
            .login_country(country("GB"));
        assert_eq!(CountryChanged.check(&ctx), revoke("country_changed"));
        let same = reissue("81.2.69.143")
            .country(country("GB"))
            .login_country(country("GB"));
        assert_eq!(CountryChanged.check(&same), Decision::Allow);
        // Unknown on either side: no change can be told.
        let unknown_now = reissue("10.0.0.1").login_country(country("GB"));
        assert_eq!(CountryChanged.check(&unknown_now), Decision::Allow);
        let unknown_then = reissue("216.160.83.56").country(country("US"));
        assert_eq!(CountryChanged.check(&unknown_then), Decision::Allow);
        // At login there is no login country yet.
        assert_eq!(
            CountryChanged.check(&login("216.160.83.56").country(country("US"))),
            Decision::Allow
        );
    }

    /// Answers the same to everything, and counts its calls (clones share the count).
    #[derive(Debug, Clone, Default)]
    struct Fixed {
        answer: Option<&'static str>,
        calls: Arc<AtomicUsize>,
    }

    impl Policy for Fixed {
        fn check(&self, ctx: &PolicyContext<'_>) -> Decision {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.answer
                .map_or(Decision::Allow, |rule| Decision::refusal(ctx.stage, rule))
        }
    }

    fn fixed(answer: Option<&'static str>) -> Fixed {
        Fixed {
            answer,
            ..Fixed::default()
        }
    }

    fn calls(rule: &Fixed) -> usize {
        rule.calls.load(Ordering::Relaxed)
    }

    #[test]
    fn policy_set_first_refusal_wins() {
        let (allow, first, second) = (fixed(None), fixed(Some("first")), fixed(Some("second")));
        let set = PolicySet::new()
            .with(allow.clone())
            .with(first.clone())
            .with(second.clone());
        assert_eq!(set.len(), 3);
        assert_eq!(set.check(&login("198.51.100.1")), deny("first"));
        assert_eq!(set.check(&reissue("198.51.100.1")), revoke("first"));
        assert_eq!((calls(&allow), calls(&first), calls(&second)), (2, 2, 0));

        let reversed: PolicySet = [Arc::new(second) as Arc<dyn Policy>, Arc::new(first)]
            .into_iter()
            .collect();
        assert_eq!(reversed.check(&login("198.51.100.1")), deny("second"));
    }

    #[test]
    fn policy_set_empty_or_all_allowing_allows() {
        assert!(PolicySet::new().is_empty());
        assert_eq!(
            PolicySet::new().check(&login("198.51.100.1")),
            Decision::Allow
        );
        let set = PolicySet::new()
            .with(fixed(None))
            .with(CidrRules::default())
            .with(CountryChanged);
        assert_eq!(set.check(&reissue("198.51.100.1")), Decision::Allow);
    }

    #[test]
    fn policy_set_combines_the_built_in_rules() {
        let set = PolicySet::new()
            .with(CidrRules::parse("", "203.0.113.0/24").unwrap())
            .with(CountryRule::parse_allow("GB, SE").unwrap())
            .with(CountryChanged);
        assert_eq!(
            set.check(&login("203.0.113.1").country(country("GB"))),
            deny("cidr_denied")
        );
        assert_eq!(
            set.check(&login("216.160.83.56").country(country("US"))),
            deny("country_not_allowed")
        );
        let moved = reissue("89.160.20.112")
            .country(country("SE"))
            .login_country(country("GB"));
        assert_eq!(set.check(&moved), revoke("country_changed"));
        assert_eq!(
            set.check(&login("81.2.69.142").country(country("GB"))),
            Decision::Allow
        );
    }
}

#[cfg(feature = "geoip")]
mod geoip {
    use std::path::Path;

    use ipnet::IpNet;
    use reissue_core::policy::{CountryLookup, GeoIp};

    use super::*;

    // The generator of the test database, beside the committed file, so
    // that the two cannot drift apart.
    use reissue_test_support::geoip::{self, Place, TEST_DB, TEST_NETWORKS, home, write_mmdb};

    fn db_with(networks: &[(&str, Place)]) -> Vec<u8> {
        let networks: Vec<(IpNet, Place)> = networks
            .iter()
            .map(|(net, place)| (net.parse().unwrap(), *place))
            .collect();
        write_mmdb(&networks, 1).unwrap()
    }

    fn lookup(db: &GeoIp, addr: &str) -> Option<String> {
        db.country(ip(addr)).map(|c| c.to_string())
    }

    #[test]
    fn committed_database_matches_its_generator() {
        let committed = std::fs::read(TEST_DB).unwrap();
        assert!(
            committed == geoip::test_database(),
            "the test GeoIP database is stale: run `cargo run -p reissue-test-support --example make_test_mmdb`"
        );
    }

    #[test]
    fn every_test_network_maps_to_its_country() {
        let db = GeoIp::open(TEST_DB).unwrap();
        assert_eq!(db.path(), Path::new(TEST_DB));
        for &(net, country, registered) in TEST_NETWORKS {
            let net: IpNet = net.parse().unwrap();
            let want = country.or(registered).map(str::to_owned);
            for addr in [net.network(), net.broadcast()] {
                assert_eq!(
                    db.country(addr).map(|c| c.to_string()),
                    want,
                    "{addr} in {net}"
                );
            }
        }
        // country wins over registered_country (GB, registered in FR)...
        assert_eq!(lookup(&db, "2.125.160.217").as_deref(), Some("GB"));
        // ...which is the fallback when there is no country.
        assert_eq!(lookup(&db, "203.0.113.77").as_deref(), Some("AU"));
        // IPv4-mapped IPv6.
        assert_eq!(lookup(&db, "::ffff:81.2.69.142").as_deref(), Some("GB"));
        assert_eq!(lookup(&db, "2001:218:1234::1").as_deref(), Some("JP"));
    }

    #[test]
    fn unknown_and_local_addresses_have_no_country() {
        let db = GeoIp::open(TEST_DB).unwrap();
        for addr in [
            "127.0.0.1",
            "10.0.0.1",
            "192.168.1.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "8.8.8.8",
            "81.2.69.141",
            "81.2.69.208",
            "2001:219::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(lookup(&db, addr), None, "{addr}");
        }
    }

    #[test]
    fn missing_and_corrupt_files_are_config_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.mmdb");
        let msg = config_error(GeoIp::open(&missing));
        assert!(msg.contains(&missing.display().to_string()), "{msg}");

        let good = std::fs::read(TEST_DB).unwrap();
        let corrupt: [(&str, Vec<u8>); 4] = [
            ("empty.mmdb", Vec::new()),
            (
                "html.mmdb",
                b"<html><body>404 Not Found</body></html>".to_vec(),
            ),
            ("truncated.mmdb", good[..good.len() / 2].to_vec()),
            ("no-tree.mmdb", good[good.len() - 300..].to_vec()),
        ];
        for (name, bytes) in corrupt {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let msg = config_error(GeoIp::open(&path));
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
    }

    #[test]
    fn reload_swaps_the_data_and_a_failed_reload_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countries.mmdb");
        std::fs::write(
            &path,
            db_with(&[("81.2.69.0/24", home("GB")), ("2001:218::/32", home("JP"))]),
        )
        .unwrap();
        let db = GeoIp::open(&path).unwrap();
        assert_eq!(lookup(&db, "81.2.69.1").as_deref(), Some("GB"));
        assert_eq!(lookup(&db, "2001:218::1").as_deref(), Some("JP"));
        assert_eq!(lookup(&db, "89.160.20.1"), None);

        std::fs::write(
            &path,
            db_with(&[("81.2.69.0/24", home("FR")), ("89.160.20.0/24", home("SE"))]),
        )
        .unwrap();
        // Nothing changes until the reload.
        assert_eq!(lookup(&db, "81.2.69.1").as_deref(), Some("GB"));
        db.reload().unwrap();
        assert_eq!(lookup(&db, "81.2.69.1").as_deref(), Some("FR"));
        assert_eq!(lookup(&db, "89.160.20.1").as_deref(), Some("SE"));
        assert_eq!(lookup(&db, "2001:218::1"), None);

        std::fs::write(&path, b"corrupt").unwrap();
        let msg = config_error(db.reload());
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert_eq!(lookup(&db, "81.2.69.1").as_deref(), Some("FR"));

        std::fs::remove_file(&path).unwrap();
        config_error(db.reload());
        assert_eq!(lookup(&db, "89.160.20.1").as_deref(), Some("SE"));
    }

    #[test]
    fn lookups_run_concurrently_with_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countries.mmdb");
        let a = db_with(&[("81.2.69.0/24", home("GB"))]);
        let b = db_with(&[("81.2.69.0/24", home("FR"))]);
        std::fs::write(&path, &a).unwrap();
        let db = Arc::new(GeoIp::open(&path).unwrap());
        let reader = {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                (0..2000).all(|_| matches!(lookup(&db, "81.2.69.1").as_deref(), Some("GB" | "FR")))
            })
        };
        for i in 0..20 {
            std::fs::write(&path, if i % 2 == 0 { &b } else { &a }).unwrap();
            db.reload().unwrap();
        }
        assert!(reader.join().unwrap());
        assert_eq!(lookup(&db, "81.2.69.1").as_deref(), Some("GB"));
    }
}

/// With a policy configured, a client whose address is unknown (no socket
/// peer: axum without `ConnectInfo`, a Unix socket) is refused at login and
/// reissue, not waved through; the application can opt out.
mod unknown_address {
    use std::time::Duration;

    use reissue_core::store::{ClientMeta, MemoryStore};
    use reissue_core::{
        Algorithm, Authenticated, Authenticator, Config, Key, KeySet, Reissue, UserClaims,
    };

    use super::*;

    struct Anyone;

    impl Authenticator for Anyone {
        type Credentials = String;
        type Claims = UserClaims;
        fn account_key(&self, user: &String) -> reissue_core::Result<String> {
            Ok(user.clone())
        }
        async fn authenticate(
            &self,
            user: String,
        ) -> reissue_core::Result<Authenticated<UserClaims>> {
            Ok(Authenticated::new(
                user.clone(),
                UserClaims::new(user, vec![]),
            ))
        }
    }

    fn reissue(allow_unknown: bool) -> Reissue<Anyone> {
        let key = Key::hmac("k", Algorithm::HS256, &[9; 32]).unwrap();
        let config = Config::new("p", "p")
            .allow_unknown_client_address(allow_unknown)
            .reuse_grace(Duration::from_secs(5));
        Reissue::builder(
            config,
            KeySet::new(key).unwrap(),
            Arc::new(MemoryStore::new()),
            Anyone,
        )
        .policy(CidrRules::parse("", "192.0.2.0/24").unwrap())
        .build()
        .unwrap()
    }

    #[tokio::test]
    async fn refused_at_login_and_reissue_without_spending_anything() {
        let r = reissue(false);
        let unknown = ClientMeta::new(None, None, Some("curl/8"));
        let known = ClientMeta::new(Some(ip("198.51.100.1")), None, None);
        let err = r.login("ann".into(), &unknown).await.unwrap_err();
        assert!(matches!(err, Error::AccessDenied), "{err:?}");
        assert_eq!((err.status(), err.code()), (403, "access_denied"));
        assert!(
            r.sessions("ann").await.unwrap().is_empty(),
            "no session created"
        );

        let pair = r.login("ann".into(), &known).await.unwrap();
        let err = r.reissue(&pair.refresh_token, &unknown).await.unwrap_err();
        assert!(matches!(err, Error::AccessDenied), "{err:?}");
        // Refused before the rotation: the token is not spent, the session lives.
        r.reissue(&pair.refresh_token, &known)
            .await
            .expect("the refresh token was not spent by the refusal");
        assert_eq!(r.sessions("ann").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_application_can_opt_out() {
        let r = reissue(true);
        let unknown = ClientMeta::new(None, None, None);
        let pair = r.login("bea".into(), &unknown).await.unwrap();
        r.reissue(&pair.refresh_token, &unknown).await.unwrap();
    }

    #[tokio::test]
    async fn without_a_policy_nothing_changes() {
        let key = Key::hmac("k", Algorithm::HS256, &[9; 32]).unwrap();
        let r = Reissue::builder(
            Config::new("p", "p"),
            KeySet::new(key).unwrap(),
            Arc::new(MemoryStore::new()),
            Anyone,
        )
        .build()
        .unwrap();
        r.login("cat".into(), &ClientMeta::new(None, None, None))
            .await
            .unwrap();
    }
}
