//! Issuing and verifying access and refresh tokens.

use std::borrow::Cow;

use jsonwebtoken::{Header, Validation};

use crate::clock::now_secs;
use crate::tokens::claims::{AccessClaims, Authentication, Confirmation, RefreshClaims};
use crate::tokens::keys::KeySet;
use crate::{Claims, Error, Result, SessionId, TokenRejection};

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The `typ` header of refresh tokens; never accepted as an access token.
pub const REFRESH_TOKEN_TYPE: &str = "rt+jwt";
/// The `typ` header of device tokens (login throttling's known devices);
/// never accepted as an access or refresh token.
pub(crate) const DEVICE_TOKEN_TYPE: &str = "device+jwt";
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Signs and verifies both kinds of token with one [`KeySet`].
#[derive(Debug)]
pub struct TokenCodec {
    keys: KeySet,
    issuer: String,
    audience: String,
    client_id: String,
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
            client_id: audience.to_owned(),
            access_header,
            refresh_header,
        }
    }

    /// The `client_id` access tokens carry (RFC 9068 §2.2; default the
    /// audience).
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// The clock skew allowed on `exp` and `nbf`, seconds.
    pub fn leeway(&self) -> u64 {
        self.keys.signing_validation().leeway
    }

    /// The key set.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Signs an access token for a session, valid from `iat` for `ttl`
    /// seconds, without `auth_time` or `amr` (see
    /// [`issue_access_with`](Self::issue_access_with)).
    pub fn issue_access<C: Claims>(
        &self,
        user_id: &str,
        sid: &SessionId,
        app: &C,
        iat: u64,
        ttl: u64,
    ) -> Result<String> {
        self.issue_access_with(user_id, sid, app, &Authentication::default(), iat, ttl)
    }

    /// Signs an access token for a session authenticated as `auth` says
    /// (its `auth_time` and `amr`), valid from `iat` for `ttl` seconds.
    pub fn issue_access_with<C: Claims>(
        &self,
        user_id: &str,
        sid: &SessionId,
        app: &C,
        auth: &Authentication,
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
            client_id: Some(self.client_id.clone()),
            auth_time: auth.auth_time,
            amr: auth.amr.clone(),
            cnf: auth.cnf.clone(),
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
    ///
    /// It also carries the application's claims `app` (as its `app` member),
    /// which the next reissue copies into the new access token and the new
    /// refresh token: the store need not keep them.
    pub fn issue_refresh<C: Claims>(
        &self,
        user_id: &str,
        sid: &SessionId,
        generation: u64,
        iat: u64,
        exp: u64,
        app: &C,
    ) -> Result<String> {
        let auth = Authentication::default();
        self.issue_refresh_with(user_id, sid, generation, iat, exp, app, &auth)
    }

    /// [`issue_refresh`](Self::issue_refresh) for a session authenticated as
    /// `auth` says: the token carries it (its `auth_time` and `amr`), so
    /// that every successor, minted from it, carries the same.
    #[allow(clippy::too_many_arguments)]
    pub fn issue_refresh_with<C: Claims>(
        &self,
        user_id: &str,
        sid: &SessionId,
        generation: u64,
        iat: u64,
        exp: u64,
        app: &C,
        auth: &Authentication,
    ) -> Result<String> {
        let claims = RefreshPayload {
            iss: &self.issuer,
            aud: &self.audience,
            sub: user_id,
            sid,
            generation,
            iat,
            exp,
            auth,
            app,
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
    ///
    /// The application's claims `C` are read from the whole payload (unknown
    /// members ignored), not through `#[serde(flatten)]`, which would buffer
    /// every member first: a `serde_json::Value` as `C` therefore also sees
    /// the registered claims.
    pub fn verify_access<C: Claims>(&self, token: &str) -> Result<AccessClaims<C>> {
        let payload = self.verified_payload(token, ACCESS_TOKEN_TYPE)?;
        let wire: AccessWire<'_> = claims_of(&payload)?;
        self.check_registered(
            &Registered {
                iss: &wire.iss,
                aud: &wire.aud,
                exp: wire.exp,
                nbf: wire.nbf,
            },
            true,
        )?;
        // An access token's iat is the clock of the instance that minted it,
        // so a future one means a skewed issuer or a forged lifetime.
        // Nor can the login it names lie ahead of now.
        let latest = now_secs().saturating_add(self.leeway());
        if wire.iat > latest || wire.auth_time.is_some_and(|t| t > latest) {
            return Err(Error::InvalidToken(TokenRejection::IssuedInFuture));
        }
        let app: C = claims_of(&payload)?;
        Ok(AccessClaims {
            iss: wire.iss.into_owned(),
            aud: wire.aud.into_owned(),
            sub: wire.sub.into_owned(),
            sid: wire.sid,
            jti: wire.jti.into_owned(),
            iat: wire.iat,
            exp: wire.exp,
            client_id: wire.client_id.map(Cow::into_owned),
            auth_time: wire.auth_time,
            amr: wire.amr,
            cnf: wire.cnf,
            app,
        })
    }

    /// Verifies a refresh token the same way, with `typ: rt+jwt`, but without
    /// the `iat` check: a refresh token's `iat` is when its generation was
    /// minted by the store's clock (rotation time is taken inside the store),
    /// and an instance whose own clock lags the store's must still accept it.
    /// Its `exp` and the store's generation are what bound its use.
    pub fn verify_refresh(&self, token: &str) -> Result<RefreshClaims> {
        self.verify_refresh_with(token, true)
    }

    /// Reads a refresh token whose signature is valid even if it has expired,
    /// for logout (ending an expired session is still a logout).
    pub(crate) fn verify_refresh_for_logout(&self, token: &str) -> Result<RefreshClaims> {
        self.verify_refresh_with(token, false)
    }

    fn verify_refresh_with(&self, token: &str, check_exp: bool) -> Result<RefreshClaims> {
        self.verify_refresh_carrying::<serde::de::IgnoredAny>(token, check_exp)
            .map(|(claims, _)| claims)
    }

    /// [`verify_refresh`](Self::verify_refresh), and the application's
    /// claims the token carries (`app`; none in a token minted before they
    /// moved there), read in the same pass over the payload.
    pub(crate) fn verify_refresh_carrying<A: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        check_exp: bool,
    ) -> Result<(RefreshClaims, Option<A>)> {
        let payload = self.verified_payload(token, REFRESH_TOKEN_TYPE)?;
        let wire: RefreshWire<'_, A> = claims_of(&payload)?;
        self.check_registered(
            &Registered {
                iss: &wire.iss,
                aud: &wire.aud,
                exp: wire.exp,
                nbf: wire.nbf,
            },
            check_exp,
        )?;
        let claims = RefreshClaims {
            iss: wire.iss.into_owned(),
            aud: wire.aud.into_owned(),
            sub: wire.sub.into_owned(),
            sid: wire.sid,
            generation: wire.generation,
            iat: wire.iat,
            exp: wire.exp,
            authentication: Authentication {
                auth_time: wire.auth_time,
                amr: wire.amr,
                cnf: wire.cnf,
            },
        };
        Ok((claims, wire.app))
    }

    /// The DPoP binding (`cnf`) of an access token that has just been
    /// verified, read without verifying it again: only for the very bytes
    /// that passed [`verify_access`](Self::verify_access) (or the gate).
    /// Fails (rather than reading no binding) on anything it cannot read.
    pub(crate) fn binding_of_verified(token: &str) -> Result<Option<Confirmation>> {
        #[derive(serde::Deserialize)]
        struct Cnf {
            #[serde(default)]
            cnf: Option<Confirmation>,
        }
        let malformed = || Error::InvalidToken(TokenRejection::Malformed);
        let payload = token.split('.').nth(1).ok_or_else(malformed)?;
        let payload =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .map_err(|_| malformed())?;
        let cnf: Cnf = serde_json::from_slice(&payload).map_err(|_| malformed())?;
        Ok(cnf.cnf)
    }

    /// The decoded payload of a token whose header, key, signature and type
    /// check out (see [`crate::jws`]).
    fn verified_payload(&self, token: &str, typ: &str) -> Result<Vec<u8>> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::InvalidToken(TokenRejection::TooLong));
        }
        crate::tokens::jws::verify(&self.keys, token, typ)
    }

    /// Signs a device token: `device` logged in to the account whose digest
    /// is `account`, valid `ttl` seconds from `iat`.
    pub(crate) fn issue_device(
        &self,
        account: &str,
        device: &str,
        iat: u64,
        ttl: u64,
    ) -> Result<String> {
        let mut header = self.refresh_header.clone();
        header.typ = Some(DEVICE_TOKEN_TYPE.to_owned());
        let claims = DeviceWire {
            iss: self.issuer.as_str().into(),
            aud: self.audience.as_str().into(),
            sub: account.into(),
            did: device.into(),
            iat,
            exp: iat.saturating_add(ttl),
        };
        self.sign(&header, &claims)
    }

    /// The device a valid, unexpired device token names, with the account
    /// digest it was issued for.
    pub(crate) fn verify_device(&self, token: &str) -> Result<(String, String)> {
        let payload = self.verified_payload(token, DEVICE_TOKEN_TYPE)?;
        let wire: DeviceWire<'_> = claims_of(&payload)?;
        self.check_registered(
            &Registered {
                iss: &wire.iss,
                aud: &wire.aud,
                exp: wire.exp,
                nbf: None,
            },
            true,
        )?;
        Ok((wire.sub.into_owned(), wire.did.into_owned()))
    }

    /// The registered claims, in jsonwebtoken's order of checks: `exp` (with
    /// the leeway), `nbf`, `iss`, `aud`.
    fn check_registered(&self, r: &Registered<'_>, check_exp: bool) -> Result<()> {
        let now = now_secs();
        let leeway = self.leeway();
        let why = if check_exp && r.exp < now.saturating_sub(leeway) {
            TokenRejection::Expired
        } else if r.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            TokenRejection::NotYetValid
        } else if r.iss != self.issuer {
            TokenRejection::WrongIssuer
        } else if r.aud != self.audience {
            TokenRejection::WrongAudience
        } else {
            return Ok(());
        };
        Err(Error::InvalidToken(why))
    }
}

/// The claims of an access token, borrowed from its payload (no
/// `#[serde(flatten)]`: it would buffer every member). A missing or mistyped
/// one (an `aud` array, a fractional `exp`) fails to deserialize:
/// [`TokenRejection::MissingClaim`].
#[derive(serde::Deserialize)]
struct AccessWire<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    aud: Cow<'a, str>,
    #[serde(borrow)]
    sub: Cow<'a, str>,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    sid: SessionId,
    #[serde(borrow)]
    jti: Cow<'a, str>,
    iat: u64,
    // Absent from tokens minted before reissue set them.
    #[serde(borrow, default)]
    client_id: Option<Cow<'a, str>>,
    #[serde(default)]
    auth_time: Option<u64>,
    #[serde(default)]
    amr: Vec<String>,
    #[serde(default)]
    cnf: Option<Confirmation>,
}

/// The claims of a refresh token, likewise, and its `app` claims as `A`.
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "'de: 'a, A: serde::de::DeserializeOwned"))]
struct RefreshWire<'a, A> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    aud: Cow<'a, str>,
    #[serde(borrow)]
    sub: Cow<'a, str>,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    sid: SessionId,
    #[serde(rename = "gen")]
    generation: u64,
    iat: u64,
    // Absent from tokens minted before reissue set them.
    #[serde(default)]
    auth_time: Option<u64>,
    #[serde(default)]
    amr: Vec<String>,
    #[serde(default)]
    cnf: Option<Confirmation>,
    #[serde(default)]
    app: Option<A>,
}

/// The payload of a refresh token as it is signed: [`RefreshClaims`] and the
/// application's claims.
#[derive(serde::Serialize)]
struct RefreshPayload<'a, C> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    sid: &'a SessionId,
    #[serde(rename = "gen")]
    generation: u64,
    iat: u64,
    exp: u64,
    #[serde(flatten)]
    auth: &'a Authentication,
    app: &'a C,
}

/// A device token's claims, as signed and as read.
#[derive(serde::Serialize, serde::Deserialize)]
struct DeviceWire<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    aud: Cow<'a, str>,
    /// The account digest.
    #[serde(borrow)]
    sub: Cow<'a, str>,
    /// The device id.
    #[serde(borrow)]
    did: Cow<'a, str>,
    iat: u64,
    exp: u64,
}

/// What [`TokenCodec::check_registered`] looks at.
struct Registered<'r> {
    iss: &'r str,
    aud: &'r str,
    exp: u64,
    nbf: Option<u64>,
}

/// Claims from a verified payload: not JSON is malformed, JSON of the wrong
/// shape lacks a claim.
fn claims_of<'a, T: serde::Deserialize<'a>>(payload: &'a [u8]) -> Result<T> {
    serde_json::from_slice(payload).map_err(|e| {
        Error::InvalidToken(match e.classify() {
            serde_json::error::Category::Data => TokenRejection::MissingClaim,
            _ => TokenRejection::Malformed,
        })
    })
}
