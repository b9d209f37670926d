//! Issuing and verifying access and refresh tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
use serde::Deserialize as _;
use serde::de::DeserializeOwned;

use crate::claims::{AccessClaims, RefreshClaims};
use crate::keys::KeySet;
use crate::{Claims, Error, Result, SessionId, TokenRejection};

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The `typ` header of refresh tokens; never accepted as an access token.
pub const REFRESH_TOKEN_TYPE: &str = "rt+jwt";
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Signs and verifies both kinds of token with one [`KeySet`].
#[derive(Debug)]
pub struct TokenCodec {
    keys: KeySet,
    issuer: String,
    audience: String,
    access_header: Header,
    refresh_header: Header,
}

impl TokenCodec {
    /// A codec for tokens of `issuer` meant for `audience`, with `leeway` seconds
    /// of clock skew allowed on `exp` and `nbf`.
    pub fn new(mut keys: KeySet, issuer: &str, audience: &str, leeway: u64) -> Self {
        let mut v = Validation::new(keys.signing_key().algorithm());
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = leeway;
        v.validate_nbf = true;
        keys.configure(&v);
        let header = |typ: &str| {
            let mut h = Header::new(keys.signing_key().algorithm());
            h.typ = Some(typ.to_owned());
            h.kid = Some(keys.signing_key().kid().to_owned());
            h
        };
        let access_header = header(ACCESS_TOKEN_TYPE);
        let refresh_header = header(REFRESH_TOKEN_TYPE);
        Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_header,
            refresh_header,
        }
    }

    /// The clock skew allowed on `exp` and `nbf`, seconds.
    pub fn leeway(&self) -> u64 {
        self.keys.signing_validation().leeway
    }

    /// The key set.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Signs an access token for a session, valid from `iat` for `ttl` seconds.
    pub fn issue_access<C: Claims>(
        &self,
        user_id: &str,
        sid: &SessionId,
        app: &C,
        iat: u64,
        ttl: u64,
    ) -> Result<String> {
        let jti: [u8; 12] = rand::random();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            sid: sid.clone(),
            jti: base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, jti),
            iat,
            exp: iat + ttl,
            app: app.clone(),
        };
        self.sign(&self.access_header, &claims)
    }

    /// Signs the refresh token of generation `generation` of a session.
    ///
    /// The claims are a pure function of the arguments, so a retry within the
    /// grace window receives the same successor as the first call (same `sid`
    /// and generation) although the store keeps no token. The bytes are the
    /// same only where the algorithm signs deterministically (HMAC,
    /// RSASSA-PKCS1-v1_5, Ed25519, and ECDSA under `rust-crypto`, RFC 6979);
    /// RSASSA-PSS, and ECDSA under `aws-lc-rs`, sign with fresh randomness,
    /// so each call gives another string for the same successor. Both are
    /// valid: the store decides by `(sid, generation)`, never by the bytes.
    pub fn issue_refresh(
        &self,
        user_id: &str,
        sid: &SessionId,
        generation: u64,
        iat: u64,
        exp: u64,
    ) -> Result<String> {
        let claims = RefreshClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            sid: sid.clone(),
            generation,
            iat,
            exp,
        };
        self.sign(&self.refresh_header, &claims)
    }

    fn sign(&self, header: &Header, claims: &impl serde::Serialize) -> Result<String> {
        jsonwebtoken::encode(header, claims, self.keys.encoding_key())
            .map_err(|e| Error::Internal(format!("signing failed: {e}")))
    }

    /// Verifies an access token: no `crit` header, signature, `alg`, `kid`,
    /// `typ: at+jwt`, `iss`, `aud`, `exp`, `nbf`, and `iat` not in the future
    /// beyond the leeway.
    pub fn verify_access<C: Claims>(&self, token: &str) -> Result<AccessClaims<C>> {
        let claims: AccessClaims<C> = self.verify(token, ACCESS_TOKEN_TYPE)?;
        // An access token's iat is the clock of the instance that minted it,
        // so a future one means a skewed issuer or a forged lifetime.
        if claims.iat > now_secs().saturating_add(self.leeway()) {
            return Err(Error::InvalidToken(TokenRejection::IssuedInFuture));
        }
        Ok(claims)
    }

    /// Verifies a refresh token the same way, with `typ: rt+jwt`, but without
    /// the `iat` check: a refresh token's `iat` is when its generation was
    /// minted by the store's clock (rotation time is taken inside the store),
    /// and an instance whose own clock lags the store's must still accept it.
    /// Its `exp` and the store's generation are what bound its use.
    pub fn verify_refresh(&self, token: &str) -> Result<RefreshClaims> {
        self.verify(token, REFRESH_TOKEN_TYPE)
    }

    fn verify<T: DeserializeOwned>(&self, token: &str, typ: &str) -> Result<T> {
        self.verify_with(token, typ, true)
    }

    /// Every check of [`TokenCodec::verify`]; `exp` only when `check_exp`.
    fn verify_with<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        check_exp: bool,
    ) -> Result<T> {
        let reject = |why| Err(Error::InvalidToken(why));
        if token.len() > MAX_TOKEN_LEN {
            return reject(TokenRejection::TooLong);
        }
        match has_crit(token) {
            Some(false) => {}
            Some(true) => return reject(TokenRejection::CriticalHeader),
            None => return reject(TokenRejection::Malformed),
        }
        // With one key, skip the extra header parse: jsonwebtoken parses it
        // anyway, and the kid is compared after verification.
        let (key, kid_checked) = match self.keys.single() {
            Some(k) => (k, false),
            None => {
                let header =
                    jsonwebtoken::decode_header(token).map_err(|e| rejection_for(token, typ, e))?;
                match header.kid.as_deref().and_then(|kid| self.keys.find(kid)) {
                    Some(k) => (k, true),
                    None => return reject(TokenRejection::UnknownKey),
                }
            }
        };
        let relaxed;
        let validation = if check_exp {
            &key.validation
        } else {
            relaxed = Validation {
                validate_exp: false,
                ..key.validation.clone()
            };
            &relaxed
        };
        let data = jsonwebtoken::decode::<T>(token, KeySet::decoding_key(key), validation)
            .map_err(|e| rejection_for(token, typ, e))?;
        if !kid_checked && data.header.kid.as_deref() != Some(key.key.kid()) {
            return reject(TokenRejection::UnknownKey);
        }
        if !type_matches(data.header.typ.as_deref(), typ) {
            return reject(TokenRejection::WrongTokenType);
        }
        Ok(data.claims)
    }

    /// Reads a refresh token whose signature is valid even if it has expired,
    /// for logout (ending an expired session is still a logout).
    pub(crate) fn verify_refresh_for_logout(&self, token: &str) -> Result<RefreshClaims> {
        self.verify_with(token, REFRESH_TOKEN_TYPE, false)
    }
}

/// The part of a JOSE header that jsonwebtoken's `Header` drops but that
/// must not be ignored: `crit` (RFC 7515 §4.1.11) lists extensions the
/// recipient must understand, and reissue understands none. Every other
/// member is skipped unread.
#[derive(serde::Deserialize)]
struct CritProbe {
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` for any value, `null` included: the member is there.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// Whether the token's header has a `crit` member; `None` when the header is
/// not base64url JSON (a duplicate `crit` included, so no parser can see one
/// that this one missed). Reads the first segment only.
fn has_crit(token: &str) -> Option<bool> {
    let header = token.split('.').next()?;
    let json =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).ok()?;
    serde_json::from_slice::<CritProbe>(&json)
        .ok()
        .map(|p| p.crit)
}

/// RFC 9068 §4: compare `typ` case-insensitively, with or without `application/`.
/// Never slices inside a character: `typ` is attacker-chosen text.
fn type_matches(found: Option<&str>, expected: &str) -> bool {
    const MEDIA: &str = "application/";
    found.is_some_and(|t| {
        let t = match t.get(..MEDIA.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(MEDIA) => &t[MEDIA.len()..],
            _ => t,
        };
        t.eq_ignore_ascii_case(expected)
    })
}

/// jsonwebtoken reports a header `alg` it does not know (`none` included),
/// and claims that do not fit (missing, mistyped, or those of the other token
/// type, whose `typ` it never looks at) as bad JSON; name the real reason.
fn rejection_for(token: &str, typ: &str, e: jsonwebtoken::errors::Error) -> Error {
    let ErrorKind::Json(json) = e.kind() else {
        return rejection(e);
    };
    if json.classify() != serde_json::error::Category::Data {
        return rejection(e);
    }
    let why = match jsonwebtoken::decode_header(token) {
        // The header parses, so the claims did not fit (after the signature was verified).
        Ok(h) if !type_matches(h.typ.as_deref(), typ) => TokenRejection::WrongTokenType,
        Ok(_) => TokenRejection::MissingClaim,
        Err(_) => {
            let alg = token.split('.').next().and_then(|h| {
                let h =
                    base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h)
                        .ok()?;
                serde_json::from_slice::<serde_json::Value>(&h)
                    .ok()?
                    .get("alg")?
                    .as_str()
                    .map(str::to_owned)
            });
            match alg {
                Some(alg) if alg.parse::<jsonwebtoken::Algorithm>().is_err() => {
                    TokenRejection::AlgorithmNotAllowed
                }
                _ => TokenRejection::Malformed,
            }
        }
    };
    Error::InvalidToken(why)
}

fn rejection(e: jsonwebtoken::errors::Error) -> Error {
    let why = match e.kind() {
        ErrorKind::InvalidSignature => TokenRejection::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => TokenRejection::AlgorithmNotAllowed,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::InvalidSubject => TokenRejection::MissingClaim,
        // Key-shape errors (an EC key handed an RSA token, ...) can only come from
        // a token whose alg does not fit the key.
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => TokenRejection::AlgorithmNotAllowed,
        _ => TokenRejection::Malformed,
    };
    Error::InvalidToken(why)
}
