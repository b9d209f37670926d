//! What a session keeps of its client's `User-Agent`: what the session list
//! shows a person ("Firefox 128 / Windows 10"), not the header itself.
//!
//! Parsing a header costs woothee 2–3 µs, paid by every login and every
//! rotation of a browser's session (a tenth of a rotation's whole cost on the
//! server). A client sends the same header each time and a site sees few
//! distinct ones, so summaries are remembered: a bounded map, header to
//! summary, emptied when full (headers of the attacker's choosing then cost
//! what they cost without it, and memory stays bounded).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// At most this many bytes of a user agent are stored: enough for any
/// browser + OS summary, and a raw header the parser does not know
/// (`MyApp/3.2 (iOS)`, `curl/8.5.0`) is kept this far.
pub(crate) const MAX_STORED: usize = 48;

/// The user agent as a session stores and lists it: the browser, its major
/// version and the OS when the header names a browser the parser knows
/// (woothee: the major browsers, crawlers, feature phones), else the header
/// itself cut to [`MAX_STORED`] bytes.
pub(crate) fn summary(header: &str) -> String {
    let memo = memo();
    if let Some(known) = lock(memo).get(header) {
        return known.to_string();
    }
    let summary = parse(header);
    let mut map = lock(memo);
    if map.len() >= REMEMBERED {
        map.clear();
    }
    map.insert(header.into(), summary.as_str().into());
    summary
}

/// How many headers' summaries are remembered at most.
const REMEMBERED: usize = 1024;

/// Header → summary. The key is the client's: hashed with a per-process
/// seed, and the bound keeps a flood of distinct headers harmless.
type Map = HashMap<Box<str>, Box<str>, foldhash::quality::RandomState>;
type Memo = Mutex<Map>;

fn memo() -> &'static Memo {
    static MEMO: OnceLock<Memo> = OnceLock::new();
    MEMO.get_or_init(Memo::default)
}

fn lock(memo: &Memo) -> MutexGuard<'_, Map> {
    // a panic elsewhere cannot leave a half-written entry: the map stays usable
    memo.lock().unwrap_or_else(|p| p.into_inner())
}

fn parse(header: &str) -> String {
    let known = |s: &str| !s.is_empty() && s != "UNKNOWN";
    let summary = woothee::parser::Parser::new()
        .parse(header)
        .filter(|r| known(r.name) && r.category != "misc")
        .map(|r| {
            let major = r.version.split('.').next().filter(|v| known(v));
            let browser = match major {
                Some(v) => format!("{} {v}", r.name),
                None => r.name.to_owned(),
            };
            if known(r.os) {
                format!("{browser} / {}", r.os)
            } else {
                browser
            }
        });
    cut(&summary.unwrap_or_else(|| header.to_owned()), MAX_STORED).to_owned()
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_reduced_to_name_version_and_os() {
        for (header, shown) in [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox 128 / Windows 10",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox 128 / Linux",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                "Chrome 126 / Mac OSX",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari 17 / iPhone",
            ),
        ] {
            assert_eq!(summary(header), shown, "{header}");
        }
    }

    #[test]
    fn unknown_clients_keep_a_bounded_header() {
        assert_eq!(summary("curl/8.5.0"), "curl/8.5.0");
        assert_eq!(
            summary("conformance-two/2.0 (X11)"),
            "conformance-two/2.0 (X11)"
        );
        let long = "é".repeat(100);
        let kept = summary(&long);
        assert!(
            kept.len() <= MAX_STORED && long.starts_with(&kept),
            "{kept}"
        );
        assert_eq!(summary(""), "");
    }

    #[test]
    fn summaries_are_remembered_within_a_bound() {
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(summary(firefox), "Firefox 128 / Windows 10");
        // a flood of distinct headers: each answered as parsed, the map bounded
        for n in 0..3 * REMEMBERED {
            let header = format!("flood/{n}");
            assert_eq!(summary(&header), parse(&header));
            assert!(lock(memo()).len() <= REMEMBERED);
        }
        // remembered once asked, and answered the same (emptied first, so that
        // the other tests' few headers cannot fill it meanwhile)
        lock(memo()).clear();
        assert_eq!(summary(firefox), "Firefox 128 / Windows 10");
        assert_eq!(summary(firefox), "Firefox 128 / Windows 10");
        assert_eq!(
            lock(memo()).get(firefox).map(|s| &**s),
            Some("Firefox 128 / Windows 10")
        );
    }
}
