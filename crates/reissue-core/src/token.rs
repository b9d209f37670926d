//! Issuing and verifying access and refresh tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
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
    /// Deterministic: the same arguments give the same token (every supported
    /// algorithm signs deterministically), which is how a retry within the grace
    /// window receives the very token the first call received, although the
    /// store keeps no token.
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

    /// Verifies an access token: signature, `alg`, `kid`, `typ: at+jwt`, `iss`,
    /// `aud`, `exp`, `nbf`.
    pub fn verify_access<C: Claims>(&self, token: &str) -> Result<AccessClaims<C>> {
        self.verify(token, ACCESS_TOKEN_TYPE)
    }

    /// Verifies a refresh token the same way, with `typ: rt+jwt`.
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

/// RFC 9068 §4: compare `typ` case-insensitively, with or without `application/`.
fn type_matches(found: Option<&str>, expected: &str) -> bool {
    found.is_some_and(|t| {
        let t = if t.len() > 12 && t[..12].eq_ignore_ascii_case("application/") {
            &t[12..]
        } else {
            t
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
