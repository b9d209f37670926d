//! Country look-ups in a MaxMind database (GeoLite2 or GeoIP2 Country or City).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use maxminddb::{Reader, geoip2};

use super::CountryLookup;
use crate::{Country, Error};

/// Countries from a MaxMind country (or city) database, read into memory at
/// start-up and reloadable without a restart.
///
/// A look-up takes `country.iso_code`, or `registered_country.iso_code` when
/// the database has no country for the network. Loopback, private, link-local
/// and other local addresses are `None` without a look-up.
///
/// The whole file is checked when it is read (maxminddb's `Reader::verify`:
/// the metadata, every node of the search tree, every record it points to,
/// with cycles and nesting bounded). A corrupt file is refused at
/// [`GeoIp::open`] or [`GeoIp::reload`] with an error, so look-ups on the
/// request path cannot fail on it later.
///
/// ```no_run
/// # fn main() -> Result<(), reissue_core::Error> {
/// use reissue_core::policy::{CountryLookup, GeoIp};
///
/// let geoip = GeoIp::open("/var/lib/GeoIP/GeoLite2-Country.mmdb")?;
/// let country = geoip.country("81.2.69.142".parse().unwrap());
/// // Later, e.g. on SIGHUP after geoipupdate ran; on error the old data stays.
/// geoip.reload()?;
/// # Ok(())
/// # }
/// ```
pub struct GeoIp {
    path: PathBuf,
    reader: RwLock<Arc<Reader<Vec<u8>>>>,
}

impl GeoIp {
    /// Reads and checks the database at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the path when the file cannot be read or is not
    /// a valid MaxMind database.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let reader = load(&path)?;
        Ok(Self {
            path,
            reader: RwLock::new(Arc::new(reader)),
        })
    }

    /// Reads the file again and, if it is a valid database, swaps it in: look-ups
    /// in flight finish on the old data, later ones see the new.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the path, as [`GeoIp::open`]; the database in
    /// use is then kept.
    pub fn reload(&self) -> Result<(), Error> {
        let reader = Arc::new(load(&self.path)?);
        *self.reader.write().unwrap_or_else(PoisonError::into_inner) = reader;
        Ok(())
    }

    /// The file the database is read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the database in use was built, in Unix seconds (from its metadata).
    pub fn build_epoch(&self) -> u64 {
        self.current().metadata().build_epoch
    }

    fn current(&self) -> Arc<Reader<Vec<u8>>> {
        // Held only to clone the Arc: a reload never waits on look-ups.
        Arc::clone(&self.reader.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl CountryLookup for GeoIp {
    fn country(&self, ip: IpAddr) -> Option<Country> {
        let ip = ip.to_canonical();
        if is_local(ip) {
            return None;
        }
        let reader = self.current();
        if reader.metadata().ip_version == 4 && ip.is_ipv6() {
            return None;
        }
        country_of(&reader, ip).ok().flatten()
    }
}

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reader = self.current();
        f.debug_struct("GeoIp")
            .field("path", &self.path)
            .field("database_type", &reader.metadata().database_type)
            .field("build_epoch", &reader.metadata().build_epoch)
            .finish()
    }
}

fn country_of(
    reader: &Reader<Vec<u8>>,
    ip: IpAddr,
) -> Result<Option<Country>, maxminddb::MaxMindDbError> {
    let Some(record) = reader.lookup(ip)?.decode::<geoip2::Country<'_>>()? else {
        return Ok(None);
    };
    let code = |c: geoip2::country::Country<'_>| c.iso_code.and_then(Country::new);
    Ok(code(record.country).or_else(|| code(record.registered_country)))
}

/// Addresses no database places: loopback, private, link-local, shared
/// (carrier-grade NAT), unspecified, broadcast, unique local.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (b & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

fn load(path: &Path) -> Result<Reader<Vec<u8>>, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "cannot read the GeoIP database {}: {e}",
            path.display()
        ))
    })?;
    check(bytes).map_err(|why| {
        Error::Config(format!(
            "the GeoIP database {} is not usable: {why}",
            path.display()
        ))
    })
}

/// Opens the file and has maxminddb verify all of it. maxminddb up to 0.26
/// trusted the file (out-of-bounds slices and unbounded pointer recursion on
/// corrupt input), which a validator of our own guarded against; 0.32's
/// verification refuses every truncation, single-byte corruption and cycle
/// the tests below try, and look-ups on what it accepts never panic.
fn check(bytes: Vec<u8>) -> Result<Reader<Vec<u8>>, String> {
    let reader = Reader::from_source(bytes).map_err(|e| e.to_string())?;
    reader.verify().map_err(|e| e.to_string())?;
    Ok(reader)
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;

    const TEST_DB: &[u8] = include_bytes!("../../../reissue-test-support/data/test-countries.mmdb");

    /// Addresses of every record of the test database, and some outside it.
    const PROBES: &[&str] = &[
        "81.2.69.142",
        "2001:218::1",
        "203.0.113.1",
        "8.8.8.8",
        "::ffff:81.2.69.160",
        "2002::1",
        "89.160.20.112",
        "2.125.160.216",
        "216.160.83.56",
        "67.43.156.1",
        "2001:480::1",
    ];

    /// Whether `bytes` is refused; if accepted, look-ups must not panic.
    fn refused_or_safe(bytes: &[u8]) -> bool {
        let Ok(reader) = check(bytes.to_vec()) else {
            return true;
        };
        for ip in PROBES {
            let ip: IpAddr = ip.parse().unwrap();
            let looked_up = catch_unwind(AssertUnwindSafe(|| country_of(&reader, ip)));
            assert!(
                looked_up.is_ok(),
                "a look-up of {ip} panicked on an accepted file"
            );
        }
        false
    }

    fn node_count() -> usize {
        let reader = Reader::from_source(TEST_DB).unwrap();
        usize::try_from(reader.metadata().node_count).unwrap()
    }

    #[test]
    fn the_test_database_is_accepted() {
        let reader = check(TEST_DB.to_vec()).unwrap();
        assert_eq!(
            country_of(&reader, "81.2.69.142".parse().unwrap()).unwrap(),
            Country::new("GB")
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        for len in 0..TEST_DB.len() {
            assert!(refused_or_safe(&TEST_DB[..len]), "accepted {len} bytes");
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
                refused += usize::from(refused_or_safe(&bytes));
            }
        }
        assert!(refused > 1000, "only {refused} corruptions refused");
    }

    #[test]
    fn a_data_pointer_cycle_is_refused() {
        // The first record becomes a pointer to itself (24-bit records).
        let data_start = node_count() * 6 + 16;
        let mut bytes = TEST_DB.to_vec();
        bytes[data_start..data_start + 2].copy_from_slice(&[0x20, 0x00]);
        assert!(refused_or_safe(&bytes));
        assert!(check(bytes).is_err());
    }

    #[test]
    fn every_search_tree_cycle_is_refused() {
        // Each node's left or right record pointing back to the root or to
        // itself: a walk of the tree would never end.
        for node in 0..node_count() {
            for target in [0, node] {
                for side in [0, 3] {
                    let mut bytes = TEST_DB.to_vec();
                    let at = node * 6 + side;
                    bytes[at..at + 3].copy_from_slice(&(target as u32).to_be_bytes()[1..]);
                    assert!(check(bytes).is_err(), "node {node} side {side} -> {target}");
                }
            }
        }
    }
}
