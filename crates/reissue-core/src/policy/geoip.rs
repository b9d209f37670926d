//! Country look-ups in a MaxMind database (GeoLite2 or GeoIP2 Country or City).

use std::fmt;
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use maxminddb::{Reader, geoip2};

use super::CountryLookup;
use crate::{Country, Error};

mod layout;

/// Countries from a MaxMind country (or city) database, read into memory at
/// start-up and reloadable without a restart.
///
/// A look-up takes `country.iso_code`, or `registered_country.iso_code` when
/// the database has no country for the network. Loopback, private, link-local
/// and other local addresses are `None` without a look-up.
///
/// The whole file is checked when it is read: every node of the search tree and
/// every record it points to. A corrupt file is refused at [`GeoIp::open`] or
/// [`GeoIp::reload`] with an error, so look-ups on the request path cannot
/// fail on it later.
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
        self.current().metadata.build_epoch
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
        if reader.metadata.ip_version == 4 && ip.is_ipv6() {
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
            .field("database_type", &reader.metadata.database_type)
            .field("build_epoch", &reader.metadata.build_epoch)
            .finish()
    }
}

fn country_of(
    reader: &Reader<Vec<u8>>,
    ip: IpAddr,
) -> Result<Option<Country>, maxminddb::MaxMindDbError> {
    let Some(record) = reader.lookup::<geoip2::Country<'_>>(ip)? else {
        return Ok(None);
    };
    let code =
        |c: Option<geoip2::country::Country<'_>>| c.and_then(|c| c.iso_code).and_then(Country::new);
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

/// Checks the whole file (see [`layout`]), then has maxminddb decode every
/// distinct record once, so that no look-up can later fail or panic on it.
/// The panic guards are a second line: `layout` already refuses everything
/// maxminddb would slice out of bounds or recurse on without end.
fn check(bytes: Vec<u8>) -> Result<Reader<Vec<u8>>, String> {
    let probes = layout::check(&bytes)?;
    let reader = catch_unwind(AssertUnwindSafe(|| Reader::from_source(bytes)))
        .map_err(|_| "corrupt metadata or search tree".to_owned())?
        .map_err(|e| e.to_string())?;
    for ip in probes {
        match catch_unwind(AssertUnwindSafe(|| country_of(&reader, ip))) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("the record for {ip}: {e}")),
            Err(_) => return Err(format!("corrupt record for {ip}")),
        }
    }
    Ok(reader)
}
