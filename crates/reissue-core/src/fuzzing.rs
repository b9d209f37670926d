//! What the fuzz targets in `fuzz/` reach that the public API does not show:
//! the parsers of outside input that are crate-private (the refresh-token
//! cookie, the user-agent summary), and a way to sign arbitrary header and
//! claims bytes so that fuzzing gets past the signature into the claims.
//!
//! Behind the `fuzzing` feature, hidden from the docs, and outside any
//! semver promise: nothing but `fuzz/` should use it. Each function is a thin
//! call into the code the servers run, so a finding here is a finding there.
#![cfg(feature = "fuzzing")]
#![doc(hidden)]

use std::net::IpAddr;

use crate::http::HttpRequest;
use crate::store::ClientMeta;
use crate::{CookieTransport, Origin, TokenCodec};

/// A request made of literal headers, as a target builds it from its input.
#[derive(Debug, Default, Clone)]
pub struct FuzzRequest {
    /// `(lower-case name, value)`, in order; a name may repeat.
    pub headers: Vec<(&'static str, Vec<u8>)>,
    /// The socket peer.
    pub peer: Option<IpAddr>,
    /// The request path.
    pub path: Option<&'static str>,
}

impl HttpRequest for FuzzRequest {
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

/// The refresh token the cookie transport reads from the request's `Cookie`
/// headers, as `/auth/reissue` and `/auth/logout` read it.
pub fn refresh_cookie(cookies: &CookieTransport, req: &FuzzRequest) -> Option<String> {
    cookies.token(req).ok().flatten()
}

/// Whether the cookie transport's same-site checks (`X-Reissue-Transport`,
/// `Origin` against `Host` and the allowed origins, `Sec-Fetch-Site`) let
/// the request use the cookie; a refusal is always a `CookieRefused` (403).
pub fn same_site_allowed(cookies: &CookieTransport, req: &FuzzRequest) -> bool {
    match cookies.check_same_site(req) {
        Ok(()) => true,
        Err(crate::Error::CookieRefused(_)) => false,
        Err(other) => panic!("the same-site check failed otherwise: {other:?}"),
    }
}

/// The `Set-Cookie` value that stores `token`, for a request with `req`'s path.
pub fn set_cookie(cookies: &CookieTransport, req: &FuzzRequest, token: &str) -> String {
    cookies.set(req, token, 3600)
}

/// The longest user-agent summary a store keeps.
pub const MAX_STORED_USER_AGENT: usize = crate::client::user_agent::MAX_STORED;

/// What a store keeps of a request's `User-Agent` (the session list's
/// "Firefox 128 / Windows 10"), through [`ClientMeta`] as logins build it.
pub fn stored_user_agent(header: &str) -> Option<String> {
    ClientMeta::new(None, None, Some(header)).stored_user_agent()
}

/// A compact JWS of exactly these header and payload bytes, signed with the
/// codec's signing key: the verifier then gets past the signature and reads
/// what the bytes say.
pub fn sign_compact(codec: &TokenCodec, header: &[u8], payload: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signed = format!("{}.{}", b64.encode(header), b64.encode(payload));
    let keys = codec.keys();
    let signature = jsonwebtoken::crypto::sign(
        signed.as_bytes(),
        keys.encoding_key(),
        keys.signing_key().algorithm(),
    )
    .expect("the codec's key signs");
    format!("{signed}.{signature}")
}

/// [`Origin::parse`], as the allowed-origins setting and `Origin` headers are read.
pub fn parse_origin(s: &str) -> Option<Origin> {
    Origin::parse(s).ok()
}

/// The expiries (absolute, idle; ms) that strict mode reads for `sid` from a
/// user's packed key, as Redis hands the bytes over.
pub fn record_expiries(key: &[u8], sid: &crate::SessionId) -> Option<(u64, u64)> {
    crate::store::expiries(key, sid)
}

/// A record's client bytes read back (the session list), with the record's
/// login country.
pub fn decode_client(bytes: &[u8], login_country: &[u8]) -> Option<ClientMeta> {
    crate::store::decode_client(bytes, login_country)
}

/// The client as a record stores it: what [`decode_client`] reads back.
pub fn encode_client(client: &ClientMeta) -> Vec<u8> {
    crate::store::encode_client(client)
}

/// A rotation script's reply read: its code and the successor's fields, or
/// an error (never a panic) for bytes of the wrong shape.
pub fn rotation_reply(bytes: &[u8]) -> Option<(u8, crate::store::Successor)> {
    crate::store::successor(bytes).ok()
}

/// The origin the DPoP hooks check `htu` against.
pub const DPOP_ORIGIN: &str = "https://app.example.com";

/// A `DPoP` proof checked as the `/auth` routes check it (the default
/// settings: ES256 and EdDSA, a 60 s window), for `POST
/// https://app.example.com/auth/reissue` at `now` (Unix seconds): the key's
/// RFC 7638 thumbprint if it is accepted, else why not. The `jti`'s novelty
/// is the store's, not checked here.
pub fn dpop_proof(jwt: &str, now: u64) -> Result<String, crate::dpop::ProofRejection> {
    let origin = Origin::parse(DPOP_ORIGIN).expect("an origin");
    let proof = crate::dpop::DpopProof::new(jwt, "POST", &origin, "/auth/reissue");
    crate::dpop::verify(&proof, &crate::dpop::DpopSettings::default(), now).map(|v| v.jkt)
}
