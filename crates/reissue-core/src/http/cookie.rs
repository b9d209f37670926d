//! The browser transport of the refresh token (CONTRACT.md, "Cookie
//! transport"): an `HttpOnly` cookie that page scripts cannot read, opted into
//! per request, and the checks that keep other sites from using it.
//!
//! Three layers stop a cross-site request from spending a user's cookie: the
//! custom header `X-Reissue-Transport: cookie` (a cross-origin page cannot
//! send it without a CORS preflight the server approves), `Origin` against the
//! allowed origins, and `Sec-Fetch-Site` (OWASP's Fetch Metadata defence);
//! `SameSite=Strict` keeps the browser from attaching the cookie to cross-site
//! requests in the first place.

use std::fmt;

use cookie::time::Duration as CookieDuration;
use cookie::{Cookie, SameSite};

use crate::http::request::HttpRequest;
use crate::{Error, Result};

/// The refresh-token cookie's name. The `__Secure-` prefix makes browsers
/// refuse it unless it is set with `Secure` from a secure origin (`https://`,
/// or `http://localhost`).
pub const REFRESH_COOKIE: &str = "__Secure-reissue-rt";

/// The request header by which a client opts into the cookie transport, with
/// the value `cookie`.
pub const TRANSPORT_HEADER: &str = "x-reissue-transport";

/// Where the cookie is scoped when the request path does not say.
const DEFAULT_PATH: &str = "/auth";

/// A web origin, `scheme://host[:port]` (RFC 6454), as `Origin` headers and
/// the allowed-origins setting spell it. Only `http` and `https`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: &'static str,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `https://app.example.com` or `http://localhost:5173` (a
    /// trailing `/` is accepted). Host and scheme are case-insensitive; a
    /// default port may be written or left out.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "`{s}` is not an origin like https://app.example.com"
            ))
        };
        let s = s.trim();
        let s = s.strip_suffix('/').unwrap_or(s);
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        let scheme = if scheme.eq_ignore_ascii_case("https") {
            "https"
        } else if scheme.eq_ignore_ascii_case("http") {
            "http"
        } else {
            return Err(bad());
        };
        let (host, port) = split_host_port(rest).ok_or_else(bad)?;
        Ok(Self {
            port: port.unwrap_or(default_port(scheme)),
            scheme,
            host,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == default_port(self.scheme) {
            write!(f, "{}://{}", self.scheme, self.host)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// `host[:port]` of an origin or a `Host` header: a DNS name or IPv4 address
/// (letters, digits, `-`, `.`) or a bracketed IPv6 address, lower-cased; the
/// port, when written, 1 to 65535.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        (host.to_owned(), port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&n| n != 0)?)
        }
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// The cookie transport's settings: off unless configured (the example apps
/// turn it on). See CONTRACT.md, "Cookie transport".
///
/// ```
/// use reissue_core::{Config, CookieTransport, Origin};
///
/// let config = Config::new("my-app", "my-app").cookie_transport(
///     CookieTransport::new().allowed_origins([Origin::parse("https://app.example.com")?]),
/// );
/// # Ok::<(), reissue_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct CookieTransport {
    enabled: bool,
    allowed_origins: Vec<Origin>,
    path: Option<String>,
}

impl CookieTransport {
    /// The transport turned on: clients that send `X-Reissue-Transport:
    /// cookie` get the refresh token as a cookie; only same-origin requests
    /// may use it until [`allowed_origins`](Self::allowed_origins) names others.
    pub fn new() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }

    /// The transport turned off (the default): the header is ignored and the
    /// cookie never read, as if the feature did not exist.
    pub fn off() -> Self {
        Self::default()
    }

    /// Whether the transport is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Origins besides the request's own (which is always allowed) whose pages
    /// may use the cookie: an SPA on a sibling origin of the same site, e.g.
    /// `https://app.example.com` calling `https://api.example.com`. Its
    /// requests arrive with `Sec-Fetch-Site: same-site`, which is accepted only
    /// from these. The server must also answer their CORS preflights (see
    /// docs/BROWSER.md).
    pub fn allowed_origins(mut self, origins: impl IntoIterator<Item = Origin>) -> Self {
        self.allowed_origins = origins.into_iter().collect();
        self
    }

    /// The cookie's `Path`. By default it is the prefix the `/auth` endpoints
    /// were reached under, taken from the request path (`/api/auth/login` →
    /// `/api/auth`), else `/auth`. Set it when a proxy rewrites paths.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match &self.path {
            Some(p) if !p.starts_with('/') || !is_safe_path(p) => Err(Error::Config(format!(
                "the cookie path `{p}` must start with `/` and hold only URL path characters"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the request opts into the transport (and the transport is on).
    pub(crate) fn requested(&self, req: &impl HttpRequest) -> bool {
        self.enabled
            && req.header_values(TRANSPORT_HEADER).any(|v| {
                std::str::from_utf8(v).is_ok_and(|v| v.trim().eq_ignore_ascii_case("cookie"))
            })
    }

    /// The refresh token of the cookie, when the transport is on and the
    /// request carries one. More than one is refused, whichever comes first:
    /// a sibling subdomain can plant a second `__Secure-` cookie (with
    /// `Domain=` the parent and a more specific `Path`, so the browser sends it
    /// first), and taking either would let it log the user out (the 401 clears
    /// the real cookie) or into the planted session. The refusal is a 403 that
    /// clears nothing. Empty values (a cookie being removed) are not counted.
    pub(crate) fn token(&self, req: &impl HttpRequest) -> Result<Option<String>> {
        if !self.enabled {
            return Ok(None);
        }
        let mut found = req
            .header_values("cookie")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(Cookie::split_parse)
            .filter_map(|c| c.ok())
            .filter(|c| c.name() == REFRESH_COOKIE && !c.value().is_empty());
        let first = found.next().map(|c| c.value().to_owned());
        if found.next().is_some() {
            return Err(Error::CookieRefused(
                "more than one refresh-token cookie arrived; another site may have set one",
            ));
        }
        Ok(first)
    }

    /// Refuses a request that would set or spend the cookie from another site:
    /// it must carry the transport header, its `Origin` (when present) must be
    /// its own or an allowed one, and its `Sec-Fetch-Site` (when present) must
    /// be `same-origin` or `none`, or `same-site` from an allowed origin.
    pub(crate) fn check_same_site(&self, req: &impl HttpRequest) -> Result<()> {
        if !self.requested(req) {
            return Err(Error::CookieRefused(
                "the refresh-token cookie is only accepted with the X-Reissue-Transport: cookie header",
            ));
        }
        let mut explicitly_allowed = false;
        let mut origins = req.header_values("origin");
        if let Some(origin) = origins.next() {
            let origin = std::str::from_utf8(origin)
                .ok()
                .filter(|_| origins.next().is_none())
                .and_then(|o| Origin::parse(o).ok());
            let Some(origin) = origin else {
                return Err(cross_origin());
            };
            explicitly_allowed = self.allowed_origins.contains(&origin);
            if !explicitly_allowed && !is_own_origin(req, &origin) {
                return Err(cross_origin());
            }
        }
        if let Some(site) = req.header("sec-fetch-site") {
            let ok = match site.trim_ascii() {
                b"same-origin" | b"none" => true,
                b"same-site" => explicitly_allowed,
                _ => false,
            };
            if !ok {
                return Err(Error::CookieRefused(
                    "the refresh-token cookie is not accepted on a cross-site request",
                ));
            }
        }
        Ok(())
    }

    /// The `Set-Cookie` value that stores `token` for `max_age` seconds.
    pub(crate) fn set(&self, req: &impl HttpRequest, token: &str, max_age: u64) -> String {
        let max_age = CookieDuration::seconds(i64::try_from(max_age).unwrap_or(i64::MAX));
        self.cookie(req, token, max_age).to_string()
    }

    /// The `Set-Cookie` value that removes the cookie (`Max-Age=0`).
    pub(crate) fn clear(&self, req: &impl HttpRequest) -> String {
        self.cookie(req, "", CookieDuration::ZERO).to_string()
    }

    fn cookie<'c>(
        &self,
        req: &impl HttpRequest,
        value: &'c str,
        max_age: CookieDuration,
    ) -> Cookie<'c> {
        Cookie::build((REFRESH_COOKIE, value))
            .path(self.path_for(req))
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .max_age(max_age)
            .build()
    }

    /// The configured path, else the parent of the request path (the
    /// endpoints are `<prefix>/login`, `<prefix>/reissue`...), else `/auth`.
    fn path_for(&self, req: &impl HttpRequest) -> String {
        if let Some(p) = &self.path {
            return p.clone();
        }
        match req.path().and_then(|p| p.rsplit_once('/')) {
            Some(("", _)) => "/".to_owned(),
            Some((prefix, _)) if prefix.starts_with('/') && is_safe_path(prefix) => {
                prefix.to_owned()
            }
            _ => DEFAULT_PATH.to_owned(),
        }
    }
}

fn cross_origin() -> Error {
    Error::CookieRefused("the refresh-token cookie is not accepted from this origin")
}

/// Characters a cookie `Path` can hold without quoting questions: RFC 3986's
/// unreserved characters, `/` and percent escapes (never `;` or `,`).
fn is_safe_path(p: &str) -> bool {
    p.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~' | b'%'))
}

/// Whether `origin` is where the request was addressed (its `Host`). The
/// scheme is not compared: behind a TLS-terminating proxy the server sees
/// plain HTTP, and a page cannot choose its Host.
fn is_own_origin(req: &impl HttpRequest, origin: &Origin) -> bool {
    let mut hosts = req.header_values("host");
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        return false;
    };
    origin.has_host(host)
}

impl Origin {
    /// Whether a `Host` header value names this origin's host and port (the
    /// scheme's default port when it names none). The scheme is not
    /// compared: a `Host` has none.
    pub(crate) fn has_host(&self, host: &[u8]) -> bool {
        let Some((host, port)) = std::str::from_utf8(host)
            .ok()
            .and_then(|h| split_host_port(h.trim()))
        else {
            return false;
        };
        host == self.host && port.unwrap_or(default_port(self.scheme)) == self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::tests::FakeRequest;

    fn req(headers: &[(&'static str, &str)]) -> FakeRequest {
        FakeRequest {
            headers: headers
                .iter()
                .map(|(k, v)| (*k, v.as_bytes().to_vec()))
                .collect(),
            ..FakeRequest::default()
        }
    }

    fn refused(r: Result<()>) -> bool {
        matches!(r, Err(Error::CookieRefused(_)))
    }

    #[test]
    fn origins_parse_and_normalize() {
        let o = Origin::parse("HTTPS://App.Example.com:443/").unwrap();
        assert_eq!(o, Origin::parse("https://app.example.com").unwrap());
        assert_eq!(o.to_string(), "https://app.example.com");
        assert_eq!(
            Origin::parse("http://localhost:5173").unwrap().to_string(),
            "http://localhost:5173"
        );
        assert_eq!(
            Origin::parse("http://[::1]:8080").unwrap().to_string(),
            "http://[::1]:8080"
        );
        for bad in [
            "",
            "null",
            "app.example.com",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://u@a",
            "https://a:0",
            "https://a:99999",
            "https://a:x",
            "https://a;b",
            "https://[zz]",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn off_ignores_header_and_cookie() {
        let t = CookieTransport::off();
        let r = req(&[
            (TRANSPORT_HEADER, "cookie"),
            ("cookie", "__Secure-reissue-rt=abc"),
        ]);
        assert!(!t.requested(&r));
        assert_eq!(t.token(&r).unwrap(), None);
    }

    #[test]
    fn reads_the_cookie_among_others() {
        let t = CookieTransport::new();
        let r = req(&[
            ("cookie", "a=1; __Secure-reissue-rt=abc.def; b=2"),
            ("cookie", "c=3; __Secure-reissue-rt="),
        ]);
        assert_eq!(t.token(&r).unwrap().as_deref(), Some("abc.def"));
        assert_eq!(t.token(&req(&[("cookie", "reissue-rt=x")])).unwrap(), None);
        assert_eq!(
            t.token(&req(&[("cookie", "__Secure-reissue-rt=")]))
                .unwrap(),
            None
        );
        assert!(t.requested(&req(&[(TRANSPORT_HEADER, " Cookie ")])));
        assert!(!t.requested(&req(&[(TRANSPORT_HEADER, "header")])));
    }

    #[test]
    fn two_refresh_cookies_are_refused() {
        let t = CookieTransport::new();
        for two in [
            vec![(
                "cookie",
                "__Secure-reissue-rt=planted; __Secure-reissue-rt=real",
            )],
            vec![
                ("cookie", "__Secure-reissue-rt=planted"),
                ("cookie", "a=1; __Secure-reissue-rt=real"),
            ],
        ] {
            assert!(
                matches!(t.token(&req(&two)), Err(Error::CookieRefused(_))),
                "{two:?}"
            );
        }
    }

    #[test]
    fn same_site_rules() {
        let t = CookieTransport::new()
            .allowed_origins([Origin::parse("https://app.example.com").unwrap()]);
        let h = (TRANSPORT_HEADER, "cookie");
        let host = ("host", "api.example.com");
        assert!(
            t.check_same_site(&req(&[h, host])).is_ok(),
            "no Origin at all"
        );
        assert!(
            refused(t.check_same_site(&req(&[host]))),
            "no transport header"
        );
        let own = ("origin", "http://api.example.com");
        assert!(t.check_same_site(&req(&[h, host, own])).is_ok());
        assert!(
            t.check_same_site(&req(&[h, host, own, ("sec-fetch-site", "same-origin")]))
                .is_ok()
        );
        assert!(
            refused(t.check_same_site(&req(&[h, host, own, ("sec-fetch-site", "cross-site")]))),
            "Sec-Fetch-Site outranks a matching Origin"
        );
        assert!(
            refused(t.check_same_site(&req(&[h, host, own, ("sec-fetch-site", "same-site")]))),
            "same-site only from an explicitly allowed origin"
        );
        let app = ("origin", "https://app.example.com");
        assert!(
            t.check_same_site(&req(&[h, host, app, ("sec-fetch-site", "same-site")]))
                .is_ok()
        );
        for foreign in [
            "https://evil.example",
            "null",
            "http://api.example.com:8080",
            "garbage",
        ] {
            let r = req(&[h, host, ("origin", foreign)]);
            assert!(refused(t.check_same_site(&r)), "{foreign} allowed");
        }
        let two = req(&[h, host, own, own]);
        assert!(refused(t.check_same_site(&two)), "two Origin headers");
        let no_host = req(&[h, own]);
        assert!(
            refused(t.check_same_site(&no_host)),
            "own origin needs a Host"
        );
        let default_port = req(&[
            h,
            ("host", "api.example.com:443"),
            ("origin", "https://api.example.com"),
        ]);
        assert!(t.check_same_site(&default_port).is_ok());
        assert!(
            refused(t.check_same_site(&req(&[h, host, ("sec-fetch-site", "bogus")]))),
            "an unknown Sec-Fetch-Site"
        );
        assert!(
            t.check_same_site(&req(&[h, ("sec-fetch-site", "none")]))
                .is_ok()
        );
    }

    #[test]
    fn set_cookie_bytes() {
        let t = CookieTransport::new();
        let set = t.set(&FakeRequest::default(), "a.b.c", 1209600);
        let mut attrs: Vec<&str> = set.split("; ").collect();
        assert_eq!(attrs.remove(0), "__Secure-reissue-rt=a.b.c");
        attrs.sort_unstable();
        assert_eq!(
            attrs,
            [
                "HttpOnly",
                "Max-Age=1209600",
                "Path=/auth",
                "SameSite=Strict",
                "Secure"
            ]
        );
        let clear = t.clear(&FakeRequest::default());
        assert!(clear.starts_with("__Secure-reissue-rt=; "), "{clear}");
        assert!(
            clear.contains("Max-Age=0") && clear.contains("Secure"),
            "{clear}"
        );
        assert!(!clear.to_ascii_lowercase().contains("domain"), "{clear}");
    }

    #[test]
    fn path_follows_the_prefix() {
        let t = CookieTransport::new();
        let at = |path: &'static str| {
            let r = FakeRequest {
                path: Some(path),
                ..FakeRequest::default()
            };
            t.set(&r, "x", 1)
        };
        assert!(at("/api/auth/login").contains("Path=/api/auth;"));
        assert!(at("/login").contains("Path=/;"));
        assert!(
            at("/a;Domain=evil/login").contains("Path=/auth;"),
            "unsafe path"
        );
        let fixed = CookieTransport::new().path("/fixed");
        let r = FakeRequest {
            path: Some("/api/auth/login"),
            ..FakeRequest::default()
        };
        assert!(fixed.set(&r, "x", 1).contains("Path=/fixed;"));
        assert!(CookieTransport::new().path("no-slash").validate().is_err());
        assert!(CookieTransport::new().path("/a;b").validate().is_err());
    }
}
