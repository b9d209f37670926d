//! The client network that login attempts are counted against.

use std::net::IpAddr;

/// The client network a login is counted against: IPv4 /24, IPv6 /56
/// (CONTRACT.md, "Login throttling"); `-` for an unknown address.
pub(crate) fn network_of(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Some(IpAddr::V6(v6)) => {
            let mut octets = v6.octets();
            octets[7..].fill(0);
            format!("{}/56", std::net::Ipv6Addr::from(octets))
        }
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_group_neighbours() {
        let net = |s: &str| network_of(Some(s.parse().unwrap()));
        assert_eq!(net("203.0.113.7"), net("203.0.113.250"));
        assert_ne!(net("203.0.113.7"), net("203.0.114.7"));
        assert_eq!(
            net("::ffff:203.0.113.7"),
            net("203.0.113.9"),
            "v4-mapped is v4"
        );
        assert_eq!(net("2001:db8:0:ab00::1"), net("2001:db8:0:abff:ffff::2"));
        assert_ne!(net("2001:db8:0:ab00::1"), net("2001:db8:0:ac00::1"));
        assert_eq!(network_of(None), "-");
    }
}
