//! Who is on the other end: the client address (the trusted-proxy rule),
//! its network (what login throttling counts), and what is kept of its user
//! agent (the session list's summary).

use std::net::IpAddr;

use crate::Country;

pub(crate) mod address;
mod network;
pub(crate) mod user_agent;

pub use address::{TrustedProxies, client_ip};
pub(crate) use network::network_of;

/// What is recorded about the client of a login or reissue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientMeta {
    /// The client address.
    pub ip: Option<IpAddr>,
    /// Its country.
    pub country: Option<Country>,
    /// The `User-Agent`, truncated to 256 bytes (what a policy sees; the
    /// stores keep only a summary of it, see [`SessionInfo::client`](crate::store::SessionInfo::client)).
    pub user_agent: Option<String>,
}

impl ClientMeta {
    /// Client metadata; the user agent is truncated to 256 bytes.
    pub fn new(ip: Option<IpAddr>, country: Option<Country>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut end = ua.len().min(256);
            while !ua.is_char_boundary(end) {
                end -= 1;
            }
            ua[..end].to_owned()
        });
        Self {
            ip,
            country,
            user_agent,
        }
    }

    /// What a store keeps of the user agent, and what the session list then
    /// shows: "Firefox 128 / Windows 10" for a browser, else the header cut
    /// short. Both stores keep this, never the header.
    pub(crate) fn stored_user_agent(&self) -> Option<String> {
        self.user_agent
            .as_deref()
            .map(user_agent::summary)
            .filter(|s| !s.is_empty())
    }
}
