//! Token-level attacks and guarantees: `TokenCodec`, `KeySet`, `Key`.
//!
//! Hostile tokens are built by hand (or signed with jsonwebtoken directly,
//! with whatever header an attacker likes) and must be refused for the right
//! reason; genuine ones must round-trip for every supported algorithm.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{EncodingKey, Header};
use reissue_core::{
    ACCESS_TOKEN_TYPE, Algorithm, Error, Key, KeySet, MAX_TOKEN_LEN, REFRESH_TOKEN_TYPE, SessionId,
    TokenCodec, TokenRejection, UserClaims,
};
use serde_json::{Value, json};
use support::{HS256_SECRET, now_s, pem, signs_deterministically};

const ISS: &str = "https://issuer.test";
const AUD: &str = "api.test";
const LEEWAY: u64 = 5;

fn codec(signing: Key) -> TokenCodec {
    TokenCodec::new(KeySet::new(signing).unwrap(), ISS, AUD, LEEWAY)
}

fn hs256() -> Key {
    Key::hmac("hs-1", Algorithm::HS256, HS256_SECRET).unwrap()
}
fn rsa() -> Key {
    Key::from_private_pem("rsa-1", Algorithm::RS256, pem::RSA).unwrap()
}
fn ec() -> Key {
    Key::from_private_pem("ec-1", Algorithm::ES256, pem::EC).unwrap()
}
fn ed() -> Key {
    Key::from_private_pem("ed-1", Algorithm::EdDSA, pem::ED).unwrap()
}

/// Every supported signing key, with what signs like it outside reissue.
fn all_keys() -> Vec<(Key, EncodingKey)> {
    vec![
        (hs256(), EncodingKey::from_secret(HS256_SECRET)),
        (
            Key::hmac("hs384", Algorithm::HS384, &[3; 48]).unwrap(),
            EncodingKey::from_secret(&[3; 48]),
        ),
        (
            Key::hmac("hs512", Algorithm::HS512, &[4; 64]).unwrap(),
            EncodingKey::from_secret(&[4; 64]),
        ),
        (rsa(), EncodingKey::from_rsa_pem(pem::RSA).unwrap()),
        (ec(), EncodingKey::from_ec_pem(pem::EC).unwrap()),
        (ed(), EncodingKey::from_ed_pem(pem::ED).unwrap()),
    ]
}

fn user() -> UserClaims {
    UserClaims::new("alice@example.com", vec!["admin".to_owned()])
}

fn sid() -> SessionId {
    SessionId::parse("AAAAAAAAAAAAAAAAAAAAAA").unwrap()
}

/// Valid access-token claims, to be spoiled one at a time.
fn access_claims() -> Value {
    let now = now_s();
    json!({
        "iss": ISS, "aud": AUD, "sub": "42", "sid": sid().as_str(), "jti": "j1",
        "iat": now, "exp": now + 300, "email": "alice@example.com", "roles": ["admin"],
    })
}

/// A header as our codec writes it, for `key`.
fn header(alg: Algorithm, kid: &str, typ: &str) -> Header {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_owned());
    h.typ = Some(typ.to_owned());
    h
}

fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

/// An unsigned token with a literal header.
fn unsigned(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

fn rejection<T: std::fmt::Debug>(result: Result<T, Error>) -> TokenRejection {
    match result {
        Err(Error::InvalidToken(why)) => why,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

fn access(
    codec: &TokenCodec,
    token: &str,
) -> Result<reissue_core::AccessClaims<UserClaims>, Error> {
    codec.verify_access::<UserClaims>(token)
}

#[test]
fn every_algorithm_round_trips() {
    for (key, _) in all_keys() {
        let (kid, alg) = (key.kid().to_owned(), key.algorithm());
        let codec = codec(key);
        let now = now_s();
        let token = codec.issue_access("42", &sid(), &user(), now, 300).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, alg);
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        assert_eq!(header.typ.as_deref(), Some(ACCESS_TOKEN_TYPE));
        let claims = access(&codec, &token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), &claims.sid, claims.iat, claims.exp),
            ("42", &sid(), now, now + 300),
            "{alg:?}"
        );
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), (ISS, AUD));
        assert_eq!(claims.app, user(), "{alg:?}");

        let refresh = codec
            .issue_refresh("42", &sid(), 7, now, now + 600, &user())
            .unwrap();
        let header = jsonwebtoken::decode_header(&refresh).unwrap();
        assert_eq!(header.typ.as_deref(), Some(REFRESH_TOKEN_TYPE));
        let claims = codec.verify_refresh(&refresh).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.generation, claims.exp),
            ("42", 7, now + 600),
            "{alg:?}"
        );
    }
}

#[test]
fn refresh_tokens_are_the_same_successor_and_identical_where_deterministic() {
    for (key, _) in all_keys() {
        let alg = key.algorithm();
        let codec = codec(key);
        let now = now_s();
        let issue = |generation| {
            codec
                .issue_refresh("42", &sid(), generation, now, now + 600, &user())
                .unwrap()
        };
        let (a, b) = (issue(3), issue(3));
        let (ca, cb) = (
            codec.verify_refresh(&a).unwrap(),
            codec.verify_refresh(&b).unwrap(),
        );
        assert_eq!(
            (&ca.sid, ca.generation, &ca.sub),
            (&cb.sid, cb.generation, &cb.sub),
            "{alg:?}: a retry in the grace window gets the same successor"
        );
        assert_eq!(
            a == b,
            signs_deterministically(alg),
            "{alg:?}: byte-identical exactly where the algorithm is deterministic"
        );
        assert_ne!(a, issue(4), "{alg:?}");
    }
}

#[test]
fn alg_none_is_refused() {
    for (key, _) in all_keys() {
        let kid = key.kid().to_owned();
        let codec = codec(key);
        for none in ["none", "None", "NONE", "nOnE"] {
            let h = json!({"alg": none, "typ": "at+jwt", "kid": kid});
            for signature in ["", "AAAA"] {
                let token = unsigned(&h, &access_claims(), signature);
                assert_eq!(
                    rejection(access(&codec, &token)),
                    TokenRejection::AlgorithmNotAllowed,
                    "{kid} {none}"
                );
            }
        }
    }
}

#[test]
fn a_token_signed_with_another_key_is_refused() {
    let now = now_s();
    let cases: [(Key, Algorithm, EncodingKey); 4] = [
        (
            hs256(),
            Algorithm::HS256,
            EncodingKey::from_secret(&[9; 32]),
        ),
        (
            rsa(),
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem::RSA_ATTACKER).unwrap(),
        ),
        (
            ec(),
            Algorithm::ES256,
            EncodingKey::from_ec_pem(pem::EC_ATTACKER).unwrap(),
        ),
        (
            ed(),
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem::ED_ATTACKER).unwrap(),
        ),
    ];
    for (key, alg, attacker) in cases {
        let kid = key.kid().to_owned();
        let codec = codec(key);
        let forged = sign(&header(alg, &kid, "at+jwt"), &access_claims(), &attacker);
        assert_eq!(
            rejection(access(&codec, &forged)),
            TokenRejection::BadSignature,
            "{alg:?}"
        );
        let forged = sign(
            &header(alg, &kid, "rt+jwt"),
            &json!({"iss": ISS, "aud": AUD, "sub": "42", "sid": sid(), "gen": 1, "iat": now, "exp": now + 60}),
            &attacker,
        );
        assert_eq!(
            rejection(codec.verify_refresh(&forged)),
            TokenRejection::BadSignature,
            "{alg:?}"
        );
    }
}

#[test]
fn tampering_breaks_the_signature() {
    for (key, _) in all_keys() {
        let alg = key.algorithm();
        let codec = codec(key);
        let token = codec
            .issue_access("42", &sid(), &user(), now_s(), 300)
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();

        let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = json!("1");
        claims["roles"] = json!(["admin", "root"]);
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(claims.to_string()),
            parts[2]
        );
        assert_eq!(
            rejection(access(&codec, &tampered)),
            TokenRejection::BadSignature,
            "{alg:?} payload"
        );

        // A refresh token relabelled as an access token.
        let mut h: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        h["typ"] = json!("rt+jwt");
        let relabelled = format!("{}.{}.{}", B64.encode(h.to_string()), parts[1], parts[2]);
        assert_eq!(
            rejection(codec.verify_refresh(&relabelled)),
            TokenRejection::BadSignature,
            "{alg:?} header"
        );

        let mut sig = B64.decode(parts[2]).unwrap();
        sig[0] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], B64.encode(sig));
        assert_eq!(
            rejection(access(&codec, &flipped)),
            TokenRejection::BadSignature,
            "{alg:?} signature"
        );
    }
}

#[test]
fn malformed_tokens_are_refused() {
    let codec = codec(hs256());
    for junk in [
        "",
        "a",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "...",
        "eyJhbGciOiJIUzI1NiJ9..",
        "\u{0}.\u{0}.\u{0}",
    ] {
        assert!(
            matches!(access(&codec, junk), Err(Error::InvalidToken(_))),
            "{junk:?}"
        );
    }
}

#[test]
fn token_types_are_never_confused() {
    for (key, encoding) in all_keys() {
        let (kid, alg) = (key.kid().to_owned(), key.algorithm());
        let codec = codec(key);
        let now = now_s();
        let at = codec.issue_access("42", &sid(), &user(), now, 300).unwrap();
        let rt = codec
            .issue_refresh("42", &sid(), 1, now, now + 300, &user())
            .unwrap();
        assert_eq!(
            rejection(access(&codec, &rt)),
            TokenRejection::WrongTokenType,
            "{alg:?}: refresh as access"
        );
        assert_eq!(
            rejection(codec.verify_refresh(&at)),
            TokenRejection::WrongTokenType,
            "{alg:?}: access as refresh"
        );

        // Right claims, wrong or missing typ, signed with our own key.
        let mut both = access_claims();
        both["gen"] = json!(1);
        for typ in [
            Some("JWT"),
            Some("jwt"),
            None,
            Some(""),
            Some("application/jwt"),
            Some("at+jwt+x"),
        ] {
            let mut h = header(alg, &kid, "");
            h.typ = typ.map(str::to_owned);
            let token = sign(&h, &both, &encoding);
            assert_eq!(
                rejection(access(&codec, &token)),
                TokenRejection::WrongTokenType,
                "{alg:?} {typ:?}"
            );
            assert_eq!(
                rejection(codec.verify_refresh(&token)),
                TokenRejection::WrongTokenType,
                "{alg:?} {typ:?}"
            );
        }
        // RFC 9068 §4: the media type form and any case are the same type.
        for typ in ["application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
            let token = sign(&header(alg, &kid, typ), &both, &encoding);
            access(&codec, &token).unwrap_or_else(|e| panic!("{alg:?} {typ}: {e:?}"));
            assert_eq!(
                rejection(codec.verify_refresh(&token)),
                TokenRejection::WrongTokenType
            );
        }
        let token = sign(&header(alg, &kid, "application/rt+jwt"), &both, &encoding);
        codec.verify_refresh(&token).unwrap();
        assert_eq!(
            rejection(access(&codec, &token)),
            TokenRejection::WrongTokenType
        );
    }
}

/// Signs `claims` as a genuine HS256 access token of `hs-1`.
fn genuine(claims: &Value) -> String {
    sign(
        &header(Algorithm::HS256, "hs-1", "at+jwt"),
        claims,
        &EncodingKey::from_secret(HS256_SECRET),
    )
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

fn without(mut claims: Value, field: &str) -> Value {
    claims.as_object_mut().unwrap().remove(field);
    claims
}

#[test]
fn lifetimes_are_checked_with_leeway() {
    let codec = codec(hs256());
    let now = now_s();
    access(&codec, &genuine(&access_claims())).unwrap();
    let expired = with(access_claims(), "exp", json!(now - LEEWAY - 5));
    assert_eq!(
        rejection(access(&codec, &genuine(&expired))),
        TokenRejection::Expired
    );
    let just_expired = with(access_claims(), "exp", json!(now - 2));
    access(&codec, &genuine(&just_expired)).expect("within the leeway");

    let early = with(access_claims(), "nbf", json!(now + 60));
    assert_eq!(
        rejection(access(&codec, &genuine(&early))),
        TokenRejection::NotYetValid
    );
    let nearly = with(access_claims(), "nbf", json!(now + 2));
    access(&codec, &genuine(&nearly)).expect("within the leeway");

    let strict = TokenCodec::new(KeySet::new(hs256()).unwrap(), ISS, AUD, 0);
    assert_eq!(
        rejection(access(
            &strict,
            &genuine(&with(access_claims(), "exp", json!(now - 2)))
        )),
        TokenRejection::Expired
    );
    assert_eq!(
        rejection(access(
            &strict,
            &genuine(&with(access_claims(), "nbf", json!(now + 2)))
        )),
        TokenRejection::NotYetValid
    );

    assert_eq!(
        rejection(access(&codec, &genuine(&without(access_claims(), "exp")))),
        TokenRejection::MissingClaim
    );
}

#[test]
fn issuer_and_audience_are_checked() {
    let codec = codec(hs256());
    let cases = [
        (
            with(access_claims(), "iss", json!("https://evil.test")),
            TokenRejection::WrongIssuer,
        ),
        (
            with(access_claims(), "aud", json!("other-api")),
            TokenRejection::WrongAudience,
        ),
        (
            without(access_claims(), "iss"),
            TokenRejection::MissingClaim,
        ),
        (
            without(access_claims(), "aud"),
            TokenRejection::MissingClaim,
        ),
        (
            without(access_claims(), "sub"),
            TokenRejection::MissingClaim,
        ),
    ];
    for (claims, why) in cases {
        assert_eq!(
            rejection(access(&codec, &genuine(&claims))),
            why,
            "{claims}"
        );
    }
    assert_eq!(
        rejection(access(&codec, &genuine(&without(access_claims(), "sid")))),
        TokenRejection::MissingClaim
    );
    assert_eq!(
        rejection(access(
            &codec,
            &genuine(&with(access_claims(), "exp", json!("soon")))
        )),
        TokenRejection::MissingClaim
    );
    // An audience list without ours (our own tokens carry a single audience).
    let why = rejection(access(
        &codec,
        &genuine(&with(access_claims(), "aud", json!(["other-api", "third"]))),
    ));
    assert!(
        matches!(
            why,
            TokenRejection::WrongAudience | TokenRejection::MissingClaim
        ),
        "{why:?}"
    );
}

#[test]
fn kid_must_name_one_of_our_keys() {
    let one = codec(hs256());
    let two = TokenCodec::new(
        KeySet::new(hs256())
            .unwrap()
            .with_verification_key(rsa())
            .unwrap(),
        ISS,
        AUD,
        LEEWAY,
    );
    let ours = EncodingKey::from_secret(HS256_SECRET);
    for codec in [&one, &two] {
        let token = sign(
            &header(Algorithm::HS256, "hs-2", "at+jwt"),
            &access_claims(),
            &ours,
        );
        assert_eq!(
            rejection(access(codec, &token)),
            TokenRejection::UnknownKey,
            "unknown kid, right key"
        );
        let mut h = header(Algorithm::HS256, "", "at+jwt");
        h.kid = None;
        let token = sign(&h, &access_claims(), &ours);
        assert_eq!(
            rejection(access(codec, &token)),
            TokenRejection::UnknownKey,
            "missing kid"
        );
        access(codec, &genuine(&access_claims())).unwrap();
    }
    // A kid naming our RSA key, with an HS256 token: alg must be the key's.
    let token = sign(
        &header(Algorithm::HS256, "rsa-1", "at+jwt"),
        &access_claims(),
        &ours,
    );
    assert_eq!(
        rejection(access(&two, &token)),
        TokenRejection::AlgorithmNotAllowed
    );
}

#[test]
fn jku_jwk_and_x5u_headers_are_never_followed() {
    let codec = codec(rsa());
    let attacker_key = Key::from_private_pem("evil", Algorithm::RS256, pem::RSA_ATTACKER).unwrap();
    let attacker_jwk = KeySet::new(attacker_key)
        .unwrap()
        .jwks()
        .unwrap()
        .keys
        .remove(0);
    let attacker = EncodingKey::from_rsa_pem(pem::RSA_ATTACKER).unwrap();
    for kid in ["rsa-1", "evil"] {
        let mut h = header(Algorithm::RS256, kid, "at+jwt");
        h.jku = Some("https://attacker.test/jwks.json".to_owned());
        h.jwk = Some(attacker_jwk.clone());
        h.x5u = Some("https://attacker.test/cert.pem".to_owned());
        let forged = sign(&h, &access_claims(), &attacker);
        let why = rejection(access(&codec, &forged));
        assert!(
            matches!(
                why,
                TokenRejection::BadSignature | TokenRejection::UnknownKey
            ),
            "{kid}: {why:?}"
        );
    }
    // A genuine token with the same headers added is verified by our key alone.
    let mut h = header(Algorithm::RS256, "rsa-1", "at+jwt");
    h.jku = Some("https://attacker.test/jwks.json".to_owned());
    h.jwk = Some(attacker_jwk);
    h.x5u = Some("https://attacker.test/cert.pem".to_owned());
    let token = sign(
        &h,
        &access_claims(),
        &EncodingKey::from_rsa_pem(pem::RSA).unwrap(),
    );
    assert_eq!(access(&codec, &token).unwrap().sub, "42");
}

#[test]
fn hmac_with_a_public_key_as_secret_is_refused() {
    // The classic algorithm confusion: HS256 "signed" with the RSA public key.
    let cases = [
        (rsa(), pem::RSA_PUB),
        (ec(), pem::EC_PUB),
        (ed(), pem::ED_PUB),
    ];
    for (key, public_pem) in cases {
        let kid = key.kid().to_owned();
        let codec = codec(key);
        for secret in [public_pem, public_pem.trim_ascii_end()] {
            let forged = sign(
                &header(Algorithm::HS256, &kid, "at+jwt"),
                &access_claims(),
                &EncodingKey::from_secret(secret),
            );
            assert_eq!(
                rejection(access(&codec, &forged)),
                TokenRejection::AlgorithmNotAllowed,
                "{kid}"
            );
        }
    }
    // And the reverse: an asymmetric alg presented to an HMAC key set.
    let codec = codec(hs256());
    let forged = sign(
        &header(Algorithm::RS256, "hs-1", "at+jwt"),
        &access_claims(),
        &EncodingKey::from_rsa_pem(pem::RSA).unwrap(),
    );
    assert_eq!(
        rejection(access(&codec, &forged)),
        TokenRejection::AlgorithmNotAllowed
    );
    // Same family, other algorithm: RS512 for an RS256 key.
    let codec = self::codec(rsa());
    let other = sign(
        &header(Algorithm::RS512, "rsa-1", "at+jwt"),
        &access_claims(),
        &EncodingKey::from_rsa_pem(pem::RSA).unwrap(),
    );
    assert_eq!(
        rejection(access(&codec, &other)),
        TokenRejection::AlgorithmNotAllowed
    );
}

#[test]
fn tokens_over_8_kib_are_refused_before_parsing() {
    let codec = codec(hs256());
    let huge = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(rejection(access(&codec, &huge)), TokenRejection::TooLong);
    assert_eq!(
        rejection(codec.verify_refresh(&huge)),
        TokenRejection::TooLong
    );
    // A genuine token that is too long is refused all the same.
    let fat = UserClaims::new("x".repeat(MAX_TOKEN_LEN), vec![]);
    let token = codec
        .issue_access("42", &sid(), &fat, now_s(), 300)
        .unwrap();
    assert!(token.len() > MAX_TOKEN_LEN);
    assert_eq!(rejection(access(&codec, &token)), TokenRejection::TooLong);
    // At the limit is fine.
    let mut claims = access_claims();
    let base = genuine(&claims).len();
    claims["pad"] = json!("");
    let pad = (MAX_TOKEN_LEN - genuine(&claims).len()) * 3 / 4;
    claims["pad"] = json!("p".repeat(pad));
    let token = genuine(&claims);
    assert!(
        token.len() <= MAX_TOKEN_LEN && token.len() > base,
        "{}",
        token.len()
    );
    access(&codec, &token).unwrap();
}

fn config_error<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Config(why)) => why,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn hmac_secrets_must_be_as_long_as_the_hash() {
    for (alg, min) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        let why = config_error(Key::hmac("k", alg, &vec![1; min - 1]));
        assert!(why.contains(&min.to_string()), "{why}");
        Key::hmac("k", alg, &vec![1; min]).unwrap();
        config_error(Key::hmac("k", alg, b""));
    }
    config_error(Key::hmac("k", Algorithm::RS256, &[1; 64]));
    config_error(Key::from_private_pem("k", Algorithm::HS256, pem::RSA));
    config_error(Key::from_private_pem("k", Algorithm::ES256, pem::RSA));
    config_error(Key::from_private_pem("k", Algorithm::RS256, b"not a pem"));
    for kid in ["", "a b", "é", &"k".repeat(129)] {
        config_error(Key::hmac(kid, Algorithm::HS256, HS256_SECRET));
    }
    config_error(KeySet::new(rsa().verify_only()));
    config_error(KeySet::new(
        Key::from_public_pem("p", Algorithm::RS256, pem::RSA_PUB).unwrap(),
    ));
    config_error(KeySet::new(hs256()).unwrap().with_verification_key(hs256()));
}

#[test]
fn key_rotation_keeps_old_tokens_valid() {
    let now = now_s();
    let old = codec(rsa());
    let old_token = old.issue_access("42", &sid(), &user(), now, 300).unwrap();
    let old_refresh = old
        .issue_refresh("42", &sid(), 1, now, now + 600, &user())
        .unwrap();

    // The new key signs; the old one only verifies (either half of the old pair will do).
    for retired in [
        rsa().verify_only(),
        Key::from_public_pem("rsa-1", Algorithm::RS256, pem::RSA_PUB).unwrap(),
    ] {
        let keys = KeySet::new(ec())
            .unwrap()
            .with_verification_key(retired)
            .unwrap();
        let new = TokenCodec::new(keys, ISS, AUD, LEEWAY);
        assert_eq!(
            access(&new, &old_token).unwrap().sub,
            "42",
            "old access tokens still verify"
        );
        assert_eq!(new.verify_refresh(&old_refresh).unwrap().generation, 1);
        let token = new.issue_access("42", &sid(), &user(), now, 300).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(
            (header.kid.as_deref(), header.alg),
            (Some("ec-1"), Algorithm::ES256),
            "new tokens carry the new kid"
        );
        access(&new, &token).unwrap();
        let jwks = new.keys().jwks().expect("public keys");
        let kids: Vec<_> = jwks
            .keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(
            kids,
            ["ec-1", "rsa-1"],
            "both keys are published while the old tokens live"
        );
        let published = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[1]).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&[AUD]);
        jsonwebtoken::decode::<Value>(&old_token, &published, &v)
            .expect("the published old key verifies old tokens");
        // The old codec does not know the new key (nor its algorithm).
        let why = rejection(access(&old, &token));
        assert!(
            matches!(
                why,
                TokenRejection::UnknownKey | TokenRejection::AlgorithmNotAllowed
            ),
            "{why:?}"
        );
    }
}

#[test]
fn jwks_publishes_public_keys_only() {
    let keys = KeySet::new(rsa())
        .unwrap()
        .with_verification_key(ec())
        .unwrap()
        .with_verification_key(ed())
        .unwrap()
        .with_verification_key(Key::hmac("hs-old", Algorithm::HS256, HS256_SECRET).unwrap())
        .unwrap();
    let jwks = keys.jwks().expect("asymmetric keys are published");
    let doc = serde_json::to_value(&jwks).unwrap();
    let published = doc["keys"].as_array().unwrap();
    let expected = [
        ("rsa-1", "RSA", "RS256"),
        ("ec-1", "EC", "ES256"),
        ("ed-1", "OKP", "EdDSA"),
    ];
    assert_eq!(published.len(), expected.len(), "{doc}");
    for (jwk, (kid, kty, alg)) in published.iter().zip(expected) {
        assert_eq!(jwk["kid"], kid, "{jwk}");
        assert_eq!(jwk["kty"], kty, "{jwk}");
        assert_eq!(jwk["alg"], alg, "{jwk}");
        assert_eq!(jwk["use"], "sig", "{jwk}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(jwk.get(private).is_none(), "{kid} publishes `{private}`");
        }
    }
    let text = doc.to_string();
    assert!(!text.contains("oct") && !text.contains("hs-old"), "{text}");
    assert!(
        !text.contains(&B64.encode(HS256_SECRET)),
        "the HMAC secret is never published"
    );
    // A published key verifies our tokens (what a resource server does).
    let codec = TokenCodec::new(keys, ISS, AUD, LEEWAY);
    let token = codec
        .issue_access("42", &sid(), &user(), now_s(), 300)
        .unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
    v.set_audience(&[AUD]);
    jsonwebtoken::decode::<Value>(&token, &decoding, &v).unwrap();

    assert!(
        KeySet::new(hs256()).unwrap().jwks().is_none(),
        "HMAC only: no JWKS"
    );

    // Verification-only keys loaded from public PEM are published the same way.
    let from_public = KeySet::new(hs256())
        .unwrap()
        .with_verification_key(
            Key::from_public_pem("rsa-1", Algorithm::RS256, pem::RSA_PUB).unwrap(),
        )
        .unwrap()
        .with_verification_key(Key::from_public_pem("ec-1", Algorithm::ES256, pem::EC_PUB).unwrap())
        .unwrap()
        .with_verification_key(Key::from_public_pem("ed-1", Algorithm::EdDSA, pem::ED_PUB).unwrap())
        .unwrap();
    assert_eq!(
        serde_json::to_value(from_public.jwks().unwrap()).unwrap(),
        doc,
        "same JWKS from either half of each pair"
    );
}

/// Signs a literal header text (what jsonwebtoken's `Header` cannot express:
/// `crit: null`, a member twice) over `claims`.
fn sign_literal(header: &str, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", B64.encode(header), B64.encode(claims.to_string()));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

#[test]
fn a_crit_header_is_refused() {
    let now = now_s();
    let refresh_claims = json!({"iss": ISS, "aud": AUD, "sub": "42", "sid": sid(), "gen": 1, "iat": now, "exp": now + 60});
    for (key, encoding) in all_keys() {
        let (kid, alg) = (key.kid().to_owned(), key.algorithm());
        let codec = codec(key);
        for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()], vec![]] {
            let mut h = header(alg, &kid, "at+jwt");
            h.crit = Some(crit.clone());
            let token = sign(&h, &access_claims(), &encoding);
            assert_eq!(
                rejection(access(&codec, &token)),
                TokenRejection::CriticalHeader,
                "{alg:?} access, crit {crit:?}"
            );
            let mut h = header(alg, &kid, "rt+jwt");
            h.crit = Some(crit.clone());
            let token = sign(&h, &refresh_claims, &encoding);
            assert_eq!(
                rejection(codec.verify_refresh(&token)),
                TokenRejection::CriticalHeader,
                "{alg:?} refresh, crit {crit:?}"
            );
        }
        // The same token without `crit` is accepted: the refusal is for `crit` alone.
        let h = format!(r#"{{"alg":"{alg:?}","typ":"at+jwt","kid":"{kid}"}}"#);
        let plain = sign_literal(&h, &access_claims(), &encoding, alg);
        access(&codec, &plain).unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        // Shapes the jsonwebtoken `Header` reads as "no crit", or where two
        // parsers could disagree: refused (or malformed), never accepted.
        for (h, why) in [
            (
                format!(r#"{{"alg":"{alg:?}","typ":"at+jwt","kid":"{kid}","crit":null}}"#),
                TokenRejection::CriticalHeader,
            ),
            (
                format!(r#"{{"crit":["exp"],"alg":"{alg:?}","typ":"at+jwt","kid":"{kid}"}}"#),
                TokenRejection::CriticalHeader,
            ),
            (
                format!(
                    r#"{{"alg":"{alg:?}","typ":"at+jwt","kid":"{kid}","crit":["x"],"crit":["x"]}}"#
                ),
                TokenRejection::Malformed,
            ),
        ] {
            let token = sign_literal(&h, &access_claims(), &encoding, alg);
            assert_eq!(rejection(access(&codec, &token)), why, "{alg:?} {h}");
        }
    }
    // A forged token with `crit` is refused too (before any signature work).
    let codec = codec(hs256());
    let token = unsigned(
        &json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs-1", "crit": ["exp"]}),
        &access_claims(),
        "AAAA",
    );
    assert_eq!(
        rejection(access(&codec, &token)),
        TokenRejection::CriticalHeader
    );
}

#[test]
fn an_access_token_issued_in_the_future_is_refused() {
    for (key, encoding) in all_keys() {
        let (kid, alg) = (key.kid().to_owned(), key.algorithm());
        let codec = codec(key);
        let at = |iat: u64| {
            let claims = with(access_claims(), "iat", json!(iat));
            sign(&header(alg, &kid, "at+jwt"), &claims, &encoding)
        };
        // now_s() per token: RSA signing in a debug build takes a while.
        for ahead in [LEEWAY + 30, 60, 3600, 10 * 365 * 24 * 3600] {
            assert_eq!(
                rejection(access(&codec, &at(now_s() + ahead))),
                TokenRejection::IssuedInFuture,
                "{alg:?}: iat {ahead} s ahead"
            );
        }
        for ahead in [0, 2] {
            access(&codec, &at(now_s() + ahead)).unwrap_or_else(|e| {
                panic!("{alg:?}: iat {ahead} s ahead is within the leeway: {e:?}")
            });
        }
        // Our own tokens are minted with iat = now, so they always pass.
        let token = codec
            .issue_access("42", &sid(), &user(), now_s(), 300)
            .unwrap();
        access(&codec, &token).unwrap();
    }
    let now = now_s();
    let strict = TokenCodec::new(KeySet::new(hs256()).unwrap(), ISS, AUD, 0);
    assert_eq!(
        rejection(access(
            &strict,
            &genuine(&with(access_claims(), "iat", json!(now + 2)))
        )),
        TokenRejection::IssuedInFuture,
        "no leeway, no slack"
    );
    assert_eq!(
        rejection(access(&strict, &genuine(&without(access_claims(), "iat")))),
        TokenRejection::MissingClaim
    );
}

/// A refresh token's iat is the store's clock (rotation time is taken in the
/// store): an instance lagging the store must accept it.
#[test]
fn a_refresh_token_issued_ahead_of_this_clock_is_accepted() {
    let now = now_s();
    for (key, _) in all_keys() {
        let alg = key.algorithm();
        let codec = codec(key);
        for ahead in [60, 3600] {
            let token = codec
                .issue_refresh("42", &sid(), 2, now + ahead, now + ahead + 600, &user())
                .unwrap();
            let claims = codec
                .verify_refresh(&token)
                .unwrap_or_else(|e| panic!("{alg:?} {ahead}: {e:?}"));
            assert_eq!((claims.generation, claims.iat), (2, now + ahead));
        }
    }
}

#[test]
fn a_non_ascii_typ_is_refused_without_panicking() {
    // Byte 12 falls inside a character in the first ones: slicing `typ[..12]`
    // to look for `application/` panicked there.
    let typs = [
        "aéééééé",
        "applicationé",
        "ééééééé+jwt",
        "application/é",
        "applicationé/at+jwt",
        "🦀🦀🦀🦀",
        "at+jwt\u{301}",
        "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
    ];
    for (key, encoding) in all_keys() {
        let (kid, alg) = (key.kid().to_owned(), key.algorithm());
        let codec = codec(key);
        for typ in typs {
            let token = sign(&header(alg, &kid, typ), &access_claims(), &encoding);
            assert_eq!(
                rejection(access(&codec, &token)),
                TokenRejection::WrongTokenType,
                "{alg:?} {typ:?}"
            );
            // Claims that do not fit take the other path through `typ`.
            assert_eq!(
                rejection(codec.verify_refresh(&token)),
                TokenRejection::WrongTokenType,
                "{alg:?} {typ:?}"
            );
        }
    }
}

/// An application claims type with a member named like a registered claim
/// (here `sub`) would mint tokens with two `sub` members: `build` refuses it
/// and names the member.
#[test]
fn a_claims_type_with_a_reserved_member_is_refused_at_build() {
    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    struct Mine {
        email: String,
        sub: String,
    }
    impl reissue_core::Claims for Mine {}
    struct Auth;
    impl reissue_core::Authenticator for Auth {
        type Credentials = String;
        type Claims = Mine;
        fn account_key(&self, c: &String) -> reissue_core::Result<String> {
            Ok(c.clone())
        }
        async fn authenticate(
            &self,
            c: String,
        ) -> reissue_core::Result<reissue_core::Authenticated<Mine>> {
            Ok(reissue_core::Authenticated::new(
                c.clone(),
                Mine {
                    email: c.clone(),
                    sub: c,
                },
            ))
        }
    }
    let err = reissue_core::Reissue::builder(
        reissue_core::Config::new("i", "a"),
        support::hs256_keys(),
        std::sync::Arc::new(reissue_core::store::MemoryStore::new()),
        Auth,
    )
    .build()
    .unwrap_err();
    assert!(err.to_string().contains("`sub`"), "{err}");
}

/// A signed token whose header or claims are not UTF-8 is malformed (RFC
/// 7519 §7.2), even where the bytes sit in a member the verifier skips:
/// serde_json ignores such members unchecked, and fuzz/claims found a refresh
/// token with bytes 0xfe 0xff in an `app` member name accepted.
#[test]
fn claims_or_header_that_are_not_utf8_are_refused() {
    let now = now_s();
    let encoding = EncodingKey::from_secret(HS256_SECRET);
    let codec = codec(hs256());
    let refresh = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"42","sid":"{}","gen":3,"iat":{now},"exp":{},"app":{{"X":"a"}}}}"#,
        sid().as_str(),
        now + 60
    );
    let sign_bytes = |header: &[u8], payload: &[u8]| {
        let message = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &encoding, Algorithm::HS256).unwrap();
        format!("{message}.{signature}")
    };
    let header = br#"{"alg":"HS256","typ":"rt+jwt","kid":"hs-1"}"#;
    let good = sign_bytes(header, refresh.as_bytes());
    assert!(
        codec.verify_refresh(&good).is_ok(),
        "the UTF-8 original is valid"
    );

    let bad_payload = refresh.replace('X', "\u{1}").into_bytes();
    let bad_payload: Vec<u8> = bad_payload
        .iter()
        .map(|&b| if b == 1 { 0xfe } else { b })
        .collect();
    assert_eq!(
        rejection(codec.verify_refresh(&sign_bytes(header, &bad_payload))),
        TokenRejection::Malformed
    );
    let bad_header = br#"{"alg":"HS256","typ":"rt+jwt","kid":"hs-1","x\xff":1}"#;
    assert_eq!(
        rejection(codec.verify_refresh(&sign_bytes(bad_header, refresh.as_bytes()))),
        TokenRejection::Malformed
    );
}
