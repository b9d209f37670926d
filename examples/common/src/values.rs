//! The value parsers of the example apps' settings: one small pure function
//! per kind of value, `&str` in, the value or the refusal (without the
//! variable's name, which [`setting`] adds) out. They never read a file or
//! the environment, and never echo a value that may be secret, so that they
//! can be fuzzed as they are.
//!
//! The apps' flags run each value through one of these via [`setting`]
//! (a blank value counts as unset: the parser sees the default, or `""`).
//! The ones the admin CLI shares come from [`reissue_admin::value`] and
//! are re-exported here, so that this module lists every parser.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use reissue_core::policy::{CountryRule, TrustedProxies};
use reissue_core::{DpopMode, Origin, RevocationMode};

pub use reissue_admin::value::{
    Setting, parse_optional_text, parse_seconds, parse_text, refusal, setting,
};

/// Key material (the HMAC secret, a key file's bytes), which `Debug` (and
/// so a logged `Settings`) never shows.
#[derive(Clone)]
pub struct Secret(pub(crate) Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The shortest HMAC secret taken: HS256's key length.
const MIN_SECRET: usize = 32;

/// `host:port`.
pub fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| format!("expected host:port, got `{v}`"))
}

/// The HMAC secret: at least 32 bytes. Blank is refused, not unset: a
/// deployment whose secret went missing would otherwise log everyone out at
/// each start (a random key) instead of failing. Never echoed.
pub fn parse_secret(v: &str) -> Result<Secret, String> {
    match v.len() {
        0 => Err(
            "is set but empty; set a secret of at least 32 bytes, or unset it for a random key"
                .into(),
        ),
        n if n < MIN_SECRET => Err(format!("must be at least {MIN_SECRET} bytes, got {n}")),
        _ => Ok(Secret(v.as_bytes().to_vec())),
    }
}

/// A file's path; `None` when blank. The file is read later, once every
/// value has parsed.
pub fn parse_optional_path(v: &str) -> Result<Option<PathBuf>, String> {
    Ok(Some(v).filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// Comma-separated paths; blank entries are skipped.
pub fn parse_paths(v: &str) -> Result<Vec<PathBuf>, String> {
    Ok(list(v).map(PathBuf::from).collect())
}

/// `0` or `1` (`false` or `true`).
pub fn parse_switch(v: &str) -> Result<bool, String> {
    match v {
        "0" | "false" => Ok(false),
        "1" | "true" => Ok(true),
        _ => Err(format!("expected 0 or 1, got `{v}`")),
    }
}

/// A whole number.
pub fn parse_count(v: &str) -> Result<u32, String> {
    v.parse()
        .map_err(|_| format!("expected a number, got `{v}`"))
}

/// Whole seconds, or `None` when blank (unset).
pub fn parse_optional_seconds(v: &str) -> Result<Option<Duration>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    parse_seconds(v).map(Some)
}

/// A fraction from 0 to 0.5 (e.g. `0.1`: ±10 %).
pub fn parse_jitter(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(f) if (0.0..=0.5).contains(&f) => Ok(f),
        _ => Err(format!("expected a fraction from 0 to 0.5, got `{v}`")),
    }
}

/// `stateless`, `instant` or `strict`.
pub fn parse_revocation(v: &str) -> Result<RevocationMode, String> {
    RevocationMode::parse(v)
        .ok_or_else(|| format!("expected stateless, instant or strict, got `{v}`"))
}

/// `off`, `optional` or `required`.
pub fn parse_dpop(v: &str) -> Result<DpopMode, String> {
    match v {
        "off" => Ok(DpopMode::Off),
        "optional" => Ok(DpopMode::Optional),
        "required" => Ok(DpopMode::Required),
        _ => Err(format!("expected off, optional or required, got `{v}`")),
    }
}

/// One origin (`https://app.example.com`), or nothing.
pub fn parse_optional_origin(v: &str) -> Result<Option<Origin>, String> {
    match v.trim() {
        "" => Ok(None),
        o => Origin::parse(o).map(Some).map_err(|e| e.to_string()),
    }
}

/// Comma-separated origins (`https://app.example.com`).
pub fn parse_origins(v: &str) -> Result<Vec<Origin>, String> {
    list(v)
        .map(|o| Origin::parse(o).map_err(|e| e.to_string()))
        .collect()
}

/// Comma-separated emails, lower-cased.
pub fn parse_emails(v: &str) -> Result<HashSet<String>, String> {
    Ok(list(v).map(str::to_lowercase).collect())
}

/// Comma-separated CIDRs or addresses.
pub fn parse_proxies(v: &str) -> Result<TrustedProxies, String> {
    TrustedProxies::parse(v).map_err(|e| e.to_string())
}

/// Comma-separated ISO country codes to allow; `None` (no rule) when blank.
pub fn parse_countries(v: &str) -> Result<Option<CountryRule>, String> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    CountryRule::parse_allow(v)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The entries of a comma-separated list, trimmed, blank ones skipped.
fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_skip_blank_entries() {
        assert_eq!(
            parse_paths(" a, ,b ,").unwrap(),
            [PathBuf::from("a"), "b".into()]
        );
        assert!(parse_paths("").unwrap().is_empty());
        assert_eq!(
            parse_emails("Root@Example.com, ,x@y.z").unwrap(),
            HashSet::from(["root@example.com".to_owned(), "x@y.z".to_owned()])
        );
        assert!(parse_origins("").unwrap().is_empty());
        assert!(parse_origins("https://a.example, ftp://b").is_err());
        assert!(parse_proxies("").unwrap().is_empty());
        assert_eq!(parse_countries("").unwrap(), None);
        assert!(parse_countries("GB, de").unwrap().is_some());
        assert!(parse_countries("Narnia").is_err());
    }

    #[test]
    fn a_secret_is_never_in_its_refusal() {
        let why = parse_secret("short-but-secret").unwrap_err();
        assert!(why.contains("16") && !why.contains("secret"), "{why}");
        assert!(parse_secret("").unwrap_err().contains("empty"));
        assert!(parse_secret(&"s".repeat(32)).is_ok());
    }

    #[test]
    fn switches_and_numbers() {
        assert_eq!(parse_switch("true"), Ok(true));
        assert_eq!(parse_switch("0"), Ok(false));
        assert!(parse_switch("maybe").is_err());
        assert_eq!(parse_count("5"), Ok(5));
        assert!(parse_count("-1").is_err());
        assert!(parse_addr("nowhere").is_err());
        assert_eq!(parse_revocation("STRICT"), Ok(RevocationMode::Strict));
        assert_eq!(parse_optional_seconds(""), Ok(None));
        assert_eq!(parse_optional_seconds("0"), Ok(Some(Duration::ZERO)));
        assert_eq!(
            parse_optional_seconds("30"),
            Ok(Some(Duration::from_secs(30)))
        );
        assert!(parse_optional_seconds("forever").is_err());
        assert_eq!(parse_jitter("0.1"), Ok(0.1));
        assert_eq!(parse_jitter("0"), Ok(0.0));
        for bad in ["0.6", "-0.1", "NaN", "ten"] {
            assert!(parse_jitter(bad).is_err(), "{bad}");
        }
    }
}
