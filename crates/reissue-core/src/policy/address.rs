//! The client address behind trusted proxies. (Placeholder by the lead so the
//! crate compiles; the policy work replaces it.)

use std::net::IpAddr;

use ipnet::IpNet;

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

/// The client address: the peer, unless it is a trusted proxy.
pub fn client_ip(peer: IpAddr, _forwarded_for: &[&[u8]], _trusted: &TrustedProxies) -> IpAddr {
    peer
}
