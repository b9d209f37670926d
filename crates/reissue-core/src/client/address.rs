//! The client address behind trusted proxies.
//!
//! The client address is the socket peer address, unless the peer is a trusted
//! proxy: then it is the right-most untrusted address of `X-Forwarded-For`.
//! Everything left of that address was written by someone we do not trust, so
//! it is never read.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

use crate::Error;

/// At most this many `X-Forwarded-For` entries are looked at, counted from the
/// right (the nearest hop first). A real proxy chain is a handful of hops.
pub(crate) const MAX_FORWARDED_ENTRIES: usize = 32;

/// At most this many bytes of `X-Forwarded-For`, counted from the right, are
/// looked at, whatever the number of entries.
pub(crate) const MAX_FORWARDED_BYTES: usize = 4096;

/// An entry longer than this cannot be an address (the longest, a bracketed
/// IPv6 address with an IPv4 tail, a zone and a port, is well under it).
const MAX_ENTRY_LEN: usize = 128;

/// The proxies whose `X-Forwarded-For` is believed: a list of networks.
///
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are matched as the IPv4
/// address they carry, both in the list and in the addresses checked against it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// No trusted proxies: `X-Forwarded-For` is never read.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts these networks.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            nets: nets.into_iter().map(canonical_net).collect(),
        }
    }

    /// Parses a comma-separated list of CIDRs or bare addresses
    /// (`"10.0.0.0/8, 192.168.1.7, fd00::/8"`). Whitespace and empty entries are
    /// ignored, so the empty string trusts nobody.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first entry that is neither.
    pub fn parse(list: &str) -> Result<Self, Error> {
        parse_nets(list, "trusted proxy").map(Self::new)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The trusted networks.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

impl FromIterator<IpNet> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = IpNet>>(iter: I) -> Self {
        Self::new(iter)
    }
}

/// The client address of a request.
///
/// `peer` is the socket peer address; `forwarded_for` holds the raw values of
/// every `X-Forwarded-For` header line, in the order received (several lines
/// form one comma-separated list).
///
/// - An untrusted peer is the client: its `X-Forwarded-For` is ignored.
/// - Behind a trusted peer, entries are read from the right, skipping trusted
///   addresses; the first untrusted one is the client.
/// - If every entry read is trusted, the left-most one read is the client (the
///   request came from inside the trusted network).
/// - An entry that is not an address (garbage, `unknown`, an obfuscated
///   identifier, non-UTF-8, a truncated fragment) stops the walk: the answer is
///   the last address we could vouch for, i.e. the trusted hop right of it
///   (the peer itself if the garbage is right-most). Nothing left of garbage
///   is believed, because the hop that wrote it is not one we trust to write
///   addresses. The same holds when the limits below are reached.
/// - Empty entries (`a,,b`, an empty header line) are skipped.
/// - At most the last 32 entries and the last 4 KiB of the header are read,
///   so a huge header costs no more than a small one.
///
/// Entries may carry a port (`1.2.3.4:5678`, `[2001:db8::1]:443`), brackets
/// (`[2001:db8::1]`), surrounding double quotes and surrounding whitespace. An
/// IPv6 zone (`fe80::1%eth0`) is stripped: it names an interface of the proxy's
/// host, not part of the address. IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`)
/// are returned, and matched, as the IPv4 address (`1.2.3.4`), for the peer
/// too, so that address and country rules see one form.
///
/// Never panics, whatever the bytes.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&[u8]], trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    // The nearest address we can vouch for so far: written by a trusted hop.
    let mut vouched = peer;
    let mut entries = 0;
    let mut budget = MAX_FORWARDED_BYTES;
    for &line in forwarded_for.iter().rev() {
        let (line, cut) = if line.len() > budget {
            // Keep the right end. Its left-most piece is a fragment of an entry,
            // not an entry: drop it, and stop after this line.
            let tail = &line[line.len() - budget..];
            match tail.iter().position(|&b| b == b',') {
                Some(comma) => (&tail[comma + 1..], true),
                None => return vouched,
            }
        } else {
            (line, false)
        };
        budget -= line.len();
        for piece in line.rsplit(|&b| b == b',') {
            if entries == MAX_FORWARDED_ENTRIES {
                return vouched;
            }
            entries += 1;
            match parse_entry(piece) {
                Entry::Empty => {}
                Entry::Garbage => return vouched,
                Entry::Addr(ip) if trusted.contains(ip) => vouched = ip,
                Entry::Addr(ip) => return ip,
            }
        }
        if cut {
            return vouched;
        }
    }
    vouched
}

/// One `X-Forwarded-For` entry.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Empty,
    Garbage,
    Addr(IpAddr),
}

fn parse_entry(raw: &[u8]) -> Entry {
    let raw = raw.trim_ascii();
    if raw.is_empty() {
        return Entry::Empty;
    }
    if raw.len() > MAX_ENTRY_LEN {
        return Entry::Garbage;
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Entry::Garbage;
    };
    let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.trim_ascii(),
        None => text,
    };
    parse_host(text).map_or(Entry::Garbage, |ip| Entry::Addr(ip.to_canonical()))
}

/// `addr`, `[v6]`, `[v6]:port`, `v4:port`, each IPv6 form optionally with a zone.
fn parse_host(text: &str) -> Option<IpAddr> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return parse_v6_with_zone(inside).map(IpAddr::V6);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if text.contains('%') {
        return parse_v6_with_zone(text).map(IpAddr::V6);
    }
    // A port without brackets is unambiguous only for IPv4.
    let (host, port) = text.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse().ok().map(IpAddr::V4)
}

fn parse_v6_with_zone(text: &str) -> Option<Ipv6Addr> {
    let (addr, zone) = match text.split_once('%') {
        Some((addr, zone)) => (addr, Some(zone)),
        None => (text, None),
    };
    let zone_ok = zone.is_none_or(|z| {
        !z.is_empty()
            && z.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if !zone_ok {
        return None;
    }
    addr.parse().ok()
}

fn is_port(port: &str) -> bool {
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok()
}

/// An IPv6 network inside `::ffff:0:0/96` is the IPv4 network it maps.
pub(crate) fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).map_or(net, |n| n.trunc()),
            None => net.trunc(),
        },
        _ => net.trunc(),
    }
}

/// Parses a comma-separated list of CIDRs or bare addresses; `what` names an
/// entry in the error (`"trusted proxy"`, `"CIDR"`).
pub(crate) fn parse_nets(list: &str, what: &str) -> Result<Vec<IpNet>, Error> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map(canonical_net)
                .map_err(|_| {
                    Error::Config(format!(
                        "invalid {what} {entry:?}: expected an IP address or a CIDR"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entries_parse_in_every_form() {
        let cases: &[(&[u8], Entry)] = &[
            (b"1.2.3.4", Entry::Addr(ip("1.2.3.4"))),
            (b"  1.2.3.4\t", Entry::Addr(ip("1.2.3.4"))),
            (b"1.2.3.4:5678", Entry::Addr(ip("1.2.3.4"))),
            (b"\"1.2.3.4\"", Entry::Addr(ip("1.2.3.4"))),
            (b"2001:db8::1", Entry::Addr(ip("2001:db8::1"))),
            (b"[2001:db8::1]", Entry::Addr(ip("2001:db8::1"))),
            (b"[2001:db8::1]:443", Entry::Addr(ip("2001:db8::1"))),
            (b"\"[2001:db8::1]:443\"", Entry::Addr(ip("2001:db8::1"))),
            (b"fe80::1%eth0", Entry::Addr(ip("fe80::1"))),
            (b"[fe80::1%25eth0]:80", Entry::Addr(ip("fe80::1"))),
            (b"::ffff:1.2.3.4", Entry::Addr(ip("1.2.3.4"))),
            (b"", Entry::Empty),
            (b"   ", Entry::Empty),
            (b"unknown", Entry::Garbage),
            (b"_hidden", Entry::Garbage),
            (b"1.2.3.4%eth0", Entry::Garbage),
            (b"fe80::1%", Entry::Garbage),
            (b"fe80::1%e th0", Entry::Garbage),
            (b"1.2.3.4:", Entry::Garbage),
            (b"1.2.3.4:99999", Entry::Garbage),
            (b"1.2.3.4:80:80", Entry::Garbage),
            (b"[2001:db8::1]x", Entry::Garbage),
            (b"[2001:db8::1", Entry::Garbage),
            (b"[1.2.3.4]", Entry::Garbage),
            (b"2001:db8::1:443x", Entry::Garbage),
            (b"\"1.2.3.4", Entry::Garbage),
            (b"1.2.3.4\xff", Entry::Garbage),
            (b"256.0.0.1", Entry::Garbage),
        ];
        for (raw, want) in cases {
            assert_eq!(
                &parse_entry(raw),
                want,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn mapped_networks_become_ipv4() {
        let nets = parse_nets("::ffff:10.0.0.0/104, 10.1.2.3/8", "CIDR").unwrap();
        assert_eq!(nets, vec!["10.0.0.0/8".parse::<IpNet>().unwrap(); 2]);
    }
}
