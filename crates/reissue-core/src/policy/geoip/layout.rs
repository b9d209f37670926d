//! A structural check of a MaxMind DB file, before maxminddb sees it.
//!
//! maxminddb 0.26 trusts the file: it slices its buffer without bounds checks
//! and follows data pointers recursively without a depth limit, so a corrupt
//! file can panic, or overflow the stack through a pointer cycle. This module
//! reads the file the way maxminddb does (same size and pointer arithmetic)
//! and refuses anything that would go out of bounds, nest deeper than
//! [`MAX_DEPTH`] or hold more than [`MAX_VALUES_PER_RECORD`] values.
//!
//! Format: <https://maxmind.github.io/MaxMind-DB/>.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";
const DATA_SEPARATOR_LEN: usize = 16;

/// Nesting of maps, arrays and pointers. Real databases nest 4 or 5 deep.
const MAX_DEPTH: u32 = 32;
/// Values in one record, pointed-to values included. A GeoIP2 City record
/// holds a few hundred.
const MAX_VALUES_PER_RECORD: usize = 100_000;

/// Data types, as numbered by the format.
const POINTER: u8 = 1;
const STRING: u8 = 2;
const DOUBLE: u8 = 3;
const BYTES: u8 = 4;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const INT32: u8 = 8;
const UINT64: u8 = 9;
const UINT128: u8 = 10;
const ARRAY: u8 = 11;
const BOOLEAN: u8 = 14;
const FLOAT: u8 = 15;

/// Checks the metadata, every node of the search tree reachable from its root,
/// and every data record those nodes point to. Returns one address per distinct
/// record, for the caller to decode each once.
pub(super) fn check(bytes: &[u8]) -> Result<Vec<IpAddr>, String> {
    let marker = bytes
        .windows(METADATA_MARKER.len())
        .rposition(|w| w == METADATA_MARKER)
        .ok_or("no MaxMind DB metadata (not a .mmdb file, or truncated)")?;
    let meta = Metadata::read(&bytes[marker + METADATA_MARKER.len()..])?;
    let bits: u32 = match meta.ip_version {
        4 => 32,
        6 => 128,
        v => return Err(format!("unsupported ip_version {v}")),
    };
    let record_size = match meta.record_size {
        s @ (24 | 28 | 32) => s,
        s => return Err(format!("unsupported record_size {s}")),
    };
    let node_count = usize::try_from(meta.node_count).map_err(|_| "node_count out of range")?;
    let tree_len = node_count
        .checked_mul(usize::from(record_size) / 4)
        .filter(|&len| node_count > 0 && len + DATA_SEPARATOR_LEN <= marker)
        .ok_or_else(|| format!("the search tree ({node_count} nodes) does not fit in the file"))?;
    let data_len = marker - tree_len - DATA_SEPARATOR_LEN;
    let tree = &bytes[..tree_len];

    // Depth-first over every node reachable from the root, each once, keeping
    // the first address that reaches each distinct record.
    let mut seen = vec![false; node_count];
    let mut records = Vec::new();
    let mut seen_records = HashSet::new();
    let mut stack = vec![(0_usize, 0_u128, 0_u32)];
    seen[0] = true;
    while let Some((node, prefix, depth)) = stack.pop() {
        if depth >= bits {
            return Err("the search tree is deeper than an address is long".to_owned());
        }
        for bit in 0..2_u8 {
            let next = read_record(tree, record_size, node, bit);
            let addr = prefix | (u128::from(bit) << (bits - 1 - depth));
            if next < node_count {
                if !seen[next] {
                    seen[next] = true;
                    stack.push((next, addr, depth + 1));
                }
            } else if next > node_count {
                let offset = (next - node_count)
                    .checked_sub(DATA_SEPARATOR_LEN)
                    .filter(|&offset| offset < data_len)
                    .ok_or_else(|| {
                        format!("search tree node {node} points outside the data section")
                    })?;
                if seen_records.insert(offset) {
                    records.push((offset, addr));
                }
            }
        }
    }

    // maxminddb decodes records from a slice that starts at the data section
    // and runs to the end of the file: check them in the same slice.
    let data = &bytes[tree_len + DATA_SEPARATOR_LEN..];
    records
        .into_iter()
        .map(|(offset, addr)| {
            Walker::new(data)
                .skip(offset, 0)
                .map_err(|why| format!("data record at offset {offset}: {why}"))?;
            Ok(match u32::try_from(addr) {
                Ok(v4) if bits == 32 => IpAddr::V4(Ipv4Addr::from(v4)),
                _ => IpAddr::V6(Ipv6Addr::from(addr)),
            })
        })
        .collect()
}

/// One record of a node, as maxminddb's `read_node` reads it.
fn read_record(tree: &[u8], record_size: u16, node: usize, bit: u8) -> usize {
    let at = |i: usize| usize::from(tree[i]);
    match record_size {
        24 => {
            let base = node * 6 + usize::from(bit) * 3;
            (at(base) << 16) | (at(base + 1) << 8) | at(base + 2)
        }
        28 => {
            let base = node * 7;
            if bit == 0 {
                ((at(base + 3) & 0xf0) << 20)
                    | (at(base) << 16)
                    | (at(base + 1) << 8)
                    | at(base + 2)
            } else {
                ((at(base + 3) & 0x0f) << 24)
                    | (at(base + 4) << 16)
                    | (at(base + 5) << 8)
                    | at(base + 6)
            }
        }
        _ => {
            let base = node * 8 + usize::from(bit) * 4;
            (at(base) << 24) | (at(base + 1) << 16) | (at(base + 2) << 8) | at(base + 3)
        }
    }
}

/// The metadata fields the search tree depends on.
#[derive(Debug)]
struct Metadata {
    node_count: u128,
    record_size: u16,
    ip_version: u128,
}

impl Metadata {
    fn read(buf: &[u8]) -> Result<Self, String> {
        let bad = |why: &str| format!("metadata: {why}");
        let mut walker = Walker::new(buf);
        walker.skip(0, 0).map_err(|why| bad(&why))?;
        let (ty, entries, mut pos) = walker.resolve(0).map_err(|why| bad(&why))?;
        if ty != MAP {
            return Err(bad("not a map"));
        }
        let (mut node_count, mut record_size, mut ip_version) = (None, None, None);
        for _ in 0..entries {
            let key_at = pos;
            let value_at = walker.skip(key_at, 0).map_err(|why| bad(&why))?;
            pos = walker.skip(value_at, 0).map_err(|why| bad(&why))?;
            let slot = match walker.string(key_at) {
                Some("node_count") => &mut node_count,
                Some("record_size") => &mut record_size,
                Some("ip_version") => &mut ip_version,
                _ => continue,
            };
            *slot = walker.uint(value_at);
        }
        let node_count = node_count.ok_or_else(|| bad("no node_count"))?;
        let record_size = record_size.ok_or_else(|| bad("no record_size"))?;
        let ip_version = ip_version.ok_or_else(|| bad("no ip_version"))?;
        Ok(Self {
            node_count,
            record_size: u16::try_from(record_size).unwrap_or(0),
            ip_version,
        })
    }
}

/// Reads values the way maxminddb's decoder does, checking every access.
struct Walker<'a> {
    buf: &'a [u8],
    budget: usize,
}

impl<'a> Walker<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            budget: MAX_VALUES_PER_RECORD,
        }
    }

    fn slice(&self, pos: usize, len: usize) -> Result<&'a [u8], String> {
        pos.checked_add(len)
            .and_then(|end| self.buf.get(pos..end))
            .ok_or_else(|| format!("a value at offset {pos} runs past the end of the file"))
    }

    /// The type, the size and where the payload starts, of the value at `pos`.
    fn header(&self, pos: usize) -> Result<(u8, usize, usize), String> {
        let ctrl = self.slice(pos, 1)?[0];
        let mut pos = pos + 1;
        let mut ty = ctrl >> 5;
        if ty == 0 {
            let extended = self.slice(pos, 1)?[0];
            pos += 1;
            ty = extended
                .checked_add(7)
                .filter(|&ty| ty <= FLOAT)
                .ok_or_else(|| format!("unknown data type at offset {}", pos - 2))?;
        }
        // As maxminddb does, for every type, pointers included.
        let size = usize::from(ctrl & 0x1f);
        let extra = size.saturating_sub(28);
        let size_bytes = self.slice(pos, extra)?;
        pos += extra;
        let size = match size {
            0..=28 => size,
            29 => 29 + be(size_bytes),
            30 => 285 + be(size_bytes),
            _ => 65_821 + be(size_bytes),
        };
        Ok((ty, size, pos))
    }

    /// Where a pointer with this size field, whose bytes start at `pos`, points,
    /// and where it ends.
    fn pointer(&self, size: usize, pos: usize) -> Result<(usize, usize), String> {
        let len = ((size >> 3) & 0x3) + 1;
        let bytes = self.slice(pos, len)?;
        let base = if len == 4 { 0 } else { size & 0x7 };
        let unpacked = bytes
            .iter()
            .fold(base, |acc, &b| (acc << 8) | usize::from(b));
        let bias = [0, 0, 2048, 526_336, 0][len];
        Ok((unpacked + bias, pos + len))
    }

    /// Checks the value at `pos`, pointed-to values included; returns where it ends.
    fn skip(&mut self, pos: usize, depth: u32) -> Result<usize, String> {
        if depth > MAX_DEPTH {
            return Err("values nested too deeply (or a pointer cycle)".to_owned());
        }
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or("too many values in one record")?;
        let (ty, size, pos) = self.header(pos)?;
        let fixed = |max: usize| -> Result<usize, String> {
            if size > max {
                return Err(format!("a value of type {ty} and size {size}"));
            }
            self.slice(pos, size).map(|_| pos + size)
        };
        match ty {
            POINTER => {
                let (target, end) = self.pointer(size, pos)?;
                self.skip(target, depth + 1)?;
                Ok(end)
            }
            STRING => {
                let text = self.slice(pos, size)?;
                std::str::from_utf8(text)
                    .map_err(|_| format!("a string at offset {pos} is not UTF-8"))?;
                Ok(pos + size)
            }
            DOUBLE if size == 8 => fixed(8),
            FLOAT if size == 4 => fixed(4),
            BYTES => fixed(usize::MAX),
            UINT16 => fixed(2),
            UINT32 | INT32 => fixed(4),
            UINT64 => fixed(8),
            UINT128 => fixed(16),
            BOOLEAN if size <= 1 => Ok(pos),
            MAP | ARRAY => {
                let items = if ty == MAP {
                    size.saturating_mul(2)
                } else {
                    size
                };
                let mut at = pos;
                for _ in 0..items {
                    at = self.skip(at, depth + 1)?;
                }
                Ok(at)
            }
            _ => Err(format!("a value of type {ty} and size {size}")),
        }
    }

    /// The type, size and payload position of the value at `pos`, pointers followed.
    fn resolve(&self, mut pos: usize) -> Result<(u8, usize, usize), String> {
        for _ in 0..=MAX_DEPTH {
            match self.header(pos)? {
                (POINTER, size, at) => pos = self.pointer(size, at)?.0,
                found => return Ok(found),
            }
        }
        Err("a pointer cycle".to_owned())
    }

    fn string(&self, pos: usize) -> Option<&'a str> {
        match self.resolve(pos).ok()? {
            (STRING, size, at) => std::str::from_utf8(self.slice(at, size).ok()?).ok(),
            _ => None,
        }
    }

    fn uint(&self, pos: usize) -> Option<u128> {
        match self.resolve(pos).ok()? {
            (UINT16 | UINT32 | UINT64 | UINT128, size, at) if size <= 16 => Some(
                self.slice(at, size)
                    .ok()?
                    .iter()
                    .fold(0, |acc, &b| (acc << 8) | u128::from(b)),
            ),
            _ => None,
        }
    }
}

fn be(bytes: &[u8]) -> usize {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | usize::from(b))
}

#[cfg(test)]
mod tests {
    use maxminddb::{Reader, geoip2};

    use super::*;

    const TEST_DB: &[u8] = include_bytes!("../../../tests/data/test-countries.mmdb");

    /// What a look-up would touch, without the panic guards of `GeoIp`: if the
    /// check accepts a file, maxminddb must neither panic nor recurse on it.
    fn use_unguarded(bytes: &[u8]) {
        let Ok(probes) = check(bytes) else { return };
        let Ok(reader) = Reader::from_source(bytes) else {
            return;
        };
        let known = [
            "81.2.69.142",
            "2001:218::1",
            "203.0.113.1",
            "8.8.8.8",
            "::ffff:81.2.69.160",
            "2002::1",
        ];
        for ip in probes
            .into_iter()
            .chain(known.iter().map(|a| a.parse().unwrap()))
        {
            let _ = reader.lookup::<geoip2::Country<'_>>(ip);
            let _ = reader.lookup::<geoip2::City<'_>>(ip);
        }
    }

    #[test]
    fn the_test_database_passes_with_one_probe_per_record() {
        let probes = check(TEST_DB).unwrap();
        // GB/FR, BT/RO, GB/US, SE/DE, US/GB, JP, NO, -/AU.
        assert_eq!(probes.len(), 8, "{probes:?}");
    }

    #[test]
    fn a_pointer_cycle_is_refused() {
        let marker = TEST_DB
            .windows(METADATA_MARKER.len())
            .rposition(|w| w == METADATA_MARKER)
            .unwrap();
        let meta = Metadata::read(&TEST_DB[marker + METADATA_MARKER.len()..]).unwrap();
        let data_start = usize::try_from(meta.node_count).unwrap() * 6 + DATA_SEPARATOR_LEN;
        let mut bytes = TEST_DB.to_vec();
        // The first record becomes a pointer to itself.
        bytes[data_start..data_start + 2].copy_from_slice(&[0x20, 0x00]);
        let why = check(&bytes).unwrap_err();
        assert!(why.contains("nested too deeply"), "{why}");
    }

    #[test]
    fn every_truncation_is_refused_or_safe() {
        for len in 0..TEST_DB.len() {
            assert!(
                check(&TEST_DB[..len]).is_err() || len > TEST_DB.len() - 16,
                "accepted {len} bytes"
            );
            use_unguarded(&TEST_DB[..len]);
        }
    }

    #[test]
    fn every_single_byte_corruption_is_refused_or_safe() {
        let mut refused = 0;
        for at in 0..TEST_DB.len() {
            let old = TEST_DB[at];
            for new in [0x00, 0xff, old ^ 0x01, old ^ 0x10, old ^ 0x20, old ^ 0x80] {
                if new == old {
                    continue;
                }
                let mut bytes = TEST_DB.to_vec();
                bytes[at] = new;
                refused += usize::from(check(&bytes).is_err());
                use_unguarded(&bytes);
            }
        }
        assert!(refused > 1000, "only {refused} corruptions refused");
    }

    /// Guards the guard: single-byte corruptions that make maxminddb itself
    /// panic exist, and the check refuses every one of them.
    #[test]
    fn corruptions_that_panic_maxminddb_are_refused() {
        let (mut panics, mut refused) = (0, 0);
        for at in 0..TEST_DB.len() {
            let old = TEST_DB[at];
            for new in [0x00, 0xff, old ^ 0x01, old ^ 0x10, old ^ 0x20, old ^ 0x80] {
                let mut bytes = TEST_DB.to_vec();
                bytes[at] = new;
                let raw = std::panic::catch_unwind(|| {
                    let Ok(reader) = Reader::from_source(&bytes[..]) else {
                        return;
                    };
                    for ip in check(TEST_DB).unwrap() {
                        let _ = reader.lookup::<geoip2::Country<'_>>(ip);
                    }
                });
                if raw.is_err() {
                    panics += 1;
                    refused += usize::from(check(&bytes).is_err());
                }
            }
        }
        assert!(
            panics > 0,
            "no corruption made maxminddb panic: this test no longer tests anything"
        );
        assert_eq!(refused, panics);
    }
}
