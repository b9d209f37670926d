//! `REISSUE_JWT_KEY` and `REISSUE_JWT_VERIFY_KEYS` seen from outside: PyJWT's
//! `PyJWKClient` reads each example app's `/auth/jwks.json` over HTTP and
//! verifies its access tokens, before and after a rotation K1 → K2.
//!
//! The verifier is `tests/python/verify_jwks.py`, run by
//! `reissue_conformance::python()`: `$REISSUE_TEST_PYTHON`, else a venv of
//! `tests/python/requirements.txt` it builds on first use.
#![allow(missing_docs)]

use std::process::Command;

use jsonwebtoken::{EncodingKey, Header};
use reissue_conformance::*;
use serde_json::Value;

on_both_adapters!(
    external_verifier_ed25519,
    external_verifier_p256,
    external_verifier_rsa,
    rotation_keeps_everyone_logged_in,
);

fn key(name: &str) -> String {
    format!("{}/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// What the outside verifier said about the JWKS and each token.
struct Verdict {
    kids: Vec<String>,
    tokens: Vec<Value>,
}

fn pyjwt(s: &TestServer, tokens: &[&str]) -> Verdict {
    let python = python();
    let script = format!("{}/python/verify_jwks.py", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("{}/auth/jwks.json", s.base()))
        .args([ISSUER, AUDIENCE])
        .args(tokens)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set REISSUE_TEST_PYTHON): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed (a kid that is not the key's RFC 7638 thumbprint, or PyJWT missing: \
         pip install -r tests/python/requirements.txt): {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).expect("verifier output is JSON");
    Verdict {
        kids: v["kids"]
            .as_array()
            .expect("kids")
            .iter()
            .map(|k| k.as_str().expect("kid").to_owned())
            .collect(),
        tokens: v["tokens"].as_array().expect("tokens").clone(),
    }
}

#[track_caller]
fn assert_verified(v: &Value, alg: &str, user: &User) {
    assert_eq!(v["ok"], Value::Bool(true), "PyJWT refused the token: {v}");
    assert_eq!(v["alg"], alg, "{v}");
    assert_eq!(v["claims"]["sub"].as_str(), Some(user.id.as_str()), "{v}");
}

async fn jwks(s: &TestServer) -> Value {
    let r = s.send(s.get("/auth/jwks.json")).await;
    r.assert_status(200);
    let v = r.json();
    for k in v["keys"].as_array().expect("keys") {
        // Public halves only, and never the HMAC secret the harness also sets.
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "JWKS publishes `{private}`: {v}");
        }
        assert_ne!(k["kty"], "oct", "JWKS publishes a secret: {v}");
    }
    v
}

async fn external_verifier(t: Target, file: &str, alg: &str) {
    let s = t.start(&[("REISSUE_JWT_KEY", &key(file))]);
    let user = s.user().await;
    let header = header_of(&user.tokens.access);
    assert_eq!(header["alg"], alg, "{header}");
    let doc = jwks(&s).await;
    assert_eq!(doc["keys"].as_array().map(Vec::len), Some(1), "{doc}");
    let verdict = pyjwt(&s, &[&user.tokens.access, &user.tokens.refresh]);
    assert_eq!(verdict.kids, [header["kid"].as_str().unwrap().to_owned()]);
    assert_verified(&verdict.tokens[0], alg, &user);
    // The same key signs refresh tokens: their `typ` keeps an outside
    // verifier from taking one for an access token.
    assert_eq!(
        verdict.tokens[1]["ok"],
        Value::Bool(false),
        "{}",
        verdict.tokens[1]
    );
    s.me(&user.tokens.access).await.assert_status(200);
}

async fn external_verifier_ed25519(t: Target) {
    external_verifier(t, "k1-ed25519.pem", "EdDSA").await;
}

async fn external_verifier_p256(t: Target) {
    external_verifier(t, "k2-p256.pem", "ES256").await;
}

async fn external_verifier_rsa(t: Target) {
    external_verifier(t, "k3-rsa2048.pem", "RS256").await;
}

/// `token` re-signed by `pem` with header `kid`: the same claims, another key.
fn forged(token: &str, pem: &str, kid: &str) -> String {
    let pem = std::fs::read(key(pem)).expect("key file");
    let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = header_of(token)["typ"].as_str().map(str::to_owned);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_ed_pem(&pem).expect("Ed25519 key");
    jsonwebtoken::encode(&header, &payload_of(token), &key).expect("sign")
}

async fn rotation_keeps_everyone_logged_in(t: Target) {
    // Before: K1 signs.
    let before = t.start(&[("REISSUE_JWT_KEY", &key("k1-ed25519.pem"))]);
    let prefix = before.redis_prefix().expect("a Redis target").to_owned();
    let user = before.user().await;
    let k1_kid = header_of(&user.tokens.access)["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    // After: K2 signs, K1 (its public half is enough) still verifies; the
    // same sessions, as a rolling deploy shares one Redis.
    let verify = key("k1-ed25519.pub.pem");
    let after = t.start(&[
        ("REISSUE_JWT_KEY", &key("k2-p256.pem")),
        ("REISSUE_JWT_VERIFY_KEYS", &verify),
        ("REISSUE_REDIS_PREFIX", &prefix),
    ]);
    after.me(&user.tokens.access).await.assert_status(200);
    // K1's refresh token turns into a K2 pair: nobody logs in again.
    let fresh = after.reissue(&user.tokens.refresh).await.tokens();
    let k2_kid = header_of(&fresh.access)["kid"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&fresh.access)["alg"], "ES256");
    assert_ne!(k1_kid, k2_kid);
    after.me(&fresh.access).await.assert_status(200);

    // A key in neither set: refused by the app and by PyJWT, whether it
    // names itself or claims K1's id.
    let stranger_kid = "not-a-key-of-this-app";
    let stranger = forged(&user.tokens.access, "stranger-ed25519.pem", stranger_kid);
    let impostor = forged(&user.tokens.access, "stranger-ed25519.pem", &k1_kid);
    after.me(&stranger).await.assert_invalid_token();
    after.me(&impostor).await.assert_invalid_token();

    let doc = jwks(&after).await;
    assert_eq!(doc["keys"].as_array().map(Vec::len), Some(2), "{doc}");
    let verdict = pyjwt(
        &after,
        &[&user.tokens.access, &fresh.access, &stranger, &impostor],
    );
    let mut kids = verdict.kids.clone();
    kids.sort();
    let mut expected = vec![k1_kid.clone(), k2_kid.clone()];
    expected.sort();
    assert_eq!(
        kids, expected,
        "the JWKS names K1 and K2 by their thumbprints"
    );
    let fresh_user = User {
        tokens: fresh.clone(),
        ..user.clone()
    };
    assert_verified(&verdict.tokens[0], "EdDSA", &user);
    assert_verified(&verdict.tokens[1], "ES256", &fresh_user);
    for v in &verdict.tokens[2..] {
        assert_eq!(
            v["ok"],
            Value::Bool(false),
            "PyJWT accepted a stranger's token: {v}"
        );
    }

    // Once K1 is dropped from REISSUE_JWT_VERIFY_KEYS, its tokens are refused.
    let later = t.start(&[
        ("REISSUE_JWT_KEY", &key("k2-p256.pem")),
        ("REISSUE_REDIS_PREFIX", &prefix),
    ]);
    later.me(&user.tokens.access).await.assert_invalid_token();
    later.me(&fresh.access).await.assert_status(200);
}
