//! The test GeoIP database: [`TEST_DB`], the small country database the
//! tests look addresses up in, and the writer it is made with, so that a
//! test can write a database of its own ([`write_mmdb`]) and check the
//! committed file against its generator ([`test_database`]). Regenerate the
//! file with
//!
//! ```text
//! cargo run -p reissue-test-support --example make_test_mmdb
//! ```
//!
//! The networks and countries are those of MaxMind's public test database
//! (`GeoLite2-Country-Test.mmdb`, MIT licensed), so an address means the same
//! in both; `registered_country` is copied too:
//!
//! | network            | country | registered country |
//! |--------------------|---------|--------------------|
//! | 2.125.160.216/29   | GB      | FR                 |
//! | 67.43.156.0/24     | BT      | RO                 |
//! | 81.2.69.142/31     | GB      | US                 |
//! | 81.2.69.144/28     | GB      | US                 |
//! | 81.2.69.160/27     | GB      | US                 |
//! | 81.2.69.192/28     | GB      | US                 |
//! | 89.160.20.112/28   | SE      | DE                 |
//! | 89.160.20.128/25   | SE      | DE                 |
//! | 216.160.83.56/29   | US      | GB                 |
//! | 2001:218::/32      | JP      | JP                 |
//! | 2a02:cf40::/29     | NO      | NO                 |
//! | 203.0.113.0/24     | none    | AU                 |
//!
//! The last one is ours (a documentation range): a network with a registered
//! country and no country, to test the fallback. Every other address is not in
//! the database.
//!
//! The writer follows the MaxMind DB format 2.0
//! (<https://maxmind.github.io/MaxMind-DB/>): a binary search tree over 128-bit
//! addresses (`ip_version` 6) with IPv4 at `::/96` and aliased at
//! `::ffff:0:0/96` as MaxMind does, 24-bit records, 16 zero bytes, a data
//! section of maps `{country: {iso_code}, registered_country: {iso_code}}`,
//! and the metadata map after `"\xab\xcd\xefMaxMind.com"`. It is deterministic:
//! the same input gives the same bytes (the build time is fixed), which a test
//! checks against the committed file.

use std::collections::BTreeMap;

use ipnet::IpNet;

/// What the database says about one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// `country.iso_code`.
    pub country: Option<&'static str>,
    /// `registered_country.iso_code`.
    pub registered_country: Option<&'static str>,
}

/// A network whose country and registered country are `country`.
pub const fn home(country: &'static str) -> Place {
    Place {
        country: Some(country),
        registered_country: Some(country),
    }
}

/// The committed test database, a file of this crate.
pub const TEST_DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/test-countries.mmdb");

/// The committed test database: network, country, registered country.
pub const TEST_NETWORKS: &[(&str, Option<&str>, Option<&str>)] = &[
    ("2.125.160.216/29", Some("GB"), Some("FR")),
    ("67.43.156.0/24", Some("BT"), Some("RO")),
    ("81.2.69.142/31", Some("GB"), Some("US")),
    ("81.2.69.144/28", Some("GB"), Some("US")),
    ("81.2.69.160/27", Some("GB"), Some("US")),
    ("81.2.69.192/28", Some("GB"), Some("US")),
    ("89.160.20.112/28", Some("SE"), Some("DE")),
    ("89.160.20.128/25", Some("SE"), Some("DE")),
    ("216.160.83.56/29", Some("US"), Some("GB")),
    ("2001:218::/32", Some("JP"), Some("JP")),
    ("2a02:cf40::/29", Some("NO"), Some("NO")),
    ("203.0.113.0/24", None, Some("AU")),
];

/// When the committed database was "built" (fixed, so the output is reproducible).
pub const BUILD_EPOCH: u64 = 1_700_000_000;

/// The bytes of the committed test database.
pub fn test_database() -> Vec<u8> {
    let networks: Vec<(IpNet, Place)> = TEST_NETWORKS
        .iter()
        .map(|&(net, country, registered_country)| {
            (
                net.parse().expect("a valid network"),
                Place {
                    country,
                    registered_country,
                },
            )
        })
        .collect();
    write_mmdb(&networks, BUILD_EPOCH).expect("the test networks do not overlap")
}

/// A MaxMind DB mapping each network to its place. Networks must not overlap,
/// nor be `/0`, nor cover `::ffff:0:0/96` (where IPv4 is aliased).
pub fn write_mmdb(networks: &[(IpNet, Place)], build_epoch: u64) -> Result<Vec<u8>, String> {
    let mut tree = Tree::default();
    let mut places: Vec<Place> = Vec::new();
    for &(net, place) in networks {
        let index = places.iter().position(|p| *p == place).unwrap_or_else(|| {
            places.push(place);
            places.len() - 1
        });
        let (bits, len) = match net.trunc() {
            IpNet::V4(v4) => (u128::from(u32::from(v4.addr())), 96 + v4.prefix_len()),
            IpNet::V6(v6) => (u128::from(v6.addr()), v6.prefix_len()),
        };
        tree.insert(bits, len, Slot::Data(index))
            .map_err(|why| format!("{net}: {why}"))?;
    }
    // IPv4 lives at ::/96; MaxMind also answers ::ffff:a.b.c.d from it.
    if let Some(ipv4_root) = tree.node_at(0, 96) {
        tree.insert(0xffff << 32, 96, Slot::Node(ipv4_root))
            .map_err(|why| format!("::ffff:0:0/96: {why}"))?;
    }

    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for place in &places {
        offsets.push(data.len());
        let mut entries = Vec::new();
        if let Some(code) = place.country {
            entries.push(("country", code));
        }
        if let Some(code) = place.registered_country {
            entries.push(("registered_country", code));
        }
        write_header(&mut data, MAP, entries.len());
        for (key, code) in entries {
            write_str(&mut data, key);
            write_header(&mut data, MAP, 1);
            write_str(&mut data, "iso_code");
            write_str(&mut data, code);
        }
    }

    let node_count = tree.nodes.len();
    if node_count + 16 + data.len() >= 1 << 24 {
        return Err("too large for 24-bit records".to_owned());
    }
    let record = |slot: Slot| match slot {
        Slot::Empty => node_count,
        Slot::Node(n) => n,
        Slot::Data(i) => node_count + 16 + offsets[i],
    };
    let mut out = Vec::with_capacity(node_count * 6 + 16 + data.len() + 512);
    for node in &tree.nodes {
        for &slot in node {
            let value = u32::try_from(record(slot)).map_err(|_| "record out of range")?;
            out.extend_from_slice(&value.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    write_metadata(&mut out, node_count, build_epoch);
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    Node(usize),
    Data(usize),
}

/// The search tree: node 0 is the root; each node has a slot per bit value.
#[derive(Debug)]
struct Tree {
    nodes: Vec<[Slot; 2]>,
}

impl Default for Tree {
    fn default() -> Self {
        Self {
            nodes: vec![[Slot::Empty; 2]],
        }
    }
}

impl Tree {
    fn bit(bits: u128, depth: u8) -> usize {
        usize::from((bits >> (127 - depth)) & 1 == 1)
    }

    /// Sets the slot for the first `len` bits of `bits`, creating the nodes on the way.
    fn insert(&mut self, bits: u128, len: u8, value: Slot) -> Result<(), String> {
        if len == 0 || len > 128 {
            return Err("prefix length out of range".to_owned());
        }
        let mut node = 0;
        for depth in 0..len - 1 {
            let bit = Self::bit(bits, depth);
            node = match self.nodes[node][bit] {
                Slot::Node(next) => next,
                Slot::Empty => {
                    self.nodes.push([Slot::Empty; 2]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][bit] = Slot::Node(next);
                    next
                }
                Slot::Data(_) => return Err("overlaps an earlier network".to_owned()),
            };
        }
        let slot = &mut self.nodes[node][Self::bit(bits, len - 1)];
        if *slot != Slot::Empty {
            return Err("overlaps an earlier network".to_owned());
        }
        *slot = value;
        Ok(())
    }

    /// The node reached by the first `len` bits of `bits`, if there is one.
    fn node_at(&self, bits: u128, len: u8) -> Option<usize> {
        (0..len).try_fold(0, |node, depth| {
            match self.nodes[node][Self::bit(bits, depth)] {
                Slot::Node(next) => Some(next),
                _ => None,
            }
        })
    }
}

const STRING: u8 = 2;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const UINT64: u8 = 9;
const ARRAY: u8 = 11;

fn write_header(out: &mut Vec<u8>, ty: u8, size: usize) {
    let (size_field, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, vec![]),
        29..=284 => (29, vec![(size - 29) as u8]),
        285..=65_820 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
    };
    if ty <= 7 {
        out.push((ty << 5) | size_field);
    } else {
        out.push(size_field);
        out.push(ty - 7);
    }
    out.extend_from_slice(&extra);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_header(out, STRING, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn write_uint(out: &mut Vec<u8>, ty: u8, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    write_header(out, ty, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn write_metadata(out: &mut Vec<u8>, node_count: usize, build_epoch: u64) {
    let description: BTreeMap<&str, &str> = [(
        "en",
        "reissue-core test countries, after MaxMind's GeoLite2-Country-Test",
    )]
    .into();
    write_header(out, MAP, 9);
    write_str(out, "binary_format_major_version");
    write_uint(out, UINT16, 2);
    write_str(out, "binary_format_minor_version");
    write_uint(out, UINT16, 0);
    write_str(out, "build_epoch");
    write_uint(out, UINT64, build_epoch);
    write_str(out, "database_type");
    write_str(out, "reissue-Test-Country");
    write_str(out, "description");
    write_header(out, MAP, description.len());
    for (lang, text) in description {
        write_str(out, lang);
        write_str(out, text);
    }
    write_str(out, "ip_version");
    write_uint(out, UINT16, 6);
    write_str(out, "languages");
    write_header(out, ARRAY, 1);
    write_str(out, "en");
    write_str(out, "node_count");
    write_uint(out, UINT32, node_count as u64);
    write_str(out, "record_size");
    write_uint(out, UINT16, 24);
}
