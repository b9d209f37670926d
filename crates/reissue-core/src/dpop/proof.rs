//! One DPoP proof (RFC 9449 §4.3): a JWS whose header carries the public
//! key that signed it, and whose claims name the request it was made for.
//! Every check is local; whether its `jti` was seen before is the store's
//! (`ProofReplay`), asked by the session model once this passed.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use sha2::Digest as _;

use super::DpopSettings;
use crate::Origin;

/// A `DPoP` header longer than this is refused unread (a proof with an
/// RSA-4096 key is under 2 KiB).
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest `jti` accepted (RFC 9449 asks for at least 96 bits of
/// randomness; a UUID is 36 characters).
const MAX_JTI_LEN: usize = 128;

/// How far a proof's `nbf` may lie ahead and its `exp` behind, seconds.
const LEEWAY: u64 = 5;

/// Why a proof was refused; the description is safe to show a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofRejection {
    /// The session is bound to a key and the request carries no proof (or
    /// the app requires binding and the login carries none).
    Missing,
    /// More than one `DPoP` header.
    MoreThanOne,
    /// Longer than [`MAX_PROOF_LEN`], or not ASCII.
    TooLong,
    /// Not a compact JWS with JSON header and claims, or a claim missing or
    /// mistyped.
    Malformed,
    /// `typ` is not `dpop+jwt`.
    WrongType,
    /// A `crit` header: no extension is understood.
    CriticalHeader,
    /// `alg` is not one of the allowed asymmetric algorithms.
    AlgorithmNotAllowed,
    /// `jwk` is missing, not a key of `alg`'s type, or not a valid key.
    BadKey,
    /// `jwk` carries private key members.
    PrivateKey,
    /// The signature does not verify with `jwk`.
    BadSignature,
    /// `htm` is not the request's method.
    WrongMethod,
    /// `htu` is not the request's URL (without query and fragment).
    WrongUri,
    /// `iat` is too far from now, or `nbf` ahead, or `exp` behind.
    NotFresh,
    /// The proof's `jti` was used before.
    Replayed,
    /// Signed by another key than the one the session is bound to.
    WrongKey,
    /// The app requires every session to be bound, and this one is not.
    Unbound,
}

impl ProofRejection {
    /// One human sentence, safe to send to a client.
    pub fn description(self) -> &'static str {
        match self {
            Self::Missing => "a DPoP proof is required",
            Self::MoreThanOne => "more than one DPoP header",
            Self::TooLong => "the DPoP proof is too long or not ASCII",
            Self::Malformed => "the DPoP proof is malformed",
            Self::WrongType => "the DPoP proof's typ must be dpop+jwt",
            Self::CriticalHeader => "the DPoP proof has a crit header, which is not supported",
            Self::AlgorithmNotAllowed => "the DPoP proof's algorithm is not allowed",
            Self::BadKey => "the DPoP proof's jwk is not a valid public key for its algorithm",
            Self::PrivateKey => "the DPoP proof's jwk contains a private key",
            Self::BadSignature => "the DPoP proof's signature is invalid",
            Self::WrongMethod => "the DPoP proof was made for another method",
            Self::WrongUri => "the DPoP proof was made for another URL",
            Self::NotFresh => "the DPoP proof is not fresh",
            Self::Replayed => "the DPoP proof was already used",
            Self::WrongKey => "the DPoP proof is signed by another key than the session's",
            Self::Unbound => "the session is not bound to a DPoP key, which is required",
        }
    }
}

impl fmt::Display for ProofRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// The origin a proof's `htu` must name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HtuOrigin<'a> {
    /// The configured public origin.
    Configured(&'a Origin),
    /// None is configured: the request's `Host` (host and port; the scheme
    /// cannot be known behind a TLS-terminating proxy). `None`: no single
    /// `Host` header, so no `htu` matches.
    Host(Option<&'a [u8]>),
}

/// A DPoP proof as a request presented it, with the method and URL it must
/// have been made for. The adapters' `/auth` routes build it from the
/// request; an application calling [`Reissue`](crate::Reissue) itself
/// builds it with [`DpopProof::new`].
#[derive(Debug, Clone)]
pub struct DpopProof<'a> {
    /// Why the `DPoP` header could not be read, when it could not (two of
    /// them, too long): the proof is then refused for that, and only where
    /// one is needed.
    pub(crate) unreadable: Option<ProofRejection>,
    pub(crate) jwt: &'a str,
    pub(crate) htm: &'a str,
    pub(crate) origin: HtuOrigin<'a>,
    pub(crate) path: Cow<'a, str>,
}

impl<'a> DpopProof<'a> {
    /// The proof `jwt` (the `DPoP` header's value) of a request `method
    /// origin path`, e.g. `POST`, `https://app.example.com`, `/auth/reissue`.
    pub fn new(jwt: &'a str, method: &'a str, origin: &'a Origin, path: &'a str) -> Self {
        Self {
            unreadable: None,
            jwt,
            htm: method,
            origin: HtuOrigin::Configured(origin),
            path: path.into(),
        }
    }
}

/// What a valid proof says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The key's RFC 7638 thumbprint (SHA-256, base64url, 43 characters).
    pub(crate) jkt: String,
    /// A digest of the key and the proof's `jti`: what the store remembers.
    pub(crate) replay_key: String,
}

#[derive(Deserialize)]
struct ProofHeader<'a> {
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow)]
    alg: Cow<'a, str>,
    jwk: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

#[derive(Deserialize)]
struct ProofClaims<'a> {
    #[serde(borrow)]
    htm: Cow<'a, str>,
    #[serde(borrow)]
    htu: Cow<'a, str>,
    iat: u64,
    #[serde(borrow)]
    jti: Cow<'a, str>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    exp: Option<u64>,
}

/// Members that only a private (or symmetric) JWK has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks a proof (RFC 9449 §4.3) at `now` (Unix seconds): everything but
/// its `jti`'s novelty, which the caller asks the store.
pub(crate) fn verify(
    proof: &DpopProof<'_>,
    settings: &DpopSettings,
    now: u64,
) -> Result<Verified, ProofRejection> {
    use ProofRejection as R;
    if let Some(why) = proof.unreadable {
        return Err(why);
    }
    let jwt = proof.jwt;
    if jwt.len() > MAX_PROOF_LEN || !jwt.is_ascii() {
        return Err(R::TooLong);
    }
    let mut parts = jwt.splitn(3, '.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(R::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| R::Malformed);
    let header_json = decode(header_b64)?;
    let header: ProofHeader<'_> = json(&header_json)?;
    if header.crit {
        return Err(R::CriticalHeader);
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| crate::tokens::jws::type_matches(Some(t), "dpop+jwt"))
    {
        return Err(R::WrongType);
    }
    let alg = header
        .alg
        .parse::<Algorithm>()
        .ok()
        .filter(|alg| settings.algorithms.contains(*alg))
        .ok_or(R::AlgorithmNotAllowed)?;
    let jwk = header.jwk.as_ref().ok_or(R::BadKey)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(R::PrivateKey);
    }
    let (key, jkt) = public_key(alg, jwk)?;
    let signature = decode(signature_b64)?;
    let signed = &jwt.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];
    let verifier =
        (crate::tokens::keys::provider().verifier_factory)(&alg, &key).map_err(|_| R::BadKey)?;
    verifier
        .verify(signed, &signature)
        .map_err(|_| R::BadSignature)?;
    let claims_json = decode(claims_b64)?;
    let claims: ProofClaims<'_> = json(&claims_json)?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(R::Malformed);
    }
    if claims.htm != proof.htm {
        return Err(R::WrongMethod);
    }
    if !htu_matches(&claims.htu, proof) {
        return Err(R::WrongUri);
    }
    let window = settings.window.as_secs();
    if claims.iat.abs_diff(now) > window
        || claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY))
        || claims
            .exp
            .is_some_and(|exp| exp.saturating_add(LEEWAY) < now)
    {
        return Err(R::NotFresh);
    }
    let mut digest = sha2::Sha256::new();
    digest.update(jkt.as_bytes());
    digest.update([0]);
    digest.update(claims.jti.as_bytes());
    Ok(Verified {
        replay_key: URL_SAFE_NO_PAD.encode(digest.finalize()),
        jkt,
    })
}

/// JSON of the expected shape. The text must be UTF-8 throughout: serde_json
/// skips the members it ignores unchecked.
fn json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ProofRejection> {
    std::str::from_utf8(bytes).map_err(|_| ProofRejection::Malformed)?;
    serde_json::from_slice(bytes).map_err(|_| ProofRejection::Malformed)
}

/// The verifying key of `jwk` for `alg`, and its thumbprint. The key
/// members must be canonical base64url of the right length, so that one
/// key has one thumbprint.
fn public_key(
    alg: Algorithm,
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Result<(DecodingKey, String), ProofRejection> {
    let member = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    let b64 = |name: &str, len: std::ops::RangeInclusive<usize>| {
        member(name)
            .filter(|s| {
                URL_SAFE_NO_PAD
                    .decode(s)
                    .is_ok_and(|b| len.contains(&b.len()))
            })
            .ok_or(ProofRejection::BadKey)
    };
    let kty = member("kty");
    let crv = member("crv");
    let (key, canonical) = match alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            let (curve, len) = if alg == Algorithm::ES256 {
                ("P-256", 32)
            } else {
                ("P-384", 48)
            };
            if kty != Some("EC") || crv != Some(curve) {
                return Err(ProofRejection::BadKey);
            }
            let (x, y) = (b64("x", len..=len)?, b64("y", len..=len)?);
            (
                DecodingKey::from_ec_components(x, y),
                format!(r#"{{"crv":"{curve}","kty":"EC","x":"{x}","y":"{y}"}}"#),
            )
        }
        Algorithm::EdDSA => {
            if kty != Some("OKP") || crv != Some("Ed25519") {
                return Err(ProofRejection::BadKey);
            }
            let x = b64("x", 32..=32)?;
            (
                DecodingKey::from_ed_components(x),
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
            )
        }
        Algorithm::PS256 | Algorithm::RS256 => {
            if kty != Some("RSA") {
                return Err(ProofRejection::BadKey);
            }
            // 2048 to 8192 bits
            let (n, e) = (b64("n", 256..=1024)?, b64("e", 1..=8)?);
            (
                DecodingKey::from_rsa_components(n, e),
                format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            )
        }
        _ => return Err(ProofRejection::AlgorithmNotAllowed),
    };
    let key = key.map_err(|_| ProofRejection::BadKey)?;
    Ok((key, digest_b64(&canonical)))
}

/// The RFC 7638 thumbprint of a public JWK of a kind a proof may carry
/// (EC, OKP, RSA), from its required members; `None` for another kind.
#[cfg(test)]
pub(crate) fn thumbprint_of(jwk: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let alg = match jwk.get("kty")?.as_str()? {
        "EC" if jwk.get("crv")?.as_str()? == "P-256" => Algorithm::ES256,
        "EC" => Algorithm::ES384,
        "OKP" => Algorithm::EdDSA,
        "RSA" => Algorithm::RS256,
        _ => return None,
    };
    public_key(alg, jwk).ok().map(|(_, jkt)| jkt)
}

fn digest_b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Whether `htu`, without its query and fragment, names the request's
/// origin and path (RFC 9449 §4.3 item 9).
fn htu_matches(htu: &str, proof: &DpopProof<'_>) -> bool {
    let htu = htu.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = htu.split_once("://") else {
        return false;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let Ok(origin) = Origin::parse(&format!("{scheme}://{authority}")) else {
        return false;
    };
    let origin_ok = match proof.origin {
        HtuOrigin::Configured(expected) => origin == *expected,
        HtuOrigin::Host(Some(host)) => origin.has_host(host),
        HtuOrigin::Host(None) => false,
    };
    origin_ok && path == proof.path
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use jsonwebtoken::EncodingKey;
    use jsonwebtoken::jwk::Jwk;
    use serde_json::{Value, json};

    use super::*;
    use crate::dpop::DpopAlgorithms;
    use crate::dpop::proof::thumbprint_of;

    const EC: &[u8] = include_bytes!("../../../reissue-test-support/keys/ec.pem");
    const EC_OTHER: &[u8] = include_bytes!("../../../reissue-test-support/keys/ec-attacker.pem");
    const ED: &[u8] = include_bytes!("../../../reissue-test-support/keys/ed25519.pem");
    const RSA: &[u8] = include_bytes!("../../../reissue-test-support/keys/rsa.pem");

    const NOW: u64 = 1_700_000_000;

    fn key(pem: &[u8], alg: Algorithm) -> (EncodingKey, Value) {
        let key = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            _ => EncodingKey::from_rsa_pem(pem),
        }
        .unwrap();
        let jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        let mut jwk = serde_json::to_value(jwk).unwrap();
        jwk.as_object_mut().unwrap().remove("alg");
        (key, jwk)
    }

    /// A compact JWS of `header` and `claims`, signed by `key` with `alg`.
    fn sign(key: &EncodingKey, alg: Algorithm, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
        format!("{message}.{signature}")
    }

    struct Forge {
        key: EncodingKey,
        alg: Algorithm,
        header: Value,
        claims: Value,
    }

    impl Forge {
        fn new(pem: &[u8], alg: Algorithm) -> Self {
            let (key, jwk) = key(pem, alg);
            Forge {
                key,
                alg,
                header: json!({"typ": "dpop+jwt", "alg": format!("{alg:?}"), "jwk": jwk}),
                claims: json!({
                    "htm": "POST",
                    "htu": "https://app.example.com/auth/reissue",
                    "iat": NOW,
                    "jti": "4b1c2bd2-5d3b-4d2f-9a2b-8d2a6f9f6b11",
                }),
            }
        }
        fn header(mut self, name: &str, value: Value) -> Self {
            self.header[name] = value;
            self
        }
        fn claim(mut self, name: &str, value: Value) -> Self {
            self.claims[name] = value;
            self
        }
        fn jwt(&self) -> String {
            sign(&self.key, self.alg, &self.header, &self.claims)
        }
    }

    fn check(jwt: &str) -> Result<Verified, ProofRejection> {
        check_with(jwt, &DpopSettings::default())
    }

    fn check_with(jwt: &str, settings: &DpopSettings) -> Result<Verified, ProofRejection> {
        let origin = Origin::parse("https://app.example.com").unwrap();
        verify(
            &DpopProof::new(jwt, "POST", &origin, "/auth/reissue"),
            settings,
            NOW,
        )
    }

    #[test]
    fn a_valid_proof_of_each_default_algorithm_passes_with_its_thumbprint() {
        for (pem, alg) in [(EC, Algorithm::ES256), (ED, Algorithm::EdDSA)] {
            let forge = Forge::new(pem, alg);
            let verified = check(&forge.jwt()).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            let jwk = forge.header["jwk"].as_object().unwrap();
            assert_eq!(Some(verified.jkt.clone()), thumbprint_of(jwk));
            assert_eq!(verified.jkt.len(), 43);
        }
        let es = check(&Forge::new(EC, Algorithm::ES256).jwt()).unwrap();
        let other = check(&Forge::new(EC_OTHER, Algorithm::ES256).jwt()).unwrap();
        assert_ne!(es.jkt, other.jkt);
        assert_ne!(es.replay_key, other.replay_key, "the same jti of two keys");
    }

    /// RFC 7638 §3.1's example key and thumbprint, and RFC 9449 §6.1's
    /// P-256 key and the `jkt` it names.
    #[test]
    fn thumbprints_match_the_rfc_examples() {
        let rsa = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint_of(rsa.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        let ec = json!({
            "kty": "EC",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
            "crv": "P-256"
        });
        assert_eq!(
            thumbprint_of(ec.as_object().unwrap()).as_deref(),
            Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
        );
    }

    #[test]
    fn every_check_refuses_its_forgery() {
        use ProofRejection as R;
        let es = || Forge::new(EC, Algorithm::ES256);
        let cases: Vec<(&str, String, R)> = vec![
            (
                "no typ",
                es().header("typ", Value::Null).jwt(),
                R::WrongType,
            ),
            (
                "typ jwt",
                es().header("typ", json!("JWT")).jwt(),
                R::WrongType,
            ),
            (
                "crit",
                es().header("crit", json!(["x"])).jwt(),
                R::CriticalHeader,
            ),
            (
                "alg none",
                es().header("alg", json!("none")).jwt(),
                R::AlgorithmNotAllowed,
            ),
            (
                "alg HS256",
                {
                    let f = es().header("alg", json!("HS256"));
                    let key = EncodingKey::from_secret(b"a shared secret, not a proof key");
                    sign(&key, Algorithm::HS256, &f.header, &f.claims)
                },
                R::AlgorithmNotAllowed,
            ),
            (
                "RS256 not allowed by default",
                Forge::new(RSA, Algorithm::RS256).jwt(),
                R::AlgorithmNotAllowed,
            ),
            ("no jwk", es().header("jwk", Value::Null).jwt(), R::BadKey),
            (
                "private jwk",
                {
                    let mut f = es();
                    f.header["jwk"]["d"] = json!("c2VjcmV0IHNjYWxhciBvZiB0aGUga2V5IGZvciB0ZXN0cw");
                    f.jwt()
                },
                R::PrivateKey,
            ),
            (
                "an Ed25519 jwk under ES256",
                es().header("jwk", key(ED, Algorithm::EdDSA).1).jwt(),
                R::BadKey,
            ),
            (
                "a short x",
                {
                    let mut f = es();
                    f.header["jwk"]["x"] = json!("AAAA");
                    f.jwt()
                },
                R::BadKey,
            ),
            (
                "another key's jwk",
                es().header("jwk", key(EC_OTHER, Algorithm::ES256).1).jwt(),
                R::BadSignature,
            ),
            (
                "htm GET",
                es().claim("htm", json!("GET")).jwt(),
                R::WrongMethod,
            ),
            (
                "htu of another path",
                es().claim("htu", json!("https://app.example.com/auth/logout"))
                    .jwt(),
                R::WrongUri,
            ),
            (
                "htu of another origin",
                es().claim("htu", json!("https://evil.example/auth/reissue"))
                    .jwt(),
                R::WrongUri,
            ),
            (
                "htu over http",
                es().claim("htu", json!("http://app.example.com/auth/reissue"))
                    .jwt(),
                R::WrongUri,
            ),
            (
                "iat 61 s ago",
                es().claim("iat", json!(NOW - 61)).jwt(),
                R::NotFresh,
            ),
            (
                "iat 61 s ahead",
                es().claim("iat", json!(NOW + 61)).jwt(),
                R::NotFresh,
            ),
            (
                "expired",
                es().claim("exp", json!(NOW - 10)).jwt(),
                R::NotFresh,
            ),
            (
                "nbf ahead",
                es().claim("nbf", json!(NOW + 10)).jwt(),
                R::NotFresh,
            ),
            ("no jti", es().claim("jti", Value::Null).jwt(), R::Malformed),
            (
                "empty jti",
                es().claim("jti", json!("")).jwt(),
                R::Malformed,
            ),
            (
                "iat as text",
                es().claim("iat", json!(NOW.to_string())).jwt(),
                R::Malformed,
            ),
            ("not a JWS", "abc".to_owned(), R::Malformed),
            ("four parts", format!("{}.x", es().jwt()), R::Malformed),
            ("too long", "a".repeat(MAX_PROOF_LEN + 1), R::TooLong),
            ("not ASCII", "é.é.é".to_owned(), R::TooLong),
        ];
        for (what, jwt, expected) in cases {
            assert_eq!(check(&jwt), Err(expected), "{what}");
        }
        // a signature changed by one character
        let jwt = es().jwt();
        let mut bytes = jwt.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            check(std::str::from_utf8(&bytes).unwrap()),
            Err(R::BadSignature)
        );
    }

    #[test]
    fn the_window_and_the_url_are_read_as_configured() {
        // within the window either way, with a query and a fragment
        let at = |iat| {
            Forge::new(EC, Algorithm::ES256)
                .claim("iat", json!(iat))
                .claim(
                    "htu",
                    json!("https://APP.example.com:443/auth/reissue?x=1#y"),
                )
                .jwt()
        };
        assert!(check(&at(NOW - 60)).is_ok());
        assert!(check(&at(NOW + 60)).is_ok());
        let short = DpopSettings {
            window: Duration::from_secs(5),
            ..DpopSettings::default()
        };
        assert_eq!(
            check_with(&at(NOW - 6), &short),
            Err(ProofRejection::NotFresh)
        );
        let rsa = DpopSettings {
            algorithms: DpopAlgorithms::new([Algorithm::RS256]).unwrap(),
            ..DpopSettings::default()
        };
        assert!(check_with(&Forge::new(RSA, Algorithm::RS256).jwt(), &rsa).is_ok());
        assert_eq!(
            check_with(&Forge::new(EC, Algorithm::ES256).jwt(), &rsa),
            Err(ProofRejection::AlgorithmNotAllowed)
        );
        // without a configured origin: the Host header's host and port
        let jwt = Forge::new(EC, Algorithm::ES256)
            .claim("htu", json!("http://127.0.0.1:3000/auth/reissue"))
            .jwt();
        let by_host = |host: Option<&'static [u8]>| DpopProof {
            unreadable: None,
            jwt: &jwt,
            htm: "POST",
            origin: HtuOrigin::Host(host),
            path: "/auth/reissue".into(),
        };
        let s = DpopSettings::default();
        assert!(verify(&by_host(Some(b"127.0.0.1:3000")), &s, NOW).is_ok());
        assert_eq!(
            verify(&by_host(Some(b"127.0.0.1:3001")), &s, NOW),
            Err(ProofRejection::WrongUri)
        );
        assert_eq!(
            verify(&by_host(None), &s, NOW),
            Err(ProofRejection::WrongUri)
        );
    }
}
