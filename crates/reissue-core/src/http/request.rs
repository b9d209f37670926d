//! What reissue reads from a request, whatever the framework.

use std::net::IpAddr;

use crate::{Error, Result};

/// The longest `Authorization` value read, scheme included (CONTRACT.md: over
/// 8 KiB is 400). A bearer token in the header is therefore at most 8185
/// bytes; [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN) bounds tokens from any source.
const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;

/// The view of an HTTP request that reissue needs. Each adapter implements it
/// once for its framework's request type; everything else is shared.
pub trait HttpRequest {
    /// The values of a header, in order; `name` is lower case.
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]>;

    /// The socket peer address, when the connection has one.
    fn peer_addr(&self) -> Option<IpAddr>;

    /// The first value of a header.
    fn header(&self, name: &'static str) -> Option<&[u8]> {
        self.header_values(name).next()
    }

    /// The path the client addressed, e.g. `/auth/login`: the refresh-token
    /// cookie is scoped to its parent (see
    /// [`CookieTransport::path`](crate::CookieTransport::path)). `None`, the
    /// default, when unknown.
    fn path(&self) -> Option<&str> {
        None
    }
}

/// The bytes where [`bearer_token`] would find the token of a single
/// `Bearer` header, not yet checked: for the verifier's cache, which only a
/// token that passed every check of [`bearer_token`] (it verified) can hit.
/// `None` when there is no such header.
pub(crate) fn bearer_candidate(req: &impl HttpRequest) -> Option<&[u8]> {
    let mut values = req.header_values("authorization");
    let value = values.next()?;
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let (scheme, rest) = value.trim_ascii().split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let start = rest.iter().position(|&b| b != b' ')?;
    Some(&rest[start..])
}

/// Reads the bearer token of an `Authorization` header (RFC 6750 §2.1).
///
/// No header or another scheme: [`Error::MissingToken`] (401, a bare
/// challenge). An empty token, two tokens (or two headers), non-ASCII bytes,
/// characters outside the `b64token` alphabet, or a value (scheme included)
/// over 8 KiB: [`Error::MalformedAuthorization`] (400). The scheme is
/// case-insensitive.
pub fn bearer_token(req: &impl HttpRequest) -> Result<&str> {
    let mut values = req.header_values("authorization");
    let Some(value) = values.next() else {
        return Err(Error::MissingToken);
    };
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(Error::MalformedAuthorization(
            "the Authorization header is too long",
        ));
    }
    if !value.is_ascii() {
        return Err(Error::MalformedAuthorization(
            "the Authorization header is not ASCII",
        ));
    }
    let value = std::str::from_utf8(value)
        .map_err(|_| Error::MissingToken)?
        .trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::MissingToken);
    }
    if values.next().is_some() {
        return Err(Error::MalformedAuthorization(
            "more than one Authorization header",
        ));
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(Error::MalformedAuthorization("the bearer token is empty"));
    }
    // One pass over the token (it is on every protected request), a table
    // look-up per byte: b64token =
    // 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
    let bytes = token.as_bytes();
    let body = bytes
        .iter()
        .position(|&b| !B64TOKEN[usize::from(b)])
        .unwrap_or(bytes.len());
    if body == 0 || !bytes[body..].iter().all(|&b| b == b'=') {
        let separator = bytes[body..]
            .iter()
            .any(|&b| matches!(b, b' ' | b',' | b'\t'));
        return Err(Error::MalformedAuthorization(if separator {
            "more than one bearer token"
        } else {
            "the bearer token has characters a token cannot have"
        }));
    }
    Ok(token)
}

/// The bytes of RFC 6750's b64token before its `=` padding.
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// The `DPoP` proof of a request made with `method` (RFC 9449 §4.3), when
/// it carries a `DPoP` header: read once here for every adapter, its `htu`
/// to be checked against the configured public origin (else the request's
/// single `Host`) and the path the client addressed. Two headers, or one
/// over [`MAX_PROOF_LEN`](crate::MAX_PROOF_LEN) or not ASCII, make a proof
/// that is refused where a proof is needed.
pub(crate) fn dpop_proof<'r>(
    req: &'r impl HttpRequest,
    method: &'static str,
    public_origin: Option<&'r crate::Origin>,
) -> Option<crate::DpopProof<'r>> {
    use crate::ProofRejection;
    use crate::dpop::HtuOrigin;
    let mut values = req.header_values("dpop");
    let first = values.next()?;
    let unreadable = if values.next().is_some() {
        Some(ProofRejection::MoreThanOne)
    } else if first.len() > crate::MAX_PROOF_LEN || !first.is_ascii() {
        Some(ProofRejection::TooLong)
    } else {
        None
    };
    let origin = match public_origin {
        Some(origin) => HtuOrigin::Configured(origin),
        None => {
            let mut hosts = req.header_values("host");
            HtuOrigin::Host(hosts.next().filter(|_| hosts.next().is_none()))
        }
    };
    Some(crate::DpopProof {
        unreadable,
        jwt: std::str::from_utf8(first).unwrap_or_default().trim(),
        htm: method,
        origin,
        // Without the path (an adapter that cannot tell) no htu matches.
        path: req.path().unwrap_or_default().into(),
    })
}

/// Whether a `Content-Type` is JSON (`application/json` or `application/*+json`).
pub(crate) fn is_json(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type.and_then(|c| std::str::from_utf8(c).ok()) else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A request made of literal headers, for unit tests.
    #[derive(Debug, Default)]
    pub(crate) struct FakeRequest {
        pub(crate) headers: Vec<(&'static str, Vec<u8>)>,
        pub(crate) peer: Option<IpAddr>,
        pub(crate) path: Option<&'static str>,
    }

    impl HttpRequest for FakeRequest {
        fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
            self.headers
                .iter()
                .filter(move |(n, _)| *n == name)
                .map(|(_, v)| v.as_slice())
        }
        fn peer_addr(&self) -> Option<IpAddr> {
            self.peer
        }
        fn path(&self) -> Option<&str> {
            self.path
        }
    }

    fn auth(values: &[&[u8]]) -> FakeRequest {
        FakeRequest {
            headers: values
                .iter()
                .map(|v| ("authorization", v.to_vec()))
                .collect(),
            ..FakeRequest::default()
        }
    }

    fn code(r: Result<&str>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn bearer_rules_of_the_contract() {
        assert_eq!(
            bearer_token(&auth(&[b"Bearer abc.def.ghi"])).unwrap(),
            "abc.def.ghi"
        );
        assert_eq!(
            bearer_token(&auth(&[b"bearer abc"])).unwrap(),
            "abc",
            "scheme is case-insensitive"
        );
        assert_eq!(bearer_token(&auth(&[b"BEARER   abc  "])).unwrap(), "abc");
        assert_eq!(code(bearer_token(&auth(&[]))), "unauthorized");
        assert_eq!(
            code(bearer_token(&auth(&[b"Basic dXNlcjpwYXNz"]))),
            "unauthorized"
        );
        assert_eq!(code(bearer_token(&auth(&[b"Bearer"]))), "invalid_request");
        assert_eq!(code(bearer_token(&auth(&[b"Bearer "]))), "invalid_request");
        assert_eq!(
            code(bearer_token(&auth(&[b"Bearer a b"]))),
            "invalid_request"
        );
        assert_eq!(
            code(bearer_token(&auth(&[b"Bearer a,b"]))),
            "invalid_request"
        );
        assert_eq!(
            code(bearer_token(&auth(&[b"Bearer a", b"Bearer b"]))),
            "invalid_request"
        );
        assert_eq!(
            code(bearer_token(&auth(&["Bearer tök".as_bytes()]))),
            "invalid_request"
        );
        assert_eq!(
            code(bearer_token(&auth(&[b"Bearer a\"b"]))),
            "invalid_request"
        );
        let long = format!("Bearer {}", "a".repeat(crate::MAX_TOKEN_LEN + 1));
        assert_eq!(
            code(bearer_token(&auth(&[long.as_bytes()]))),
            "invalid_request"
        );
    }

    /// The limit is on the whole value, scheme included: 8193..=8199 bytes
    /// once slipped through because only the token was measured.
    #[test]
    fn authorization_over_8_kib_is_invalid_request_scheme_included() {
        let value = |len: usize| format!("Bearer {}", "a".repeat(len - "Bearer ".len()));
        let at_limit = value(MAX_AUTHORIZATION_LEN);
        assert_eq!(
            bearer_token(&auth(&[at_limit.as_bytes()]))
                .ok()
                .map(str::len),
            Some(MAX_AUTHORIZATION_LEN - 7),
            "8192 bytes in all is still read"
        );
        for len in (MAX_AUTHORIZATION_LEN + 1..=MAX_AUTHORIZATION_LEN + 7).chain([64 * 1024]) {
            let req = auth(&[value(len).as_bytes()]);
            match bearer_token(&req) {
                Err(e @ Error::MalformedAuthorization(_)) => assert_eq!(e.status(), 400),
                other => panic!("{len} bytes: expected 400 invalid_request, got {other:?}"),
            }
        }
        // Whatever the scheme: an oversized value is never read further.
        let other = format!("Basic {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(
            code(bearer_token(&auth(&[other.as_bytes()]))),
            "invalid_request"
        );
    }

    #[test]
    fn dpop_headers_are_read_once_for_every_adapter() {
        use crate::ProofRejection;
        use crate::dpop::HtuOrigin;
        let req = |headers: &[(&'static str, &str)]| FakeRequest {
            headers: headers
                .iter()
                .map(|(n, v)| (*n, v.as_bytes().to_vec()))
                .collect(),
            path: Some("/auth/reissue"),
            ..FakeRequest::default()
        };
        assert!(
            dpop_proof(&req(&[]), "POST", None).is_none(),
            "no header, no proof"
        );
        let one = req(&[("dpop", " a.b.c "), ("host", "api.example.com")]);
        let proof = dpop_proof(&one, "POST", None).unwrap();
        assert_eq!(
            (proof.jwt, proof.htm, &*proof.path),
            ("a.b.c", "POST", "/auth/reissue")
        );
        assert!(proof.unreadable.is_none());
        assert!(matches!(
            proof.origin,
            HtuOrigin::Host(Some(b"api.example.com"))
        ));
        // two Host headers name no origin; a configured one wins over Host
        let two_hosts = req(&[("dpop", "a.b.c"), ("host", "a"), ("host", "b")]);
        let proof = dpop_proof(&two_hosts, "POST", None).unwrap();
        assert!(matches!(proof.origin, HtuOrigin::Host(None)));
        let origin = crate::Origin::parse("https://app.example.com").unwrap();
        let proof = dpop_proof(&one, "DELETE", Some(&origin)).unwrap();
        assert!(matches!(proof.origin, HtuOrigin::Configured(_)));
        assert_eq!(proof.htm, "DELETE");
        let two = req(&[("dpop", "a.b.c"), ("dpop", "d.e.f")]);
        assert_eq!(
            dpop_proof(&two, "POST", None).unwrap().unreadable,
            Some(ProofRejection::MoreThanOne)
        );
        let long = "a".repeat(crate::MAX_PROOF_LEN + 1);
        let long = req(&[("dpop", &long)]);
        assert_eq!(
            dpop_proof(&long, "POST", None).unwrap().unreadable,
            Some(ProofRejection::TooLong)
        );
        let utf8 = req(&[("dpop", "é.é.é")]);
        assert_eq!(
            dpop_proof(&utf8, "POST", None).unwrap().unreadable,
            Some(ProofRejection::TooLong)
        );
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(Some(b"application/json")));
        assert!(is_json(Some(b"Application/JSON; charset=utf-8")));
        assert!(is_json(Some(b"application/merge-patch+json")));
        assert!(!is_json(Some(b"text/plain")));
        assert!(!is_json(Some(b"application/x-www-form-urlencoded")));
        assert!(!is_json(None));
    }
}
