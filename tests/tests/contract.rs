//! Every row of CONTRACT.md as a scenario, each run against
//! {axum, actix} × {memory, redis, cluster}, and the login and reissue rows on
//! examples/sqlx-app too: a failure reads `actix_redis::grace_window`.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reissue_conformance::*;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use serde_json::{Value, json};

/// Emits `mod axum_memory { #[test] fn <scenario>() }` and the other cells
/// for every scenario; `redis_only` ones only in the Redis cells (the shared
/// Redis, and a Redis Cluster of 3+3 started once for this binary); `sqlx`
/// ones on examples/sqlx-app (its users in a Postgres table of its own
/// through sqlx), on the memory store and the shared Redis.
macro_rules! conformance {
    (
        all: [$($s:ident),* $(,)?],
        redis_only: [$($r:ident),* $(,)?],
        sqlx: [$($q:ident),* $(,)?] $(,)?
    ) => {
        conformance!(@cell axum_memory, Axum, Memory, [$($s),*]);
        conformance!(@cell axum_redis, Axum, Redis, [$($s,)* $($r),*]);
        conformance!(@cell actix_memory, Actix, Memory, [$($s),*]);
        conformance!(@cell actix_redis, Actix, Redis, [$($s,)* $($r),*]);
        conformance!(@cell axum_cluster, Axum, Cluster, [$($s,)* $($r),*]);
        conformance!(@cell actix_cluster, Actix, Cluster, [$($s,)* $($r),*]);
        conformance!(@cell sqlx_memory, Sqlx, Memory, [$($q),*]);
        conformance!(@cell sqlx_redis, Sqlx, Redis, [$($q),*]);
    };
    (@cell $cell:ident, $adapter:ident, $store:ident, [$($s:ident),* $(,)?]) => {
        mod $cell {
            use reissue_conformance::{run, Adapter, Store, Target};
            const TARGET: Target = Target { adapter: Adapter::$adapter, store: Store::$store };
            $(
                #[test]
                fn $s() {
                    run(TARGET, super::$s);
                }
            )*
        }
    };
}

conformance! {
    all: [
        health,
        reauthenticate_same_session_fresh_auth_time,
        reauthenticate_wrong_password_counts,
        reauthenticate_racing_logout,
        step_up_stale_auth_time_challenge,
        auth_time_in_future_refused,
        password_change_ends_other_sessions,
        signup_created,
        signup_email_taken_case_insensitive,
        signup_malformed_email,
        signup_short_password,
        signup_unusable_body,
        login_token_response,
        login_access_token_claims,
        login_failures_are_indistinguishable,
        login_unusable_body,
        login_lockout,
        me_ok,
        me_without_token,
        me_other_scheme,
        me_scheme_case_insensitive,
        me_malformed_authorization,
        me_bad_signature,
        me_alg_none,
        me_alg_not_allowed,
        me_tampered_payload,
        me_refresh_token_as_access,
        me_plain_jwt_typ,
        me_expired,
        me_not_yet_valid,
        me_wrong_issuer,
        me_wrong_audience,
        me_unknown_kid,
        me_foreign_jku,
        me_malformed_jwt,
        reissue_bearer,
        reissue_json_body,
        reissue_unusable_body,
        reissue_access_token_refused,
        reissue_forged_refresh_tokens,
        reissue_grace_window_same_token,
        reissue_concurrent,
        reissue_reuse_after_grace,
        reissue_replay_until_successor_used,
        reissue_predecessor_after_successor_used,
        reissue_replay_racing_successor,
        access_claims_rfc9068,
        access_claims_client_id_variable,
        tokens_without_new_claims_still_verify,
        expires_in_is_each_tokens_own,
        access_ttl_jitter_off,
        reissue_reuse_strict_grace,
        reissue_older_generation,
        reissue_after_logout,
        session_absolute_lifetime,
        session_idle_lifetime,
        session_idle_renewed_by_reissue,
        logout_with_access_token,
        logout_with_refresh_json,
        logout_all,
        logout_stateless_access_keeps_working,
        logout_strict_mode,
        sessions_list,
        sessions_delete,
        sessions_delete_not_found,
        jwks_hmac_only,
        admin_forced_logout,
        client_address_trusted_proxy,
        client_address_untrusted_peer,
        client_address_spoofed_chain,
        country_login,
        country_reissue_revokes,
        country_ipv6,
        country_untrusted_proxy,
        bad_input_never_500,
        oversized_body_answered,
        me_crit_header,
        me_iat_in_future,
        me_authorization_over_8_kib,
        jwks_not_found_says_why,
        logout_instant_refused_at_once,
        revocation_mode_variables,
        session_endpoints_refuse_ended_sessions,
        login_throttled_per_network,
        login_parallel_guesses_capped,
        login_malformed_email_not_counted,
        login_account_ceiling_across_networks,
        cookie_login_sets_the_cookie,
        cookie_reissue_by_cookie,
        cookie_reissue_concurrent,
        cookie_logout_by_cookie,
        cookie_logout_all_clears,
        cookie_csrf_refusals,
        cookie_allowed_origins,
        cookie_header_clients_unaffected,
        cookie_transport_off,
        cookie_reissue_401_clears,
        cookie_tossing_refused,
        cookie_mode_header_token_same_site,
        metrics_move_with_each_decision,
        dpop_login_binds_the_session,
        dpop_reissue_without_proof_spends_nothing,
        dpop_bad_proofs_on_reissue_refused,
        dpop_replayed_proof_refused,
        dpop_bad_proofs_at_login_are_400,
        dpop_required_refuses_proofless_login,
        dpop_off_binds_nothing,
        dpop_unbound_session_ignores_proofs,
        dpop_logout_needs_the_proof,
        dpop_reauthenticate_needs_the_proof,
        dpop_cookie_transport_binds_the_same,
        dpop_public_origin_variable,
    ],
    redis_only: [
        redis_down_reissue_503,
        redis_down_strict_protected_503,
        instant_revocation_reaches_other_instances,
        strict_revocation_is_everywhere_when_logout_returns,
    ],
    // The login and reissue rows, and a login flood against its bounded
    // password queue (issue 25, item 8).
    sqlx: [
        login_token_response,
        login_access_token_claims,
        login_failures_are_indistinguishable,
        login_unusable_body,
        login_lockout,
        login_throttled_per_network,
        login_parallel_guesses_capped,
        login_malformed_email_not_counted,
        login_account_ceiling_across_networks,
        reissue_bearer,
        reissue_json_body,
        reissue_unusable_body,
        reissue_access_token_refused,
        reissue_forged_refresh_tokens,
        reissue_grace_window_same_token,
        reissue_concurrent,
        reissue_reuse_after_grace,
        reissue_reuse_strict_grace,
        reissue_older_generation,
        reissue_after_logout,
        session_absolute_lifetime,
        session_idle_lifetime,
        session_idle_renewed_by_reissue,
        a_login_flood_gets_503_not_a_wait,
    ],
}

// ---------------------------------------------------------------- helpers

async fn sleep(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

fn email() -> String {
    format!("user{}@example.com", unique())
}

/// Claims of a real access token, to forge variants of.
fn claims_of(t: &Tokens) -> Value {
    t.access_claims()
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().expect("claims are an object").remove(key);
    v
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

// ---------------------------------------------------------------- app endpoints

async fn health(t: Target) {
    let s = t.start(&[]);
    s.send(s.get("/health")).await.assert_status(200);
    s.send(s.get("/health").header(AUTHORIZATION, "Bearer garbage"))
        .await
        .assert_status(200);
}

async fn signup_created(t: Target) {
    let s = t.start(&[]);
    let r = s
        .send(
            s.post("/signup")
                .json(&json!({"email": "new@example.com", "password": PASSWORD})),
        )
        .await;
    r.assert_status(201).assert_json_type();
    let v = r.json();
    assert!(id_string(&v["id"]).is_some(), "{}", r.text);
    assert_eq!(v["email"], json!("new@example.com"));
    // exactly 8 characters is long enough
    s.signup(&email(), "12345678").await;
}

async fn signup_email_taken_case_insensitive(t: Target) {
    let s = t.start(&[]);
    s.signup("taken@example.com", PASSWORD).await;
    for e in ["taken@example.com", "Taken@Example.COM"] {
        let r = s
            .send(
                s.post("/signup")
                    .json(&json!({"email": e, "password": "another password"})),
            )
            .await;
        r.assert_error(409, "email_taken");
    }
}

async fn signup_malformed_email(t: Target) {
    let s = t.start(&[]);
    for e in [
        "not-an-email",
        "",
        "@example.com",
        "user@",
        "a b@example.com",
    ] {
        let r = s
            .send(
                s.post("/signup")
                    .json(&json!({"email": e, "password": PASSWORD})),
            )
            .await;
        r.assert_bad_body();
    }
}

async fn signup_short_password(t: Target) {
    let s = t.start(&[]);
    for pw in ["", "short", "1234567"] {
        let r = s
            .send(
                s.post("/signup")
                    .json(&json!({"email": email(), "password": pw})),
            )
            .await;
        r.assert_bad_body();
    }
}

/// Bodies that are not usable credentials, for /signup and /auth/login.
fn unusable_bodies() -> Vec<(Option<&'static str>, Vec<u8>)> {
    let creds = br#"{"email":"x@example.com","password":"correct horse battery"}"#.to_vec();
    vec![
        (
            Some("application/x-www-form-urlencoded"),
            b"email=x%40example.com&password=correct+horse+battery".to_vec(),
        ),
        (Some("text/plain"), creds.clone()),
        (None, creds),
        (Some("application/json"), b"{not json".to_vec()),
        (Some("application/json"), b"".to_vec()),
        (Some("application/json"), b"[]".to_vec()),
        (
            Some("application/json"),
            br#"{"email":"x@example.com"}"#.to_vec(),
        ),
        (
            Some("application/json"),
            br#"{"email":1,"password":2}"#.to_vec(),
        ),
    ]
}

async fn signup_unusable_body(t: Target) {
    let s = t.start(&[]);
    for (ct, body) in unusable_bodies() {
        let mut req = s.post("/signup").body(body);
        if let Some(ct) = ct {
            req = req.header(CONTENT_TYPE, ct);
        }
        s.send(req).await.assert_bad_body();
    }
}

// ---------------------------------------------------------------- login

async fn login_token_response(t: Target) {
    let s = t.start(&[]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    let tokens = s.login(&e, PASSWORD).await;
    let expires_in = tokens.body["expires_in"].as_u64().expect("expires_in");
    assert!(
        (270..=330).contains(&expires_in),
        "default access lifetime 300 s ± 10 %: {}",
        tokens.body
    );
    assert_eq!(
        tokens.body["refresh_expires_in"],
        json!(1_209_600),
        "default refresh lifetime: {}",
        tokens.body
    );
    // each login is a new session
    let again = s.login(&e, PASSWORD).await;
    assert_ne!(tokens.sid(), again.sid());
    assert_ne!(tokens.refresh, again.refresh);
}

async fn login_access_token_claims(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let h = header_of(&u.tokens.access);
    assert_eq!(h["typ"], json!("at+jwt"), "access header: {h}");
    assert!(
        h["kid"].as_str().is_some_and(|k| !k.is_empty()),
        "access header without kid: {h}"
    );
    let c = u.tokens.access_claims();
    assert_eq!(c["iss"], json!(ISSUER));
    assert_eq!(c["aud"], json!(AUDIENCE));
    assert_eq!(c["sub"], json!(u.id), "sub is the user id as a string");
    assert!(c["sid"].as_str().is_some_and(|s| !s.is_empty()), "{c}");
    assert!(c["jti"].as_str().is_some_and(|s| !s.is_empty()), "{c}");
    let (iat, exp) = (
        c["iat"].as_u64().expect("iat"),
        c["exp"].as_u64().expect("exp"),
    );
    assert!(iat.abs_diff(now()) <= 60, "iat {iat} is not now");
    assert!(
        (270..=330).contains(&(exp - iat)),
        "exp - iat is the access lifetime, 300 s ± 10 %: {c}"
    );
    assert_eq!(c["email"], json!(u.email));
    assert_eq!(c["roles"], json!([]));
    let rh = header_of(&u.tokens.refresh);
    assert_ne!(
        rh["typ"],
        json!("at+jwt"),
        "the refresh token needs a type of its own: {rh}"
    );
    assert!(
        rh["typ"].as_str().is_some(),
        "refresh header without typ: {rh}"
    );
}

async fn login_failures_are_indistinguishable(t: Target) {
    let s = t.start(&[]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    let wrong = s.login_raw(&e, "not the password at all").await;
    wrong.assert_invalid_credentials();
    let unknown = s
        .login_raw("nobody-here@example.com", "not the password at all")
        .await;
    unknown.assert_invalid_credentials();
    assert_eq!(
        wrong.body, unknown.body,
        "wrong password and unknown email must give identical bodies"
    );
}

async fn login_unusable_body(t: Target) {
    let s = t.start(&[]);
    for (ct, body) in unusable_bodies() {
        let mut req = s.post("/auth/login").body(body);
        if let Some(ct) = ct {
            req = req.header(CONTENT_TYPE, ct);
        }
        s.send(req).await.assert_bad_body();
    }
}

async fn login_lockout(t: Target) {
    let s = t.start(&[
        ("REISSUE_LOGIN_MAX_FAILURES", "2"),
        ("REISSUE_LOGIN_LOCKOUT", "60"),
    ]);
    let e = email();
    let other = email();
    s.signup(&e, PASSWORD).await;
    s.signup(&other, PASSWORD).await;
    for _ in 0..2 {
        s.login_raw(&e, "wrong password!")
            .await
            .assert_invalid_credentials();
    }
    s.login_raw(&e, "wrong password!")
        .await
        .assert_too_many_attempts(60);
    s.login_raw(&e, PASSWORD).await.assert_too_many_attempts(60);
    // the lockout is per account
    s.login(&other, PASSWORD).await;
}

// ---------------------------------------------------------------- protected routes

async fn me_ok(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let r = s.me(&u.tokens.access).await;
    r.assert_status(200).assert_json_type();
    let v = r.json();
    assert_eq!(id_string(&v["id"]), Some(u.id.clone()), "{}", r.text);
    assert_eq!(v["email"], json!(u.email));
    assert_eq!(v["roles"], json!([]));
    assert_eq!(v["sid"], json!(u.tokens.sid()));
}

async fn me_without_token(t: Target) {
    let s = t.start(&[]);
    s.send(s.get("/me")).await.assert_unauthorized();
}

async fn me_other_scheme(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    s.me_with_authorization(b"Basic dXNlcjpwYXNzd29yZA==")
        .await
        .assert_unauthorized();
    s.me_with_authorization(format!("Token {}", u.tokens.access).as_bytes())
        .await
        .assert_unauthorized();
}

async fn me_scheme_case_insensitive(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        s.me_with_authorization(format!("{scheme} {}", u.tokens.access).as_bytes())
            .await
            .assert_status(200);
    }
}

async fn me_malformed_authorization(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let a = &u.tokens.access;
    for value in [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {a} {a}"),
        format!("Bearer {a},{a}"),
        format!("Bearer {}", "a".repeat(9000)),
    ] {
        s.me_with_authorization(value.as_bytes())
            .await
            .assert_bad_authorization();
    }
    s.me_with_authorization("Bearer tök.en.ä".as_bytes())
        .await
        .assert_bad_authorization();
    s.me_with_authorization(b"Bearer abc\xff\xfe")
        .await
        .assert_bad_authorization();
    let two = s
        .get("/me")
        .header(AUTHORIZATION, format!("Bearer {a}"))
        .header(AUTHORIZATION, format!("Bearer {a}"));
    s.send(two).await.assert_bad_authorization();
}

async fn me_bad_signature(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let forged = forge(&access_header(), &claims_of(&u.tokens), OTHER_SECRET);
    s.me(&forged).await.assert_invalid_token();
    // the signature of another token
    let other = s.login(&u.email, PASSWORD).await;
    let mut parts: Vec<&str> = u.tokens.access.split('.').collect();
    parts[2] = other.access.rsplit('.').next().unwrap();
    s.me(&parts.join(".")).await.assert_invalid_token();
}

async fn me_alg_none(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let claims = claims_of(&u.tokens);
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": KID});
        let unsigned = format!("{}.{}.", b64_json(&header), b64_json(&claims));
        s.me(&unsigned).await.assert_invalid_token();
        // with the real signature kept
        let sig = u.tokens.access.rsplit('.').next().unwrap();
        s.me(&format!("{unsigned}{sig}"))
            .await
            .assert_invalid_token();
    }
}

async fn me_alg_not_allowed(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    for alg in ["HS384", "HS512"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": KID});
        s.me(&forge(&header, &claims_of(&u.tokens), TEST_SECRET))
            .await
            .assert_invalid_token();
    }
}

async fn me_tampered_payload(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let claims = with(claims_of(&u.tokens), "roles", json!(["admin"]));
    let parts: Vec<&str> = u.tokens.access.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64_json(&claims), parts[2]);
    s.me(&tampered).await.assert_invalid_token();
}

async fn me_refresh_token_as_access(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    s.me(&u.tokens.refresh).await.assert_invalid_token();
    // and a refresh-typed token with access claims, signed with the real key
    let header = with(
        access_header(),
        "typ",
        header_of(&u.tokens.refresh)["typ"].clone(),
    );
    s.me(&forge(&header, &claims_of(&u.tokens), TEST_SECRET))
        .await
        .assert_invalid_token();
}

async fn me_plain_jwt_typ(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    for header in [
        json!({"alg": "HS256", "typ": "JWT", "kid": KID}),
        json!({"alg": "HS256", "kid": KID}),
    ] {
        s.me(&forge(&header, &claims_of(&u.tokens), TEST_SECRET))
            .await
            .assert_invalid_token();
    }
}

async fn me_expired(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let n = now();
    let claims = with(
        with(claims_of(&u.tokens), "iat", json!(n - 7200)),
        "exp",
        json!(n - 3600),
    );
    s.me(&forge(&access_header(), &claims, TEST_SECRET))
        .await
        .assert_invalid_token();
    // sanity: the same forging with a valid exp is accepted
    let fresh = with(claims_of(&u.tokens), "exp", json!(n + 600));
    s.me(&forge(&access_header(), &fresh, TEST_SECRET))
        .await
        .assert_status(200);
}

async fn me_not_yet_valid(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let claims = with(claims_of(&u.tokens), "nbf", json!(now() + 3600));
    s.me(&forge(&access_header(), &claims, TEST_SECRET))
        .await
        .assert_invalid_token();
}

async fn me_wrong_issuer(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    for iss in [json!("https://evil.example"), Value::Null] {
        let claims = with(claims_of(&u.tokens), "iss", iss);
        s.me(&forge(&access_header(), &claims, TEST_SECRET))
            .await
            .assert_invalid_token();
    }
}

async fn me_wrong_audience(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    for aud in [json!("another-api"), json!(["another-api"]), Value::Null] {
        let claims = with(claims_of(&u.tokens), "aud", aud);
        s.me(&forge(&access_header(), &claims, TEST_SECRET))
            .await
            .assert_invalid_token();
    }
}

async fn me_unknown_kid(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let header = with(access_header(), "kid", json!("some-other-key"));
    s.me(&forge(&header, &claims_of(&u.tokens), TEST_SECRET))
        .await
        .assert_invalid_token();
    let no_kid = json!({"alg": "HS256", "typ": "at+jwt"});
    s.me(&forge(&no_kid, &claims_of(&u.tokens), TEST_SECRET))
        .await
        .assert_invalid_token();
}

async fn me_foreign_jku(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let claims = claims_of(&u.tokens);
    let jku = json!({"alg": "HS256", "typ": "at+jwt", "kid": "attacker", "jku": "https://attacker.example/jwks.json"});
    s.me(&forge(&jku, &claims, OTHER_SECRET))
        .await
        .assert_invalid_token();
    let jku_real_kid = with(
        access_header(),
        "jku",
        json!("https://attacker.example/jwks.json"),
    );
    s.me(&forge(&jku_real_kid, &claims, OTHER_SECRET))
        .await
        .assert_invalid_token();
    let embedded = with(
        access_header(),
        "jwk",
        json!({"kty": "oct", "kid": KID, "k": base64_url(OTHER_SECRET.as_bytes())}),
    );
    s.me(&forge(&embedded, &claims, OTHER_SECRET))
        .await
        .assert_invalid_token();
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn me_malformed_jwt(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let parts: Vec<&str> = u.tokens.access.split('.').collect();
    for token in [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        "...".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.bm90IGpzb24.{}", parts[0], parts[2]),
        format!("eyJub3QiOiJhIGhlYWRlciJ9.{}.{}", parts[1], parts[2]),
    ] {
        s.me(&token).await.assert_invalid_token();
    }
}

// ---------------------------------------------------------------- reissue

async fn reissue_bearer(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let new = s.reissue(&u.tokens.refresh).await.tokens();
    assert_ne!(new.access, u.tokens.access);
    assert_ne!(new.refresh, u.tokens.refresh);
    assert_eq!(new.sid(), u.tokens.sid(), "a reissue keeps the session");
    assert_eq!(new.access_claims()["sub"], json!(u.id));
    let c = new.access_claims();
    assert_eq!(
        new.body["expires_in"].as_u64(),
        c["exp"].as_u64().zip(c["iat"].as_u64()).map(|(e, i)| e - i),
        "expires_in is the token's own lifetime"
    );
    s.me(&new.access).await.assert_status(200);
    s.reissue(&new.refresh).await.tokens();
}

async fn reissue_json_body(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let new = s.reissue_json(&u.tokens.refresh).await.tokens();
    assert_ne!(new.access, u.tokens.access);
    assert_ne!(new.refresh, u.tokens.refresh);
}

async fn reissue_unusable_body(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let rt = u.tokens.refresh.clone();
    s.send(s.post("/auth/reissue")).await.assert_unauthorized();
    for (ct, body) in [
        (Some("text/plain"), json!({"refresh_token": rt}).to_string()),
        (
            Some("application/x-www-form-urlencoded"),
            format!("refresh_token={rt}"),
        ),
        (Some("application/json"), "{\"refresh_token\":".to_owned()),
        (Some("application/json"), "{\"refresh\":\"x\"}".to_owned()),
        (
            Some("application/json"),
            "{\"refresh_token\":42}".to_owned(),
        ),
    ] {
        let mut req = s.post("/auth/reissue").body(body);
        if let Some(ct) = ct {
            req = req.header(CONTENT_TYPE, ct);
        }
        s.send(req).await.assert_bad_body();
    }
    // none of that spent the token
    s.reissue(&rt).await.tokens();
}

async fn reissue_access_token_refused(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    s.reissue(&u.tokens.access).await.assert_invalid_token();
    s.reissue_json(&u.tokens.access)
        .await
        .assert_invalid_token();
    // nor an access-typed token with refresh claims
    let refresh_claims = payload_of(&u.tokens.refresh);
    s.reissue(&forge(&access_header(), &refresh_claims, TEST_SECRET))
        .await
        .assert_invalid_token();
    s.reissue(&u.tokens.refresh).await.tokens();
}

async fn reissue_forged_refresh_tokens(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let header = header_of(&u.tokens.refresh);
    let claims = payload_of(&u.tokens.refresh);
    s.reissue(&forge(&header, &claims, OTHER_SECRET))
        .await
        .assert_invalid_token();
    let alg_none = format!(
        "{}.{}.",
        b64_json(&with(header.clone(), "alg", json!("none"))),
        b64_json(&claims)
    );
    s.reissue(&alg_none).await.assert_invalid_token();
    let n = now();
    let expired = with(
        with(claims.clone(), "iat", json!(n - 7200)),
        "exp",
        json!(n - 3600),
    );
    s.reissue(&forge(&header, &expired, TEST_SECRET))
        .await
        .assert_invalid_token();
    s.reissue(&forge(
        &header,
        &with(claims.clone(), "aud", json!("x")),
        TEST_SECRET,
    ))
    .await
    .assert_invalid_token();
    s.reissue("garbage").await.assert_invalid_token();
    s.reissue(&u.tokens.refresh).await.tokens();
}

async fn reissue_grace_window_same_token(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let first = s.reissue(&u.tokens.refresh).await.tokens();
    let second = s.reissue(&u.tokens.refresh).await.tokens();
    assert_eq!(
        second.refresh, first.refresh,
        "within the grace window the same new refresh token"
    );
    let third = s.reissue_json(&u.tokens.refresh).await.tokens();
    assert_eq!(third.refresh, first.refresh);
    assert_eq!(second.sid(), u.tokens.sid(), "the session does not fork");
    // not revoked: the successor works
    s.reissue(&first.refresh).await.tokens();
}

async fn reissue_concurrent(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let rt = u.tokens.refresh.clone();
    let all = join_all((0..10).map(|_| s.reissue(&rt))).await;
    let tokens: Vec<Tokens> = all.iter().map(Resp::tokens).collect();
    for t in &tokens {
        assert_eq!(
            t.refresh, tokens[0].refresh,
            "concurrent reissues must all get one refresh token"
        );
    }
    s.reissue(&tokens[0].refresh).await.tokens();
    let sessions = s.sessions(&tokens[0].access).await;
    assert_eq!(sessions.len(), 1, "the session did not fork: {sessions:?}");
}

async fn reissue_reuse_after_grace(t: Target) {
    let s = t.start(&[("REISSUE_REUSE_GRACE", "1")]);
    let u = s.user().await;
    let next = s.reissue(&u.tokens.refresh).await.tokens();
    assert_eq!(
        s.reissue(&u.tokens.refresh).await.tokens().refresh,
        next.refresh,
        "within the 1 s window"
    );
    sleep(2.1).await;
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    s.reissue(&next.refresh).await.assert_invalid_token();
    // other sessions of the user are untouched
    s.login(&u.email, PASSWORD).await;
}

/// Replay until the successor is used (FAPI 2.0): with the default (no
/// cap), a retry long after the former 10 s window gets the same successor.
/// The longer delays (30 s to 2 h) are shown on the stores with an
/// injected clock (`reissue-core --test store`, `replay_until_used_*`).
async fn reissue_replay_until_successor_used(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let next = s.reissue(&u.tokens.refresh).await.tokens();
    sleep(11.0).await;
    let again = s.reissue(&u.tokens.refresh).await.tokens();
    assert_eq!(again.sid(), next.sid(), "the same session");
    assert_eq!(
        payload_of(&again.refresh)["gen"],
        payload_of(&next.refresh)["gen"],
        "the same successor (generation)"
    );
    assert_eq!(again.refresh, next.refresh, "HS256 signs deterministically");
    // not revoked, not forked: the successor rotates once
    let after = s.reissue(&next.refresh).await.tokens();
    assert_eq!(s.sessions(&after.access).await.len(), 1);
}

/// Once the successor has been presented, the predecessor is reuse: 401 and
/// the whole session revoked, its current token too.
async fn reissue_predecessor_after_successor_used(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let other = s.login(&u.email, PASSWORD).await;
    let next = s.reissue(&u.tokens.refresh).await.tokens();
    let current = s.reissue(&next.refresh).await.tokens();
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    s.reissue(&current.refresh).await.assert_invalid_token();
    s.me(&current.access).await.assert_invalid_token();
    // the user's other session is untouched
    s.reissue(&other.refresh).await.tokens();
}

/// A retry racing the successor's first use: whichever the store sees
/// first decides, and there is exactly one outcome, never a fork. Either
/// the replay came first (both 200, the same successor, then the session
/// goes on from the rotated one), or the rotation came first (the retry is
/// reuse: 401 and the session revoked, the rotation's pair with it).
async fn reissue_replay_racing_successor(t: Target) {
    let s = t.start(&[]);
    for _ in 0..8 {
        let u = s.user().await;
        let next = s.reissue(&u.tokens.refresh).await.tokens();
        let (retry, rotate) = tokio::join!(s.reissue(&u.tokens.refresh), s.reissue(&next.refresh));
        let rotated = rotate.tokens();
        match retry.status {
            200 => {
                assert_eq!(retry.tokens().refresh, next.refresh, "the same successor");
                let on = s.reissue(&rotated.refresh).await.tokens();
                assert_eq!(s.sessions(&on.access).await.len(), 1, "no fork");
            }
            401 => {
                retry.assert_invalid_token();
                s.reissue(&rotated.refresh).await.assert_invalid_token();
            }
            other => panic!("a racing retry got {other}: {}", retry.text),
        }
    }
}

/// RFC 9068 claims: `client_id` (default the audience), `auth_time` (the
/// login's, the same across rotations and replays) and `amr` (`["pwd"]`).
async fn access_claims_rfc9068(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let c = u.tokens.access_claims();
    assert_eq!(c["client_id"], json!(AUDIENCE), "{c}");
    assert_eq!(c["amr"], json!(["pwd"]), "{c}");
    let auth_time = c["auth_time"].as_u64().expect("auth_time");
    assert!(auth_time <= c["iat"].as_u64().unwrap() && auth_time.abs_diff(now()) <= 60);
    sleep(1.1).await;
    let next = s.reissue(&u.tokens.refresh).await.tokens();
    let replay = s.reissue(&u.tokens.refresh).await.tokens();
    let later = s.reissue(&next.refresh).await.tokens();
    for t in [&next, &replay, &later] {
        let c = t.access_claims();
        assert_eq!(
            c["auth_time"],
            json!(auth_time),
            "auth_time stays the login's: {c}"
        );
        assert_eq!(c["amr"], json!(["pwd"]), "{c}");
        assert_eq!(c["client_id"], json!(AUDIENCE), "{c}");
    }
    assert!(later.access_claims()["iat"].as_u64().unwrap() > auth_time);
}

async fn access_claims_client_id_variable(t: Target) {
    let s = t.start(&[("REISSUE_CLIENT_ID", "mobile-app")]);
    let u = s.user().await;
    assert_eq!(u.tokens.access_claims()["client_id"], json!("mobile-app"));
    let next = s.reissue(&u.tokens.refresh).await.tokens();
    assert_eq!(next.access_claims()["client_id"], json!("mobile-app"));
}

/// Tokens minted before the new claims (no `client_id`, `auth_time`,
/// `amr`) still verify until they expire, and a refresh token without them
/// still rotates (its successors then carry no `auth_time` either: nothing
/// to carry on).
async fn tokens_without_new_claims_still_verify(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let strip = |mut v: Value| {
        for k in ["client_id", "auth_time", "amr"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let access = forge(
        &header_of(&u.tokens.access),
        &strip(u.tokens.access_claims()),
        TEST_SECRET,
    );
    s.me(&access).await.assert_status(200);
    let refresh = forge(
        &header_of(&u.tokens.refresh),
        &strip(payload_of(&u.tokens.refresh)),
        TEST_SECRET,
    );
    let next = s.reissue(&refresh).await.tokens();
    let c = next.access_claims();
    assert_eq!(c["client_id"], json!(AUDIENCE), "{c}");
    assert!(c.get("auth_time").is_none(), "{c}");
    s.me(&next.access).await.assert_status(200);
}

/// Jitter (default ±10 %): lifetimes vary between logins, and `expires_in`
/// is each token's `exp - iat`.
async fn expires_in_is_each_tokens_own(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..12 {
        let t = s
            .reissue(&s.login(&u.email, PASSWORD).await.refresh)
            .await
            .tokens();
        let c = t.access_claims();
        let life = c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap();
        assert_eq!(
            t.body["expires_in"],
            json!(life),
            "expires_in is the token's own: {c}"
        );
        assert!((270..=330).contains(&life), "300 s ± 10 %: {life}");
        seen.insert(life);
    }
    // 12 draws from 61 values all equal: odds below 1e-19
    assert!(seen.len() > 1, "lifetimes vary: {seen:?}");
}

async fn access_ttl_jitter_off(t: Target) {
    let s = t.start(&[("REISSUE_ACCESS_TTL_JITTER", "0")]);
    let u = s.user().await;
    for _ in 0..4 {
        let t = s.login(&u.email, PASSWORD).await;
        assert_eq!(t.body["expires_in"], json!(300), "{}", t.body);
    }
}

async fn reissue_reuse_strict_grace(t: Target) {
    let s = t.start(&[("REISSUE_REUSE_GRACE", "0")]);
    let u = s.user().await;
    let other = s.login(&u.email, PASSWORD).await;
    let next = s.reissue(&u.tokens.refresh).await.tokens();
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    s.reissue(&next.refresh).await.assert_invalid_token();
    s.reissue(&other.refresh).await.tokens();
}

async fn reissue_older_generation(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let g2 = s.reissue(&u.tokens.refresh).await.tokens();
    let g3 = s.reissue(&g2.refresh).await.tokens();
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    s.reissue(&g3.refresh).await.assert_invalid_token();
    s.reissue(&g2.refresh).await.assert_invalid_token();
}

async fn reissue_after_logout(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    s.post_auth("/auth/logout", &u.tokens.access)
        .await
        .assert_no_content();
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    s.reissue_json(&u.tokens.refresh)
        .await
        .assert_invalid_token();
}

async fn session_absolute_lifetime(t: Target) {
    let s = t.start(&[("REISSUE_SESSION_MAX_AGE", "2")]);
    let u = s.user().await;
    let start = Instant::now();
    sleep(0.9).await;
    let next = s.reissue(&u.tokens.refresh).await.tokens();
    let until = Duration::from_millis(3100).saturating_sub(start.elapsed());
    tokio::time::sleep(until).await;
    s.reissue(&next.refresh).await.assert_invalid_token();
}

async fn session_idle_lifetime(t: Target) {
    // The grace window may not exceed the idle lifetime.
    let s = t.start(&[("REISSUE_REFRESH_TTL", "1"), ("REISSUE_REUSE_GRACE", "1")]);
    let u = s.user().await;
    sleep(2.2).await;
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
}

async fn session_idle_renewed_by_reissue(t: Target) {
    let s = t.start(&[("REISSUE_REFRESH_TTL", "2"), ("REISSUE_REUSE_GRACE", "1")]);
    let u = s.user().await;
    let mut rt = u.tokens.refresh.clone();
    for _ in 0..3 {
        sleep(0.8).await;
        rt = s.reissue(&rt).await.tokens().refresh;
    }
}

// ---------------------------------------------------------------- logout

async fn logout_with_access_token(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let other = s.login(&u.email, PASSWORD).await;
    s.post_auth("/auth/logout", &u.tokens.access)
        .await
        .assert_no_content();
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    s.post_auth("/auth/logout", &u.tokens.access)
        .await
        .assert_no_content();
    // only that session ended
    s.reissue(&other.refresh).await.tokens();
    s.send(s.post("/auth/logout")).await.assert_unauthorized();
}

async fn logout_with_refresh_json(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let r = s
        .send(
            s.post("/auth/logout")
                .json(&json!({"refresh_token": u.tokens.refresh})),
        )
        .await;
    r.assert_no_content();
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    let again = s
        .send(
            s.post("/auth/logout")
                .json(&json!({"refresh_token": u.tokens.refresh})),
        )
        .await;
    again.assert_no_content();
}

async fn reauthenticate(s: &TestServer, access: &str, email: &str, password: &str) -> Resp {
    s.send(
        s.post("/auth/reauthenticate")
            .bearer_auth(access)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

async fn reauthenticate_same_session_fresh_auth_time(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let before = u.tokens.access_claims();
    sleep(1.1).await;
    let again = reauthenticate(&s, &u.tokens.access, &u.email, PASSWORD)
        .await
        .tokens();
    let after = again.access_claims();
    assert_eq!(after["sid"], before["sid"], "the session is kept");
    assert!(
        after["auth_time"].as_u64().unwrap() > before["auth_time"].as_u64().unwrap(),
        "auth_time renewed: {before} -> {after}"
    );
    // The new refresh token works and keeps the new auth_time.
    let rotated = s.reissue(&again.refresh).await.tokens();
    assert_eq!(rotated.access_claims()["auth_time"], after["auth_time"]);
    assert_eq!(s.sessions(&rotated.access).await.len(), 1);
}

async fn reauthenticate_wrong_password_counts(t: Target) {
    let s = t.start(&[("REISSUE_LOGIN_MAX_FAILURES", "2")]);
    let u = s.user().await;
    for _ in 0..2 {
        reauthenticate(&s, &u.tokens.access, &u.email, "wrong-password")
            .await
            .assert_error(401, "invalid_credentials");
    }
    // Past the limit, even the right password is throttled, at login too.
    reauthenticate(&s, &u.tokens.access, &u.email, PASSWORD)
        .await
        .assert_error(429, "too_many_attempts");
    s.login_raw(&u.email, PASSWORD)
        .await
        .assert_error(429, "too_many_attempts");
    // Another account's (right) password proves nothing about this session.
    let other = s.user().await;
    reauthenticate(&s, &u.tokens.access, &other.email, PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
}

async fn reauthenticate_racing_logout(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let (reauth, logout) = tokio::join!(
        reauthenticate(&s, &u.tokens.access, &u.email, PASSWORD),
        s.post_auth("/auth/logout", &u.tokens.access)
    );
    logout.assert_no_content();
    // Whichever came first, the session is over: a pair the reauthenticate
    // answered cannot revive it.
    if reauth.status == 200 {
        let pair = reauth.tokens();
        s.reissue(&pair.refresh).await.assert_invalid_token();
        s.me(&pair.access).await.assert_invalid_token();
    } else {
        reauth.assert_invalid_token();
    }
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
}

async fn step_up_stale_auth_time_challenge(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let body = json!({"current_password": PASSWORD, "new_password": "another-password-1"});
    for stale in [
        with(claims_of(&u.tokens), "auth_time", json!(now() - 301)),
        // A token minted before auth_time existed is not recent either.
        without(claims_of(&u.tokens), "auth_time"),
    ] {
        let token = forge(&access_header(), &stale, TEST_SECRET);
        s.me(&token).await.assert_status(200);
        s.send(s.post("/account/password").bearer_auth(&token).json(&body))
            .await
            .assert_error(401, "insufficient_user_authentication")
            .assert_www(Some(
                "Bearer realm=\"reissue\", error=\"insufficient_user_authentication\", max_age=300",
            ));
    }
    // The password is unchanged.
    s.login(&u.email, PASSWORD).await;
}

async fn auth_time_in_future_refused(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let future = with(claims_of(&u.tokens), "auth_time", json!(now() + 3600));
    s.me(&forge(&access_header(), &future, TEST_SECRET))
        .await
        .assert_invalid_token();
}

async fn password_change_ends_other_sessions(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let other = s.login(&u.email, PASSWORD).await;
    let change = |current: &str, new: &str| {
        s.post("/account/password")
            .bearer_auth(&u.tokens.access)
            .json(&json!({"current_password": current, "new_password": new}))
    };
    s.send(change("wrong-password", "another-password-1"))
        .await
        .assert_error(401, "invalid_credentials");
    s.send(change(PASSWORD, "short"))
        .await
        .assert_error(400, "invalid_request");
    s.send(change(PASSWORD, "another-password-1"))
        .await
        .assert_no_content();
    // The other session is over at once, its access token too.
    s.me(&other.access).await.assert_invalid_token();
    s.reissue(&other.refresh).await.assert_invalid_token();
    // The caller's goes on.
    s.me(&u.tokens.access).await.assert_status(200);
    s.reissue(&u.tokens.refresh).await.tokens();
    s.login_raw(&u.email, PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    s.login(&u.email, "another-password-1").await;
}

async fn logout_all(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let second = s.login(&u.email, PASSWORD).await;
    let rotated = s.reissue(&second.refresh).await.tokens();
    let bystander = s.user().await;
    s.post_auth("/auth/logout-all", &u.tokens.access)
        .await
        .assert_no_content();
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    s.reissue(&rotated.refresh).await.assert_invalid_token();
    s.reissue(&bystander.tokens.refresh).await.tokens();
    s.send(s.post("/auth/logout-all"))
        .await
        .assert_unauthorized();
    s.post_auth("/auth/logout-all", &u.tokens.refresh)
        .await
        .assert_invalid_token();
}

async fn logout_stateless_access_keeps_working(t: Target) {
    let s = t.start(&[("REISSUE_REVOCATION", "stateless")]);
    let u = s.user().await;
    s.post_auth("/auth/logout", &u.tokens.access)
        .await
        .assert_no_content();
    s.me(&u.tokens.access).await.assert_status(200);
}

async fn logout_strict_mode(t: Target) {
    let s = t.start(&[("REISSUE_STRICT_REVOCATION", "1")]);
    let u = s.user().await;
    let other = s.login(&u.email, PASSWORD).await;
    s.me(&u.tokens.access).await.assert_status(200);
    s.post_auth("/auth/logout", &u.tokens.access)
        .await
        .assert_no_content();
    s.me(&u.tokens.access).await.assert_invalid_token();
    s.me(&other.access).await.assert_status(200);
    s.post_auth("/auth/logout-all", &other.access)
        .await
        .assert_no_content();
    s.me(&other.access).await.assert_invalid_token();
    s.get_auth("/auth/sessions", &other.access)
        .await
        .assert_invalid_token();
}

// ---------------------------------------------------------------- sessions

async fn sessions_list(t: Target) {
    let s = t.start(&[]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    let one = s
        .login_with(&e, PASSWORD, &[("user-agent", "conformance-one/1.0")])
        .await
        .tokens();
    let two = s
        .login_with(&e, PASSWORD, &[("user-agent", "conformance-two/2.0 (X11)")])
        .await
        .tokens();
    let list = s.sessions(&two.access).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let n = now();
    for (tokens, ua, current) in [
        (&one, "conformance-one/1.0", false),
        (&two, "conformance-two/2.0 (X11)", true),
    ] {
        let sid = tokens.sid();
        let v = list
            .iter()
            .find(|v| v["sid"] == json!(sid))
            .unwrap_or_else(|| panic!("session {sid} not listed: {list:?}"));
        let created = v["created_at"]
            .as_u64()
            .unwrap_or_else(|| panic!("created_at: {v}"));
        let used = v["last_used_at"]
            .as_u64()
            .unwrap_or_else(|| panic!("last_used_at: {v}"));
        assert!(
            created.abs_diff(n) <= 60 && used.abs_diff(n) <= 60 && created <= used,
            "{v}"
        );
        assert_eq!(v["ip"], json!("127.0.0.1"), "{v}");
        assert!(
            v.get("country").is_some_and(Value::is_null),
            "country null without GeoIP: {v}"
        );
        assert_eq!(v["user_agent"], json!(ua), "{v}");
        assert_eq!(v["current"], json!(current), "{v}");
    }
    assert_eq!(
        list.iter().filter(|v| v["current"] == json!(true)).count(),
        1
    );
    let from_one = s.sessions(&one.access).await;
    let cur: Vec<&Value> = from_one
        .iter()
        .filter(|v| v["current"] == json!(true))
        .collect();
    assert_eq!(cur.len(), 1);
    assert_eq!(cur[0]["sid"], json!(one.sid()));
    s.send(s.get("/auth/sessions")).await.assert_unauthorized();
}

async fn sessions_delete(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let two = s.login(&u.email, PASSWORD).await;
    let sid = u.tokens.sid();
    s.send(
        s.delete(&format!("/auth/sessions/{sid}"))
            .bearer_auth(&two.access),
    )
    .await
    .assert_no_content();
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    let list = s.sessions(&two.access).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["sid"], json!(two.sid()));
    s.send(
        s.delete(&format!("/auth/sessions/{sid}"))
            .bearer_auth(&two.access),
    )
    .await
    .assert_not_found();
    // deleting one's own current session ends it too
    let own = two.sid();
    s.send(
        s.delete(&format!("/auth/sessions/{own}"))
            .bearer_auth(&two.access),
    )
    .await
    .assert_no_content();
    s.reissue(&two.refresh).await.assert_invalid_token();
}

async fn sessions_delete_not_found(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let victim = s.user().await;
    let theirs = victim.tokens.sid();
    let r = s
        .send(
            s.delete(&format!("/auth/sessions/{theirs}"))
                .bearer_auth(&u.tokens.access),
        )
        .await;
    r.assert_not_found();
    s.reissue(&victim.tokens.refresh).await.tokens();
    for sid in [
        "AAAAAAAAAAAAAAAAAAAAAA",
        "garbage",
        "not%20a%20sid",
        "..%2F..%2Fetc",
        "a*",
        // not UTF-8 once percent-decoded
        "%FF",
    ] {
        let r = s
            .send(
                s.delete(&format!("/auth/sessions/{sid}"))
                    .bearer_auth(&u.tokens.access),
            )
            .await;
        r.assert_not_found();
    }
    s.send(s.delete(&format!("/auth/sessions/{theirs}")))
        .await
        .assert_unauthorized();
}

async fn jwks_hmac_only(t: Target) {
    let s = t.start(&[]);
    s.send(s.get("/auth/jwks.json")).await.assert_not_found();
}

// ---------------------------------------------------------------- admin

async fn admin_forced_logout(t: Target) {
    let s = t.start(&[(
        "REISSUE_ADMIN_EMAILS",
        "admin@example.com, squatter@example.com",
    )]);
    // Signing up with a listed address proves nothing: no admin (issue 25.13).
    let squatter = s.user_named("squatter@example.com").await;
    assert_eq!(squatter.tokens.access_claims()["roles"], json!([]));
    let path = format!("/admin/users/{}/logout", squatter.id);
    s.post_auth(&path, &squatter.tokens.access)
        .await
        .assert_insufficient_scope();
    // The admin CLI vouched for this one: admin from its next login.
    let admin = s.vouched_user_named("admin@example.com").await;
    assert_eq!(admin.tokens.access_claims()["roles"], json!(["admin"]));
    let me = s.me(&admin.tokens.access).await;
    assert_eq!(me.json()["roles"], json!(["admin"]), "{}", me.text);
    let target = s.user().await;
    let target2 = s.login(&target.email, PASSWORD).await;
    let mallory = s.user().await;
    let path = format!("/admin/users/{}/logout", target.id);
    s.post_auth(&path, &mallory.tokens.access)
        .await
        .assert_insufficient_scope();
    s.post_auth(&path, &target.tokens.access)
        .await
        .assert_insufficient_scope();
    s.send(s.post(&path)).await.assert_unauthorized();
    s.reissue(&target.tokens.refresh).await.tokens();
    // the reissue above spent the first token; log in again for a live one
    let target3 = s.login(&target.email, PASSWORD).await;
    s.post_auth(&path, &admin.tokens.access)
        .await
        .assert_no_content();
    s.reissue(&target2.refresh).await.assert_invalid_token();
    s.reissue(&target3.refresh).await.assert_invalid_token();
    // the admin's claims travel on through reissues (in the refresh token)
    let next = s.reissue(&admin.tokens.refresh).await.tokens();
    let next = s.reissue(&next.refresh).await.tokens();
    assert_eq!(next.access_claims()["roles"], json!(["admin"]));
    assert_eq!(next.access_claims()["email"], json!("admin@example.com"));
    s.reissue(&mallory.tokens.refresh).await.tokens();
}

// ---------------------------------------------------------------- client address

async fn session_ip(s: &TestServer, xff: Option<&str>) -> Value {
    let e = email();
    s.signup(&e, PASSWORD).await;
    let headers: Vec<(&str, &str)> = xff.map(|v| ("x-forwarded-for", v)).into_iter().collect();
    let tokens = s.login_with(&e, PASSWORD, &headers).await.tokens();
    let list = s.sessions(&tokens.access).await;
    assert_eq!(list.len(), 1, "{list:?}");
    list[0]["ip"].clone()
}

async fn client_address_trusted_proxy(t: Target) {
    let s = t.start(&[("REISSUE_TRUSTED_PROXIES", "127.0.0.1/32")]);
    assert_eq!(
        session_ip(&s, Some("203.0.113.9")).await,
        json!("203.0.113.9")
    );
    assert_eq!(session_ip(&s, None).await, json!("127.0.0.1"));
    assert_eq!(
        session_ip(&s, Some("203.0.113.9, 127.0.0.1")).await,
        json!("203.0.113.9")
    );
}

async fn client_address_untrusted_peer(t: Target) {
    let s = t.start(&[]);
    assert_eq!(
        session_ip(&s, Some("203.0.113.9")).await,
        json!("127.0.0.1")
    );
}

async fn client_address_spoofed_chain(t: Target) {
    let s = t.start(&[("REISSUE_TRUSTED_PROXIES", "127.0.0.1/32")]);
    assert_eq!(
        session_ip(&s, Some("1.1.1.1, 203.0.113.9")).await,
        json!("203.0.113.9")
    );
    assert_eq!(
        session_ip(&s, Some("1.1.1.1,203.0.113.9")).await,
        json!("203.0.113.9")
    );
}

// ---------------------------------------------------------------- country policy

const GB: &str = "81.2.69.142";
const US: &str = "216.160.83.56";
const SE: &str = "89.160.20.112";
const JP6: &str = "2001:218::1";

fn country_server(t: Target, trusted: bool) -> TestServer {
    assert!(
        std::path::Path::new(GEOIP_DB).exists(),
        "the test GeoIP database is missing: {GEOIP_DB}"
    );
    let mut env = vec![
        ("REISSUE_GEOIP_DB", GEOIP_DB),
        ("REISSUE_ALLOWED_COUNTRIES", "SE,GB"),
    ];
    if trusted {
        env.push(("REISSUE_TRUSTED_PROXIES", "127.0.0.1/32"));
    }
    t.start(&env)
}

async fn country_login(t: Target) {
    let s = country_server(t, true);
    let e = email();
    s.signup(&e, PASSWORD).await;
    s.login_with(&e, PASSWORD, &[("x-forwarded-for", US)])
        .await
        .assert_access_denied();
    let gb = s
        .login_with(&e, PASSWORD, &[("x-forwarded-for", GB)])
        .await
        .tokens();
    let list = s.sessions(&gb.access).await;
    assert_eq!(
        list.len(),
        1,
        "the refused login created no session: {list:?}"
    );
    assert_eq!(list[0]["country"], json!("GB"), "{list:?}");
    assert_eq!(list[0]["ip"], json!(GB), "{list:?}");
    s.login_with(&e, PASSWORD, &[("x-forwarded-for", SE)])
        .await
        .tokens();
    // unknown to the database: allowed
    let local = s.login_raw(&e, PASSWORD).await.tokens();
    let list = s.sessions(&local.access).await;
    let me = list
        .iter()
        .find(|v| v["current"] == json!(true))
        .expect("current");
    assert_eq!(me["ip"], json!("127.0.0.1"));
    assert!(me["country"].is_null(), "{me}");
}

async fn country_reissue_revokes(t: Target) {
    let s = country_server(t, true);
    let e = email();
    s.signup(&e, PASSWORD).await;
    let gb = s
        .login_with(&e, PASSWORD, &[("x-forwarded-for", GB)])
        .await
        .tokens();
    let other = s
        .login_with(&e, PASSWORD, &[("x-forwarded-for", GB)])
        .await
        .tokens();
    let next = s
        .reissue_with(&gb.refresh, &[("x-forwarded-for", GB)])
        .await
        .tokens();
    s.reissue_with(&next.refresh, &[("x-forwarded-for", US)])
        .await
        .assert_access_denied();
    s.reissue_with(&next.refresh, &[("x-forwarded-for", GB)])
        .await
        .assert_invalid_token();
    s.reissue(&next.refresh).await.assert_invalid_token();
    // the other session of the user is not this one
    s.reissue_with(&other.refresh, &[("x-forwarded-for", GB)])
        .await
        .tokens();
}

async fn country_ipv6(t: Target) {
    let s = country_server(t, true);
    let e = email();
    s.signup(&e, PASSWORD).await;
    s.login_with(&e, PASSWORD, &[("x-forwarded-for", JP6)])
        .await
        .assert_access_denied();
    let gb = s
        .login_with(&e, PASSWORD, &[("x-forwarded-for", GB)])
        .await
        .tokens();
    s.reissue_with(&gb.refresh, &[("x-forwarded-for", JP6)])
        .await
        .assert_access_denied();
    s.reissue(&gb.refresh).await.assert_invalid_token();
}

async fn country_untrusted_proxy(t: Target) {
    let s = country_server(t, false);
    let e = email();
    s.signup(&e, PASSWORD).await;
    let tokens = s
        .login_with(&e, PASSWORD, &[("x-forwarded-for", US)])
        .await
        .tokens();
    let list = s.sessions(&tokens.access).await;
    assert_eq!(list[0]["ip"], json!("127.0.0.1"), "{list:?}");
    s.reissue_with(&tokens.refresh, &[("x-forwarded-for", US)])
        .await
        .tokens();
}

// ---------------------------------------------------------------- Redis down

async fn redis_down_reissue_503(t: Target) {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let s = t.start(&[("REDIS_URL", url.as_str())]);
    let u = s.user().await;
    let e = u.email.clone();
    redis.kill();
    let r = s.reissue(&u.tokens.refresh).await;
    r.assert_unavailable();
    assert!(
        r.elapsed < Duration::from_secs(5),
        "503 took {:?}",
        r.elapsed
    );
    let r = s.login_raw(&e, PASSWORD).await;
    r.assert_unavailable();
    assert!(
        r.elapsed < Duration::from_secs(5),
        "503 took {:?}",
        r.elapsed
    );
    // stateless access tokens need no store
    s.me(&u.tokens.access).await.assert_status(200);
}

async fn redis_down_strict_protected_503(t: Target) {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let s = t.start(&[
        ("REDIS_URL", url.as_str()),
        ("REISSUE_STRICT_REVOCATION", "1"),
    ]);
    let u = s.user().await;
    s.me(&u.tokens.access).await.assert_status(200);
    redis.kill();
    // While its lease holds the instance is sure (no logout can return
    // without it, and none can with the store down); once the lease lapses
    // (at once when its feed sees the connection go, at the latest one lease
    // later) it cannot be, and answers 503.
    let started = Instant::now();
    loop {
        let r = s.me(&u.tokens.access).await;
        if r.status == 503 {
            r.assert_unavailable();
            break;
        }
        r.assert_status(200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still 200 {:?} after the store went away",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = s.me(&u.tokens.access).await;
    r.assert_unavailable();
    assert!(
        r.elapsed < Duration::from_secs(5),
        "503 took {:?}",
        r.elapsed
    );
}

// ---------------------------------------------------------------- fuzz

async fn bad_input_never_500(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let endpoints = fuzz_endpoints(&u);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        b"\"str\"".to_vec(),
        br#"{"email":1,"password":[]}"#.to_vec(),
        br#"{"email":"a@b.c","password":null}"#.to_vec(),
        br#"{"refresh_token":""}"#.to_vec(),
        br#"{"refresh_token":"a.b.c"}"#.to_vec(),
        br#"{"refresh_token":{"nested":true}}"#.to_vec(),
        format!(r#"{{"refresh_token":"{}"}}"#, "A".repeat(20_000)).into_bytes(),
        format!(
            r#"{{"email":"{}@x.io","password":"{}"}}"#,
            "e".repeat(5000),
            "p".repeat(15_000)
        )
        .into_bytes(),
        deep.into_bytes(),
        b"\xff\xfe\x00\x01".to_vec(),
        b"{\"email\":\"\\ud800\",\"password\":\"\\u0000\\u0000\\u0000\\u0000\"}".to_vec(),
    ];
    let content_types: Vec<Option<&str>> = vec![
        None,
        Some("application/json"),
        Some("application/json; charset=utf-16"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        Some("application/x-www-form-urlencoded"),
        Some("???"),
    ];
    let auths: Vec<Option<Vec<u8>>> = vec![
        None,
        Some(b"Bearer".to_vec()),
        Some(b"Bearer a.b.c".to_vec()),
        Some(b"Bearer \xc3\xa4\xc3\xb6".to_vec()),
        Some(b"Basic Og==".to_vec()),
        Some(b"Bearer ,,,,".to_vec()),
        Some(b"Bearer =====".to_vec()),
        Some(format!("Bearer {}", "x".repeat(20_000)).into_bytes()),
        Some(b"bearer".to_vec()),
        Some(b"Negotiate".to_vec()),
        Some(b"Bearer \"quoted\"".to_vec()),
    ];
    let odd_headers: Vec<(&str, &[u8])> = vec![
        ("x-forwarded-for", b"not-an-ip, ::::, 999.1.1.1"),
        ("x-forwarded-for", b""),
        ("user-agent", b"\xff\xfe"),
    ];
    for (method, path) in &endpoints {
        let mut cases: Vec<reqwest::RequestBuilder> = Vec::new();
        for body in &bodies {
            for ct in &content_types {
                let mut req = s.request(method.clone(), path).body(body.clone());
                if let Some(ct) = ct {
                    req = req.header(CONTENT_TYPE, *ct);
                }
                cases.push(req);
            }
        }
        for auth in &auths {
            let mut req = s
                .request(method.clone(), path)
                .header(CONTENT_TYPE, "application/json")
                .body("{}");
            if let Some(a) = auth {
                req = req.header(AUTHORIZATION, HeaderValue::from_bytes(a).unwrap());
            }
            cases.push(req);
        }
        for (name, value) in &odd_headers {
            let req = s
                .request(method.clone(), path)
                .header(*name, HeaderValue::from_bytes(value).unwrap())
                .header(USER_AGENT, "fuzz");
            cases.push(req);
        }
        for req in cases {
            let r = s.send(req).await;
            assert!(
                (400..500).contains(&r.status),
                "{}: expected 4xx, got {} {}",
                r.what,
                r.status,
                r.text
            );
        }
    }
    // nothing of that touched the user's session
    s.me(&u.tokens.access).await.assert_status(200);
}

fn fuzz_endpoints(u: &User) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/signup".into()),
        (Method::POST, "/auth/login".into()),
        (Method::POST, "/auth/reissue".into()),
        (Method::POST, "/auth/logout".into()),
        (Method::POST, "/auth/logout-all".into()),
        (Method::GET, "/auth/sessions".into()),
        (Method::DELETE, format!("/auth/sessions/{}", u.tokens.sid())),
        (Method::GET, "/me".into()),
        (Method::POST, format!("/admin/users/{}/logout", u.id)),
        (Method::GET, "/auth/jwks.json".into()),
        (Method::PUT, "/auth/login".into()),
        (Method::GET, "/auth/reissue".into()),
        (Method::DELETE, "/auth/sessions/".into()),
        (Method::POST, "/admin/users//logout".into()),
    ]
}

/// A body far over the 16 KiB limit still gets an HTTP answer (4xx), not a
/// dropped connection, on every endpoint.
async fn oversized_body_answered(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let mut failures = Vec::new();
    let mut sent = 0;
    for (size, (method, path)) in [64 * 1024, 256 * 1024, 1024 * 1024]
        .into_iter()
        .flat_map(|size| fuzz_endpoints(&u).into_iter().map(move |e| (size, e)))
    {
        sent += 1;
        let body = format!(r#"{{"refresh_token":"{}"}}"#, "A".repeat(size));
        let req = s
            .request(method, &path)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        match s.try_send(req).await {
            Ok(r) if (400..500).contains(&r.status) => {}
            Ok(r) => failures.push(format!(
                "{}: expected 4xx, got {} {}",
                r.what, r.status, r.text
            )),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} requests got no 4xx:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------- tokens: crit, iat, sizes

/// RFC 7515 §4.1.11: `crit` names extensions that must be understood, and
/// none is; the same token without it is accepted.
async fn me_crit_header(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let claims = claims_of(&u.tokens);
    s.me(&forge(&access_header(), &claims, TEST_SECRET))
        .await
        .assert_status(200);
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), Value::Null] {
        let header = with(access_header(), "crit", crit.clone());
        let r = s.me(&forge(&header, &claims, TEST_SECRET)).await;
        r.assert_invalid_token();
        let why = r.json()["error_description"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(why.contains("crit"), "crit {crit}: {}", r.text);
    }
}

/// An access token whose `iat` lies beyond the leeway (5 s) in the future is
/// refused; one within it is accepted.
async fn me_iat_in_future(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let n = now();
    for ahead in [60, 3600] {
        let claims = with(
            with(claims_of(&u.tokens), "iat", json!(n + ahead)),
            "exp",
            json!(n + ahead + 300),
        );
        s.me(&forge(&access_header(), &claims, TEST_SECRET))
            .await
            .assert_invalid_token();
    }
    let near = with(claims_of(&u.tokens), "iat", json!(n + 1));
    s.me(&forge(&access_header(), &near, TEST_SECRET))
        .await
        .assert_status(200);
}

/// The 8 KiB limit is on the whole `Authorization` value, scheme included:
/// 8193..=8199 bytes once reached token verification (401).
async fn me_authorization_over_8_kib(t: Target) {
    let s = t.start(&[]);
    let value = |len: usize| format!("Bearer {}", "a".repeat(len - "Bearer ".len()));
    // At the limit the value is read, and the junk token fails verification.
    s.me_with_authorization(value(8192).as_bytes())
        .await
        .assert_invalid_token();
    for len in (8193..=8199).chain([9000, 16 * 1024, 30_000, 64 * 1024]) {
        s.me_with_authorization(value(len).as_bytes())
            .await
            .assert_bad_authorization();
    }
    // On the endpoints that read a bearer token too.
    for path in ["/auth/reissue", "/auth/logout", "/auth/logout-all"] {
        let r = s
            .send(s.post(path).header(AUTHORIZATION, value(8195)))
            .await;
        r.assert_bad_authorization();
    }
}

/// With HMAC keys only there is nothing to publish, and the 404 says so.
async fn jwks_not_found_says_why(t: Target) {
    let s = t.start(&[]);
    let r = s.send(s.get("/auth/jwks.json")).await;
    r.assert_not_found().assert_json_type();
    let why = r.json()["error_description"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        why.contains("no public keys") && !why.contains("session"),
        "{}",
        r.text
    );
}

// ---------------------------------------------------------------- instant revocation

/// The default mode: every way a session ends refuses its access tokens at
/// once, with no store round trip per request.
async fn logout_instant_refused_at_once(t: Target) {
    let s = t.start(&[("REISSUE_ADMIN_EMAILS", "root@example.com")]);
    let u = s.user().await;
    let other = s.login(&u.email, PASSWORD).await;
    s.post_auth("/auth/logout", &u.tokens.access)
        .await
        .assert_no_content();
    s.me(&u.tokens.access).await.assert_invalid_token();
    s.me(&other.access).await.assert_status(200);
    s.post_auth("/auth/logout-all", &other.access)
        .await
        .assert_no_content();
    s.me(&other.access).await.assert_invalid_token();

    // DELETE /auth/sessions/{sid}, and the admin's forced logout.
    let v = s.user().await;
    let second = s.login(&v.email, PASSWORD).await;
    s.send(
        s.delete(&format!("/auth/sessions/{}", second.sid()))
            .bearer_auth(&v.tokens.access),
    )
    .await
    .assert_no_content();
    s.me(&second.access).await.assert_invalid_token();
    s.me(&v.tokens.access).await.assert_status(200);
    let root = s.vouched_user_named("root@example.com").await;
    s.post_auth(
        &format!("/admin/users/{}/logout", v.id),
        &root.tokens.access,
    )
    .await
    .assert_no_content();
    s.me(&v.tokens.access).await.assert_invalid_token();

    // Reuse detection ends the session: its access token goes with it.
    let w = s.user().await;
    let next = s.reissue(&w.tokens.refresh).await.tokens();
    s.reissue(&next.refresh).await.tokens();
    s.reissue(&w.tokens.refresh).await.assert_invalid_token();
    s.me(&next.access).await.assert_invalid_token();
}

async fn revocation_mode_variables(t: Target) {
    for (env, refused) in [
        (vec![("REISSUE_REVOCATION", "stateless")], false),
        (vec![("REISSUE_REVOCATION", "instant")], true),
        (vec![("REISSUE_REVOCATION", "STRICT")], true),
        (vec![("REISSUE_STRICT_REVOCATION", "1")], true),
        (
            vec![
                ("REISSUE_REVOCATION", "stateless"),
                ("REISSUE_STRICT_REVOCATION", "1"),
            ],
            true,
        ),
    ] {
        let s = t.start(&env);
        let u = s.user().await;
        s.post_auth("/auth/logout", &u.tokens.access)
            .await
            .assert_no_content();
        let r = s.me(&u.tokens.access).await;
        if refused {
            r.assert_invalid_token();
        } else {
            r.assert_status(200);
        }
    }
}

/// A thief's leftover access token of an ended session cannot reach the
/// session endpoints, even in stateless mode.
async fn session_endpoints_refuse_ended_sessions(t: Target) {
    let s = t.start(&[("REISSUE_REVOCATION", "stateless")]);
    let u = s.user().await;
    let other = s.login(&u.email, PASSWORD).await;
    s.post_auth("/auth/logout", &u.tokens.access)
        .await
        .assert_no_content();
    s.me(&u.tokens.access).await.assert_status(200);
    s.get_auth("/auth/sessions", &u.tokens.access)
        .await
        .assert_invalid_token();
    s.post_auth("/auth/logout-all", &u.tokens.access)
        .await
        .assert_invalid_token();
    s.send(
        s.delete(&format!("/auth/sessions/{}", other.sid()))
            .bearer_auth(&u.tokens.access),
    )
    .await
    .assert_invalid_token();
    s.me(&other.access).await.assert_status(200);
    assert_eq!(
        s.sessions(&other.access).await.len(),
        1,
        "the live session is untouched"
    );
}

/// Two instances behind one proxy share the Redis store: a logout on one is
/// refused on the other without a per-request store check.
async fn instant_revocation_reaches_other_instances(t: Target) {
    let a = t.start(&[]);
    let prefix = a.redis_prefix().expect("a Redis prefix").to_owned();
    let b = t.start(&[("REISSUE_REDIS_PREFIX", prefix.as_str())]);
    let u = a.user().await;
    b.me(&u.tokens.access).await.assert_status(200);
    a.post_auth("/auth/logout", &u.tokens.access)
        .await
        .assert_no_content();
    let started = Instant::now();
    loop {
        let r = b.me(&u.tokens.access).await;
        if r.status == 401 {
            r.assert_invalid_token();
            break;
        }
        r.assert_status(200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the other instance still accepts an ended session after 2 s"
        );
        sleep(0.005).await;
    }
    let v = b.user_named(&email()).await;
    a.me(&v.tokens.access).await.assert_status(200);
    b.post_auth("/auth/logout-all", &v.tokens.access)
        .await
        .assert_no_content();
    let started = Instant::now();
    while a.me(&v.tokens.access).await.status == 200 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "logout-all not heard"
        );
        sleep(0.005).await;
    }
    a.me(&v.tokens.access).await.assert_invalid_token();
}

/// Three strict instances on one store: the moment a logout (or
/// logout-all) answers 204 on one, the others refuse its access tokens, on
/// their first request: no polling.
async fn strict_revocation_is_everywhere_when_logout_returns(t: Target) {
    let strict = ("REISSUE_STRICT_REVOCATION", "1");
    let a = t.start(&[strict]);
    let prefix = a.redis_prefix().expect("a Redis prefix").to_owned();
    let shared = ("REISSUE_REDIS_PREFIX", prefix.as_str());
    let b = t.start(&[strict, shared]);
    let c = t.start(&[strict, shared]);
    for round in 0..3 {
        let u = a.user().await;
        let other = a.login(&u.email, PASSWORD).await;
        for s in [&a, &b, &c] {
            s.me(&u.tokens.access).await.assert_status(200);
        }
        let (ender, ended) = if round % 2 == 0 {
            a.post_auth("/auth/logout", &u.tokens.access)
                .await
                .assert_no_content();
            (&a, vec![&u.tokens.access])
        } else {
            b.post_auth("/auth/logout-all", &other.access)
                .await
                .assert_no_content();
            (&b, vec![&u.tokens.access, &other.access])
        };
        for s in [&a, &b, &c] {
            for access in &ended {
                s.me(access).await.assert_invalid_token();
            }
        }
        if ended.len() == 1 {
            ender.me(&other.access).await.assert_status(200);
            c.me(&other.access).await.assert_status(200);
        }
    }
}

// ---------------------------------------------------------------- login throttling

fn from(ip: &str) -> [(&str, &str); 1] {
    [("x-forwarded-for", ip)]
}

/// Through a trusted proxy: failures from one network lock that network out
/// (429 even with the right password); the user's own network is unaffected.
async fn login_throttled_per_network(t: Target) {
    let s = t.start(&[
        ("REISSUE_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("REISSUE_LOGIN_MAX_FAILURES", "3"),
        ("REISSUE_LOGIN_LOCKOUT", "60"),
    ]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    for i in 0..3 {
        // Neighbours in one /24 count together.
        let ip = format!("198.51.100.{}", 10 + i);
        s.login_with(&e, "wrong password!", &from(&ip))
            .await
            .assert_invalid_credentials();
    }
    s.login_with(&e, "wrong password!", &from("198.51.100.200"))
        .await
        .assert_too_many_attempts(60);
    s.login_with(&e, PASSWORD, &from("198.51.100.10"))
        .await
        .assert_too_many_attempts(60);
    // The user, elsewhere, is not locked out from afar; a success clears its pair.
    s.login_with(&e, "wrong password!", &from("203.0.113.5"))
        .await
        .assert_invalid_credentials();
    s.login_with(&e, PASSWORD, &from("203.0.113.5"))
        .await
        .tokens();
    for _ in 0..3 {
        s.login_with(&e, "wrong password!", &from("203.0.113.5"))
            .await
            .assert_invalid_credentials();
    }
    // IPv6 networks are /56.
    s.login_with(&e, PASSWORD, &from("2001:db8:0:ab00::1"))
        .await
        .tokens();
}

/// Parallel guesses cannot get more password checks than the limit.
async fn login_parallel_guesses_capped(t: Target) {
    let s = t.start(&[
        ("REISSUE_LOGIN_MAX_FAILURES", "5"),
        ("REISSUE_LOGIN_LOCKOUT", "60"),
    ]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    let answers = join_all((0..30).map(|_| s.login_raw(&e, "wrong password!"))).await;
    let checked = answers.iter().filter(|r| r.status == 401).count();
    let throttled = answers.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        (checked, throttled),
        (5, 25),
        "exactly the limit of 30 parallel guesses reach the password check"
    );
    for r in answers.iter().filter(|r| r.status == 429) {
        r.assert_too_many_attempts(60);
    }
    s.login_raw(&e, PASSWORD).await.assert_too_many_attempts(60);
}

/// Input that names no account is 400 before any counting: no number of
/// malformed attempts locks the real account out.
async fn login_malformed_email_not_counted(t: Target) {
    let s = t.start(&[("REISSUE_LOGIN_MAX_FAILURES", "2")]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    let huge = format!("{}@example.com", "a".repeat(12 * 1024));
    for bad in ["not-an-email", "", " ", huge.as_str(), "a@@b.c"] {
        for _ in 0..3 {
            let r = s.login_raw(bad, "wrong password!").await;
            r.assert_error(400, "invalid_request").assert_json_type();
            assert!(!r.text.contains("aaaaaaaa"), "the typed text is not echoed");
        }
    }
    s.login(&e, PASSWORD).await;
}

/// Guessing spread over many networks meets the account-wide ceiling
/// (10 × the per-network limit by default).
async fn login_account_ceiling_across_networks(t: Target) {
    let s = t.start(&[
        ("REISSUE_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("REISSUE_LOGIN_MAX_FAILURES", "1"),
        ("REISSUE_LOGIN_LOCKOUT", "60"),
    ]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    for n in 0..10 {
        s.login_with(&e, "wrong password!", &from(&format!("192.0.{n}.1")))
            .await
            .assert_invalid_credentials();
    }
    s.login_with(&e, "wrong password!", &from("192.0.77.1"))
        .await
        .assert_too_many_attempts(60);
    let bystander = email();
    s.signup(&bystander, PASSWORD).await;
    s.login_with(&bystander, PASSWORD, &from("192.0.77.1"))
        .await
        .tokens();
}

// ---------------------------------------------------------------- cookie transport

const RT_COOKIE: &str = "__Secure-reissue-rt";
const TRANSPORT: (&str, &str) = ("x-reissue-transport", "cookie");

/// Every `Set-Cookie` of a response.
fn set_cookies(r: &Resp) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// The one `Set-Cookie` of a response, split into its value and its
/// attributes (names lower-cased).
#[track_caller]
fn the_refresh_cookie(r: &Resp) -> (String, Vec<(String, String)>) {
    let all = set_cookies(r);
    assert_eq!(
        all.len(),
        1,
        "{}: expected one Set-Cookie, got {all:?}",
        r.what
    );
    let mut parts = all[0].split(';').map(str::trim);
    let (name, value) = parts
        .next()
        .and_then(|p| p.split_once('='))
        .unwrap_or_else(|| panic!("{}: Set-Cookie without name=value: {all:?}", r.what));
    assert_eq!(name, RT_COOKIE, "{}: {all:?}", r.what);
    let attrs = parts
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
            None => (a.to_ascii_lowercase(), String::new()),
        })
        .collect();
    (value.to_owned(), attrs)
}

/// Asserts the attributes every refresh cookie carries, whatever its value.
#[track_caller]
fn assert_cookie_attributes(r: &Resp, attrs: &[(String, String)], max_age: u64) {
    let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("path"), Some("/auth"), "{}: {attrs:?}", r.what);
    assert_eq!(get("httponly"), Some(""), "{}: {attrs:?}", r.what);
    assert_eq!(get("secure"), Some(""), "{}: {attrs:?}", r.what);
    assert_eq!(
        get("samesite").map(str::to_ascii_lowercase).as_deref(),
        Some("strict"),
        "{}: {attrs:?}",
        r.what
    );
    assert_eq!(
        get("max-age"),
        Some(max_age.to_string().as_str()),
        "{}: {attrs:?}",
        r.what
    );
    assert_eq!(get("domain"), None, "{}: no Domain: {attrs:?}", r.what);
}

/// Asserts a 200 cookie-mode token response: no `refresh_token` in the body,
/// the cookie set with the contract's attributes. Returns the access token
/// and the new cookie value.
#[track_caller]
fn assert_cookie_tokens(r: &Resp) -> (String, String) {
    r.assert_status(200).assert_json_type();
    assert!(
        r.header("cache-control")
            .is_some_and(|c| c.contains("no-store")),
        "{}: no Cache-Control: no-store",
        r.what
    );
    let v = r.json();
    assert!(
        v.get("refresh_token").is_none(),
        "{}: the refresh token is in the body too: {}",
        r.what,
        r.text
    );
    assert_eq!(v["token_type"], json!("Bearer"), "{}", r.text);
    assert!(
        v["expires_in"].as_u64().is_some_and(|n| n > 0),
        "{}",
        r.text
    );
    let max_age = v["refresh_expires_in"]
        .as_u64()
        .filter(|&n| n > 0)
        .unwrap_or_else(|| panic!("{}: refresh_expires_in: {}", r.what, r.text));
    let access = v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no access_token: {}", r.what, r.text))
        .to_owned();
    let (value, attrs) = the_refresh_cookie(r);
    assert_cookie_attributes(r, &attrs, max_age);
    assert_eq!(
        header_of(&value)["typ"],
        json!("rt+jwt"),
        "{}: the cookie holds a refresh token",
        r.what
    );
    assert!(
        !r.text.contains(&value),
        "{}: the body holds the cookie",
        r.what
    );
    (access, value)
}

/// Asserts that the response removes the refresh cookie (`Max-Age=0`).
#[track_caller]
fn assert_clears_cookie(r: &Resp) {
    let (value, attrs) = the_refresh_cookie(r);
    assert_eq!(value, "", "{}: a clearing cookie has no value", r.what);
    assert_cookie_attributes(r, &attrs, 0);
}

#[track_caller]
fn assert_no_set_cookie(r: &Resp) {
    let all = set_cookies(r);
    assert!(all.is_empty(), "{}: unexpected Set-Cookie {all:?}", r.what);
}

/// A request that carries the refresh cookie, the transport header and the
/// server's own `Origin`, as the demo page's fetches do.
fn by_cookie(s: &TestServer, path: &str, cookie: &str) -> reqwest::RequestBuilder {
    s.post(path)
        .header(TRANSPORT.0, TRANSPORT.1)
        .header("cookie", format!("theme=dark; {RT_COOKIE}={cookie}"))
        .header("origin", s.base())
        .header("sec-fetch-site", "same-origin")
}

/// Signs a user up and logs in with the cookie transport: (email, access, cookie).
async fn cookie_user(s: &TestServer) -> (String, String, String) {
    let e = email();
    s.signup(&e, PASSWORD).await;
    let r = s
        .login_with(&e, PASSWORD, &[TRANSPORT, ("origin", s.base())])
        .await;
    let (access, cookie) = assert_cookie_tokens(&r);
    (e, access, cookie)
}

async fn cookie_login_sets_the_cookie(t: Target) {
    let s = t.start(&[
        ("REISSUE_REFRESH_TTL", "7200"),
        ("REISSUE_SESSION_MAX_AGE", "86400"),
    ]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    let r = s.login_with(&e, PASSWORD, &[TRANSPORT]).await;
    let (access, cookie) = assert_cookie_tokens(&r);
    assert_eq!(r.json()["refresh_expires_in"], json!(7200), "{}", r.text);
    // The access token is a normal one, and the cookie's token is this session's.
    let claims = verify(&access);
    assert_eq!(payload_of(&cookie)["sid"], claims["sid"]);
    s.get_auth("/me", &access).await.assert_status(200);
    // The cookie's token also works the seed's way (a client may switch).
    s.reissue(&cookie).await.tokens();
    // The header's value is case-insensitive.
    let r = s
        .login_with(&e, PASSWORD, &[("x-reissue-transport", "Cookie")])
        .await;
    assert_cookie_tokens(&r);
}

async fn cookie_reissue_by_cookie(t: Target) {
    let s = t.start(&[]);
    let (_, access, cookie) = cookie_user(&s).await;
    let sid = verify(&access)["sid"].clone();
    // No body at all, as a browser's fetch sends it.
    let r = s.send(by_cookie(&s, "/auth/reissue", &cookie)).await;
    let (access2, cookie2) = assert_cookie_tokens(&r);
    assert_ne!(cookie2, cookie, "the cookie rotated");
    assert_eq!(verify(&access2)["sid"], sid, "the same session");
    // A JSON body without refresh_token (`{}`) also falls back to the cookie.
    let r = s
        .send(by_cookie(&s, "/auth/reissue", &cookie2).json(&json!({})))
        .await;
    let (_, cookie3) = assert_cookie_tokens(&r);
    // Within the grace window the spent cookie gets the same successor.
    let r = s.send(by_cookie(&s, "/auth/reissue", &cookie2)).await;
    let (_, again) = assert_cookie_tokens(&r);
    assert_eq!(again, cookie3, "grace window: the same new refresh token");
    // Without an Origin or Sec-Fetch-Site (a non-browser client) it works too.
    let r = s
        .send(
            s.post("/auth/reissue")
                .header(TRANSPORT.0, TRANSPORT.1)
                .header("cookie", format!("{RT_COOKIE}={cookie3}")),
        )
        .await;
    assert_cookie_tokens(&r);
    let sessions = s.sessions(&access2).await;
    assert_eq!(sessions.len(), 1, "no fork: {sessions:?}");
}

async fn cookie_reissue_concurrent(t: Target) {
    let s = t.start(&[]);
    let (_, access, cookie) = cookie_user(&s).await;
    let all = join_all((0..6).map(|_| s.send(by_cookie(&s, "/auth/reissue", &cookie)))).await;
    let cookies: Vec<String> = all.iter().map(|r| assert_cookie_tokens(r).1).collect();
    for c in &cookies {
        assert_eq!(c, &cookies[0], "two tabs end on the same refresh token");
    }
    let r = s.send(by_cookie(&s, "/auth/reissue", &cookies[0])).await;
    assert_cookie_tokens(&r);
    assert_eq!(
        s.sessions(&access).await.len(),
        1,
        "the session did not fork"
    );
}

async fn cookie_logout_by_cookie(t: Target) {
    let s = t.start(&[]);
    let (e, _, cookie) = cookie_user(&s).await;
    let other = s.login(&e, PASSWORD).await;
    let r = s.send(by_cookie(&s, "/auth/logout", &cookie)).await;
    r.assert_no_content();
    assert_clears_cookie(&r);
    // The session is over; the user's other session is not.
    let r = s.send(by_cookie(&s, "/auth/reissue", &cookie)).await;
    r.assert_invalid_token();
    assert_clears_cookie(&r);
    s.reissue(&other.refresh).await.tokens();
    // Logging out an ended session: 204, and the cookie is cleared again.
    let r = s.send(by_cookie(&s, "/auth/logout", &cookie)).await;
    r.assert_no_content();
    assert_clears_cookie(&r);
}

async fn cookie_logout_all_clears(t: Target) {
    let s = t.start(&[]);
    let (e, access, cookie) = cookie_user(&s).await;
    let other = s.login(&e, PASSWORD).await;
    let logout_all = |token: String| {
        s.send(
            s.post("/auth/logout-all")
                .bearer_auth(token)
                .header(TRANSPORT.0, TRANSPORT.1),
        )
    };
    let r = logout_all(access.clone()).await;
    r.assert_no_content();
    assert_clears_cookie(&r);
    s.send(by_cookie(&s, "/auth/reissue", &cookie))
        .await
        .assert_invalid_token();
    s.reissue(&other.refresh).await.assert_invalid_token();
    // Again, with the access token of the ended session: whether the
    // revocation mode still accepts it (204) or not (401), the cookie goes.
    let r = logout_all(access).await;
    assert!(matches!(r.status, 204 | 401), "{}: {}", r.status, r.text);
    assert_clears_cookie(&r);
    // Without the transport header: the JSON flow, no cookie.
    let fresh = s.login(&e, PASSWORD).await;
    let r = s.post_auth("/auth/logout-all", &fresh.access).await;
    r.assert_no_content();
    assert_no_set_cookie(&r);
}

async fn cookie_csrf_refusals(t: Target) {
    // Strict grace: had any refused request spent the cookie, its next use
    // would be reuse, and revoke the session.
    let s = t.start(&[("REISSUE_REUSE_GRACE", "0")]);
    let (e, access, cookie) = cookie_user(&s).await;
    let jar = format!("{RT_COOKIE}={cookie}");
    let refusals: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no transport header", vec![("origin", s.base().to_owned())]),
        (
            "transport header with another value",
            vec![("x-reissue-transport", "header".into())],
        ),
        (
            "foreign Origin",
            vec![
                transport_header(),
                ("origin", "https://evil.example".into()),
            ],
        ),
        (
            "same host, other port",
            vec![transport_header(), ("origin", "http://127.0.0.1:1".into())],
        ),
        (
            "Origin null",
            vec![transport_header(), ("origin", "null".into())],
        ),
        (
            "Sec-Fetch-Site cross-site",
            vec![transport_header(), ("sec-fetch-site", "cross-site".into())],
        ),
        (
            "cross-site despite an own Origin",
            vec![
                transport_header(),
                ("origin", s.base().to_owned()),
                ("sec-fetch-site", "cross-site".into()),
            ],
        ),
        (
            "same-site without an Origin",
            vec![transport_header(), ("sec-fetch-site", "same-site".into())],
        ),
        (
            "same-site from an origin nobody allowed",
            vec![
                transport_header(),
                ("origin", "http://localhost:1".into()),
                ("sec-fetch-site", "same-site".into()),
            ],
        ),
    ];
    for path in ["/auth/reissue", "/auth/logout"] {
        for (why, headers) in &refusals {
            let mut req = s.post(path).header("cookie", &jar);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let r = s.send(req).await;
            assert_eq!(r.status, 403, "{path}, {why}: {} {}", r.status, r.text);
            r.assert_access_denied();
            assert_no_set_cookie(&r);
        }
    }
    // A cookie-mode login from another site is refused too (login CSRF).
    let r = s
        .login_with(
            &e,
            PASSWORD,
            &[TRANSPORT, ("origin", "https://evil.example")],
        )
        .await;
    r.assert_access_denied();
    assert_no_set_cookie(&r);
    // The session is untouched: not spent, not ended.
    let r = s.send(by_cookie(&s, "/auth/reissue", &cookie)).await;
    assert_cookie_tokens(&r);
    s.get_auth("/me", &access).await.assert_status(200);
    assert_eq!(s.sessions(&access).await.len(), 1);
}

fn transport_header() -> (&'static str, String) {
    (TRANSPORT.0, TRANSPORT.1.to_owned())
}

async fn cookie_allowed_origins(t: Target) {
    let s = t.start(&[(
        "REISSUE_ALLOWED_ORIGINS",
        "https://app.example.com, http://localhost:5173",
    )]);
    let (_, _, cookie) = cookie_user(&s).await;
    let from = |origin: &str, site: &str, cookie: &str| {
        s.post("/auth/reissue")
            .header(TRANSPORT.0, TRANSPORT.1)
            .header("cookie", format!("{RT_COOKIE}={cookie}"))
            .header("origin", origin)
            .header("sec-fetch-site", site)
    };
    // An SPA on a sibling origin of the same site, listed.
    let r = s
        .send(from("https://app.example.com", "same-site", &cookie))
        .await;
    let (_, cookie) = assert_cookie_tokens(&r);
    let r = s
        .send(from("HTTP://LOCALHOST:5173", "same-site", &cookie))
        .await;
    let (_, cookie) = assert_cookie_tokens(&r);
    // The server's own origin stays allowed.
    let r = s.send(from(s.base(), "same-origin", &cookie)).await;
    let (_, cookie) = assert_cookie_tokens(&r);
    // Listed, but cross-site: SameSite=Strict would not send it; refused.
    s.send(from("https://app.example.com", "cross-site", &cookie))
        .await
        .assert_access_denied();
    s.send(from("https://other.example.com", "same-site", &cookie))
        .await
        .assert_access_denied();
    s.send(from("http://localhost:5174", "same-site", &cookie))
        .await
        .assert_access_denied();
    // A bad origin in the setting refuses to start, naming the variable.
    let bad = std::panic::catch_unwind(|| {
        t.start(&[("REISSUE_ALLOWED_ORIGINS", "app.example.com")]);
    });
    let msg = bad
        .err()
        .and_then(|p| p.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("REISSUE_ALLOWED_ORIGINS"), "{msg}");
}

async fn cookie_header_clients_unaffected(t: Target) {
    let s = t.start(&[]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    let r = s.login_raw(&e, PASSWORD).await;
    let tokens = r.tokens();
    assert_no_set_cookie(&r);
    let r = s.reissue(&tokens.refresh).await;
    let next = r.tokens();
    assert_no_set_cookie(&r);
    // A stray cookie does not change the header flow: the bearer token wins,
    // the body's token wins, and nothing is set.
    let (_, _, cookie) = cookie_user(&s).await;
    let jar = format!("{RT_COOKIE}={cookie}");
    let r = s
        .send(
            s.post("/auth/reissue")
                .bearer_auth(&next.refresh)
                .header("cookie", &jar),
        )
        .await;
    let after_bearer = r.tokens();
    assert_no_set_cookie(&r);
    assert_eq!(
        payload_of(&after_bearer.refresh)["sid"],
        json!(tokens.sid())
    );
    let r = s
        .send(
            s.post("/auth/reissue")
                .json(&json!({ "refresh_token": after_bearer.refresh }))
                .header("cookie", &jar),
        )
        .await;
    let after_body = r.tokens();
    assert_no_set_cookie(&r);
    let r = s
        .send(
            s.post("/auth/logout")
                .json(&json!({ "refresh_token": after_body.refresh }))
                .header("cookie", &jar),
        )
        .await;
    r.assert_no_content();
    assert_no_set_cookie(&r);
    // The cookie's session was not the one that ended.
    let r = s.send(by_cookie(&s, "/auth/reissue", &cookie)).await;
    assert_cookie_tokens(&r);
    // Errors do not set cookies either.
    let r = s.reissue("not-a-token").await;
    r.assert_invalid_token();
    assert_no_set_cookie(&r);
}

async fn cookie_transport_off(t: Target) {
    let s = t.start(&[("REISSUE_COOKIES", "0")]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    // The header is ignored: the JSON flow, no cookie.
    let r = s.login_with(&e, PASSWORD, &[TRANSPORT]).await;
    let tokens = r.tokens();
    assert_no_set_cookie(&r);
    // The cookie is never read.
    let r = s
        .send(by_cookie(&s, "/auth/reissue", &tokens.refresh))
        .await;
    r.assert_unauthorized();
    assert_no_set_cookie(&r);
    s.reissue(&tokens.refresh).await.tokens();
}

/// Cookie tossing: a sibling subdomain plants a second `__Secure-reissue-rt`
/// (`Domain=` the parent, a more specific `Path`), which the browser sends
/// first. Two refresh cookies are refused (403), whichever is first, and the
/// real one is never cleared: no forced logout by a 401's clearing, and no
/// signing the victim into the planted session.
async fn cookie_tossing_refused(t: Target) {
    let s = t.start(&[("REISSUE_REUSE_GRACE", "0")]);
    let (_, access, victim) = cookie_user(&s).await;
    let (_, _, planted) = cookie_user(&s).await;
    for (why, jar) in [
        (
            "the attacker's session first",
            format!("{RT_COOKIE}={planted}; {RT_COOKIE}={victim}"),
        ),
        (
            "garbage first",
            format!("{RT_COOKIE}=not.a.token; {RT_COOKIE}={victim}"),
        ),
        (
            "the real one first",
            format!("{RT_COOKIE}={victim}; theme=dark; {RT_COOKIE}=x"),
        ),
    ] {
        for path in ["/auth/reissue", "/auth/logout"] {
            let r = s
                .send(
                    s.post(path)
                        .header(TRANSPORT.0, TRANSPORT.1)
                        .header("cookie", &jar),
                )
                .await;
            assert_eq!(r.status, 403, "{path}, {why}: {} {}", r.status, r.text);
            r.assert_access_denied();
            assert_no_set_cookie(&r);
        }
    }
    // Two Cookie headers are two cookies too.
    let r = s
        .send(
            s.post("/auth/reissue")
                .header(TRANSPORT.0, TRANSPORT.1)
                .header("cookie", format!("{RT_COOKIE}={planted}"))
                .header("cookie", format!("{RT_COOKIE}={victim}")),
        )
        .await;
    assert_eq!(r.status, 403, "two Cookie headers: {}", r.text);
    assert_no_set_cookie(&r);
    // Nothing was spent or ended: with no grace, a spent cookie would now be reuse.
    let r = s.send(by_cookie(&s, "/auth/reissue", &victim)).await;
    assert_cookie_tokens(&r);
    s.get_auth("/me", &access).await.assert_status(200);
    let r = s.send(by_cookie(&s, "/auth/reissue", &planted)).await;
    assert_cookie_tokens(&r);
}

/// A cookie-mode reissue whose refresh token comes in `Authorization` (or the
/// body) sets the cookie like any other: from another site it would plant a
/// session in the victim's browser, so the same-site rules apply to it too.
async fn cookie_mode_header_token_same_site(t: Target) {
    let s = t.start(&[("REISSUE_REUSE_GRACE", "0")]);
    let attacker = s.user().await.tokens;
    for (why, headers) in [
        ("foreign Origin", vec![("origin", "https://evil.example")]),
        (
            "Sec-Fetch-Site cross-site",
            vec![("sec-fetch-site", "cross-site")],
        ),
    ] {
        let mut by_header = s
            .post("/auth/reissue")
            .bearer_auth(&attacker.refresh)
            .header(TRANSPORT.0, TRANSPORT.1);
        let mut by_body = s
            .post("/auth/reissue")
            .json(&json!({"refresh_token": attacker.refresh}))
            .header(TRANSPORT.0, TRANSPORT.1);
        for (k, v) in &headers {
            by_header = by_header.header(*k, *v);
            by_body = by_body.header(*k, *v);
        }
        for (how, req) in [("header", by_header), ("body", by_body)] {
            let r = s.send(req).await;
            assert_eq!(r.status, 403, "{how}, {why}: {} {}", r.status, r.text);
            r.assert_access_denied();
            assert_no_set_cookie(&r);
        }
    }
    // Refused before anything was spent: the token still rotates (no grace).
    s.reissue(&attacker.refresh).await.tokens();
}

async fn cookie_reissue_401_clears(t: Target) {
    let s = t.start(&[]);
    let (_, _, cookie) = cookie_user(&s).await;
    let r = s.send(by_cookie(&s, "/auth/reissue", "not.a.token")).await;
    r.assert_invalid_token();
    assert_clears_cookie(&r);
    // An access token in the cookie is the wrong type: 401, cleared.
    let (_, access, _) = cookie_user(&s).await;
    let r = s.send(by_cookie(&s, "/auth/reissue", &access)).await;
    r.assert_invalid_token();
    assert_clears_cookie(&r);
    // A bearer refresh token that fails, from a cookie-mode client: cleared.
    let r = s
        .send(
            s.post("/auth/reissue")
                .bearer_auth("garbage")
                .header(TRANSPORT.0, TRANSPORT.1),
        )
        .await;
    r.assert_invalid_token();
    assert_clears_cookie(&r);
    // Cookie mode with nothing to present: 401, and a clear for good measure.
    let r = s
        .send(s.post("/auth/reissue").header(TRANSPORT.0, TRANSPORT.1))
        .await;
    r.assert_unauthorized();
    assert_clears_cookie(&r);
    // The first user's cookie was untouched by all this.
    let r = s.send(by_cookie(&s, "/auth/reissue", &cookie)).await;
    assert_cookie_tokens(&r);
}

/// `GET /metrics`: the `reissue_*` samples of this server, `name{labels}` →
/// value. Each app has its own recorder, so the numbers are this server's
/// alone, however many servers the suite runs in this process.
async fn metrics(s: &TestServer) -> std::collections::BTreeMap<String, f64> {
    let r = s.send(s.get("/metrics")).await;
    r.assert_status(200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{}: {:?}",
        r.what,
        r.header("content-type")
    );
    r.text
        .lines()
        .filter(|l| l.starts_with("reissue_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[track_caller]
fn assert_metric(m: &std::collections::BTreeMap<String, f64>, sample: &str, expected: f64) {
    let found = m.get(sample).copied().unwrap_or(0.0);
    assert_eq!(found, expected, "{sample}: {m:#?}");
}

async fn metrics_move_with_each_decision(t: Target) {
    let s = t.start(&[
        ("REISSUE_REUSE_GRACE", "1"),
        ("REISSUE_LOGIN_MAX_FAILURES", "2"),
    ]);
    let m = metrics(&s).await;
    assert!(
        m.keys().all(|k| !k.starts_with("reissue_logins_total")),
        "a fresh server has counted no login: {m:#?}"
    );

    let u = s.user().await;
    let m = metrics(&s).await;
    assert_metric(&m, r#"reissue_logins_total{outcome="success"}"#, 1.0);
    assert_metric(
        &m,
        r#"reissue_store_duration_seconds_count{op="create"}"#,
        1.0,
    );
    assert_metric(
        &m,
        r#"reissue_store_duration_seconds_count{op="begin_login"}"#,
        1.0,
    );

    // Two wrong passwords on another account, then the throttle.
    let other = email();
    s.signup(&other, PASSWORD).await;
    s.login_raw(&other, "wrong password!")
        .await
        .assert_invalid_credentials();
    s.login_raw(&other, "wrong password!")
        .await
        .assert_invalid_credentials();
    s.login_raw(&other, PASSWORD).await.assert_status(429);
    let m = metrics(&s).await;
    assert_metric(
        &m,
        r#"reissue_logins_total{outcome="invalid_credentials"}"#,
        2.0,
    );
    assert_metric(&m, r#"reissue_logins_total{outcome="throttled"}"#, 1.0);
    assert_metric(&m, "reissue_login_throttled_total", 1.0);
    assert_metric(&m, r#"reissue_logins_total{outcome="success"}"#, 1.0);

    // A reissue, then the same token again within the grace window.
    let next = s.reissue(&u.tokens.refresh).await.tokens();
    s.reissue(&u.tokens.refresh).await.tokens();
    let m = metrics(&s).await;
    assert_metric(&m, r#"reissue_reissues_total{outcome="rotated"}"#, 1.0);
    assert_metric(&m, r#"reissue_reissues_total{outcome="grace_replay"}"#, 1.0);
    assert_metric(
        &m,
        r#"reissue_store_duration_seconds_count{op="rotate"}"#,
        2.0,
    );

    // After the window: reuse, the session revoked, its latest token dead too.
    sleep(2.1).await;
    s.reissue(&u.tokens.refresh).await.assert_invalid_token();
    s.reissue(&next.refresh).await.assert_invalid_token();
    let m = metrics(&s).await;
    assert_metric(
        &m,
        r#"reissue_reissues_total{outcome="reuse_detected"}"#,
        1.0,
    );
    assert_metric(
        &m,
        r#"reissue_reissues_total{outcome="session_ended"}"#,
        1.0,
    );
    assert_metric(
        &m,
        r#"reissue_revocations_total{reason="reuse_detected"}"#,
        1.0,
    );
    assert_metric(&m, r#"reissue_reissues_total{outcome="rotated"}"#, 1.0);

    // A logout.
    let again = s.login(&u.email, PASSWORD).await;
    let r = s.post_auth("/auth/logout", &again.access).await;
    r.assert_no_content();
    let m = metrics(&s).await;
    assert_metric(&m, r#"reissue_logins_total{outcome="success"}"#, 2.0);
    assert_metric(&m, r#"reissue_revocations_total{reason="logout"}"#, 1.0);
    assert!(
        m.keys()
            .all(|k| !k.starts_with("reissue_store_errors_total")),
        "no store errors: {m:#?}"
    );

    // The protected-route middleware counts nothing: a burst of /me leaves
    // every sample as it was.
    let live = s.login(&u.email, PASSWORD).await;
    let before = metrics(&s).await;
    for _ in 0..20 {
        s.me(&live.access).await.assert_status(200);
    }
    s.me("not-a-token").await.assert_invalid_token();
    assert_eq!(metrics(&s).await, before, "GET /me moved a metric");
}

/// Issue 25, item 8: logins for random emails from many networks (so that
/// no throttle applies) flood the password queue, shrunk to one hash at a
/// time and two waiting. Every request still gets an answer of its own: the
/// flood's are 401 or 503 with `Retry-After`, never a wait without end (the
/// client's timeout would fail the request), and some are 503, so the bound
/// held. A legitimate login in the middle gets 200 or 503 with
/// `Retry-After`, and once the flood is over, 200.
async fn a_login_flood_gets_503_not_a_wait(t: Target) {
    let s = t.start(&[
        ("REISSUE_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("REISSUE_HASH_CONCURRENCY", "1"),
        ("REISSUE_HASH_QUEUE", "2"),
        // Slow enough hashes that 60 requests sent at once overlap them.
        ("REISSUE_ARGON2", "32768,2,1"),
    ]);
    let ada = format!("ada{}@example.com", unique());
    s.signup(&ada, PASSWORD).await;
    let flood = (0..60).map(|i| {
        let (email, ip) = (
            format!("random{}-{i}@example.com", unique()),
            format!("198.{}.{}.7", 18 + i % 2, i),
        );
        let req = s
            .post("/auth/login")
            .header("x-forwarded-for", ip)
            .json(&json!({ "email": email, "password": "a guess of a password" }));
        s.send(req)
    });
    let legit = s.send(
        s.post("/auth/login")
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({ "email": ada, "password": PASSWORD })),
    );
    let (flood, legit) = tokio::join!(join_all(flood), legit);
    let mut refused = 0;
    for r in &flood {
        match r.status {
            401 => {
                r.assert_invalid_credentials();
            }
            503 => {
                r.assert_error(503, "temporarily_unavailable");
                r.assert_retry_after(5);
                refused += 1;
            }
            other => panic!("{}: a flooding login got {other} {}", r.what, r.text),
        }
    }
    assert!(
        refused > 0,
        "60 logins at once for 1 running + 2 waiting hashes: none was refused, so the queue was not bounded"
    );
    match legit.status {
        200 => {
            legit.tokens();
        }
        503 => {
            legit.assert_error(503, "temporarily_unavailable");
            legit.assert_retry_after(5);
        }
        other => panic!("the legitimate login got {other} {}", legit.text),
    }
    // The flood is over: the queue has drained, and the user gets in.
    s.send(
        s.post("/auth/login")
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({ "email": ada, "password": PASSWORD })),
    )
    .await
    .tokens();
}

// ---------------------------------------------------------------- DPoP (RFC 9449)

/// A client's DPoP key: it signs proofs with it and sends its public JWK.
struct DpopKey {
    key: jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
    jwk: Value,
}

impl DpopKey {
    fn of(pem: &[u8], alg: jsonwebtoken::Algorithm) -> Self {
        let key = match alg {
            jsonwebtoken::Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(pem),
            _ => jsonwebtoken::EncodingKey::from_ec_pem(pem),
        }
        .expect("a test key");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).expect("its JWK");
        let mut jwk = serde_json::to_value(jwk).unwrap();
        jwk.as_object_mut().unwrap().remove("alg");
        Self { key, alg, jwk }
    }

    /// A P-256 key (ES256).
    fn p256() -> Self {
        Self::of(
            reissue_test_support::pem::EC,
            jsonwebtoken::Algorithm::ES256,
        )
    }

    /// Another P-256 key: a thief's.
    fn other_p256() -> Self {
        Self::of(
            reissue_test_support::pem::EC_ATTACKER,
            jsonwebtoken::Algorithm::ES256,
        )
    }

    /// An Ed25519 key (EdDSA).
    fn ed25519() -> Self {
        Self::of(
            reissue_test_support::pem::ED,
            jsonwebtoken::Algorithm::EdDSA,
        )
    }

    /// The key's RFC 7638 thumbprint, as jsonwebtoken computes it.
    fn jkt(&self) -> String {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.jwk.clone()).unwrap();
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap()
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": format!("{:?}", self.alg), "jwk": self.jwk})
    }

    /// The claims of a fresh proof for `POST path` on `s`.
    fn claims(s: &TestServer, path: &str) -> Value {
        static RUN: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
        let run = RUN.get_or_init(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        });
        json!({
            "htm": "POST",
            "htu": format!("{}{path}", s.base()),
            "iat": now(),
            "jti": format!("{run}-{}-{}", std::process::id(), unique()),
        })
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let message = format!("{}.{}", b64_json(header), b64_json(claims));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.alg)
            .expect("signing a proof");
        format!("{message}.{signature}")
    }

    /// A fresh proof for `POST path` on `s`.
    fn proof(&self, s: &TestServer, path: &str) -> String {
        self.sign(&self.header(), &Self::claims(s, path))
    }

    /// A proof for `POST path` with `claim` set to `value`.
    fn proof_with(&self, s: &TestServer, path: &str, claim: &str, value: Value) -> String {
        self.sign(&self.header(), &with(Self::claims(s, path), claim, value))
    }
}

const DPOP_CHALLENGE: &str = "DPoP error=\"invalid_dpop_proof\", algs=\"ES256 EdDSA\"";

/// Asserts a refused proof: 401 (400 at login) `invalid_dpop_proof` with
/// the DPoP challenge.
#[track_caller]
fn assert_dpop_refused(r: &Resp, status: u16) {
    r.assert_error(status, "invalid_dpop_proof")
        .assert_www(Some(DPOP_CHALLENGE));
}

/// Signs a user up and logs in with a proof by `key`: (email, tokens).
async fn bound_user(s: &TestServer, key: &DpopKey) -> (String, Tokens) {
    let e = email();
    s.signup(&e, PASSWORD).await;
    let proof = key.proof(s, "/auth/login");
    let tokens = s
        .login_with(&e, PASSWORD, &[("dpop", &proof)])
        .await
        .tokens();
    (e, tokens)
}

/// `POST /auth/reissue` of `refresh` with a proof, if any.
async fn reissue_proved(s: &TestServer, refresh: &str, proof: Option<&str>) -> Resp {
    match proof {
        Some(proof) => s.reissue_with(refresh, &[("dpop", proof)]).await,
        None => s.reissue(refresh).await,
    }
}

async fn dpop_login_binds_the_session(t: Target) {
    let s = t.start(&[]);
    for key in [DpopKey::p256(), DpopKey::ed25519()] {
        let (_, tokens) = bound_user(&s, &key).await;
        assert_eq!(tokens.body["token_type"], json!("DPoP"), "{}", tokens.body);
        let claims = tokens.access_claims();
        assert_eq!(claims["cnf"], json!({"jkt": key.jkt()}), "{claims}");
        // RT-only binding: the access token works as a bearer token.
        s.me(&tokens.access).await.assert_status(200);
        let next = reissue_proved(&s, &tokens.refresh, Some(&key.proof(&s, "/auth/reissue")))
            .await
            .tokens();
        assert_eq!(next.body["token_type"], json!("DPoP"));
        assert_eq!(
            next.access_claims()["cnf"],
            json!({"jkt": key.jkt()}),
            "once bound, always bound"
        );
        assert_eq!(payload_of(&next.refresh)["gen"], json!(2));
    }
    // A login without a proof stays unbound, as before.
    let u = s.user().await;
    assert_eq!(u.tokens.body["token_type"], json!("Bearer"));
    assert!(u.tokens.access_claims().get("cnf").is_none());
    s.reissue(&u.tokens.refresh).await.tokens();
}

async fn dpop_reissue_without_proof_spends_nothing(t: Target) {
    let s = t.start(&[]);
    let key = DpopKey::p256();
    let (_, tokens) = bound_user(&s, &key).await;
    assert_dpop_refused(&reissue_proved(&s, &tokens.refresh, None).await, 401);
    // Nor with the token in the body.
    assert_dpop_refused(&s.reissue_json(&tokens.refresh).await, 401);
    // The refresh token was not spent and the session not revoked: a correct
    // retry rotates it (generation 2, not a replay of a spent one).
    s.me(&tokens.access).await.assert_status(200);
    let next = reissue_proved(&s, &tokens.refresh, Some(&key.proof(&s, "/auth/reissue")))
        .await
        .tokens();
    assert_eq!(payload_of(&next.refresh)["gen"], json!(2));
    // ... and it is current: its successor rotates on.
    let after = reissue_proved(&s, &next.refresh, Some(&key.proof(&s, "/auth/reissue")))
        .await
        .tokens();
    assert_eq!(payload_of(&after.refresh)["gen"], json!(3));
}

async fn dpop_bad_proofs_on_reissue_refused(t: Target) {
    let s = t.start(&[]);
    let key = DpopKey::p256();
    let (_, tokens) = bound_user(&s, &key).await;
    let rt = &tokens.refresh;
    let path = "/auth/reissue";
    let bad: Vec<(&str, String)> = vec![
        ("another key", DpopKey::other_p256().proof(&s, path)),
        ("htm GET", key.proof_with(&s, path, "htm", json!("GET"))),
        (
            "htu of another path",
            key.proof_with(&s, path, "htu", json!(format!("{}/auth/logout", s.base()))),
        ),
        (
            "htu of another origin",
            key.proof_with(
                &s,
                path,
                "htu",
                json!("https://elsewhere.example/auth/reissue"),
            ),
        ),
        (
            "iat 2 minutes ago",
            key.proof_with(&s, path, "iat", json!(now() - 120)),
        ),
        (
            "iat 2 minutes ahead",
            key.proof_with(&s, path, "iat", json!(now() + 120)),
        ),
        (
            "exp passed",
            key.proof_with(&s, path, "exp", json!(now() - 30)),
        ),
        ("no jti", {
            let claims = without(DpopKey::claims(&s, path), "jti");
            key.sign(&key.header(), &claims)
        }),
        (
            "typ JWT",
            key.sign(
                &with(key.header(), "typ", json!("JWT")),
                &DpopKey::claims(&s, path),
            ),
        ),
        ("private jwk", {
            let mut header = key.header();
            header["jwk"]["d"] = json!("c2VjcmV0IHNjYWxhciBvZiB0aGUga2V5IGZvciB0ZXN0cw");
            key.sign(&header, &DpopKey::claims(&s, path))
        }),
        ("HS256", {
            let hs = jsonwebtoken::EncodingKey::from_secret(b"a secret a thief and server share");
            let header = with(key.header(), "alg", json!("HS256"));
            let message = format!(
                "{}.{}",
                b64_json(&header),
                b64_json(&DpopKey::claims(&s, path))
            );
            let sig =
                jsonwebtoken::crypto::sign(message.as_bytes(), &hs, jsonwebtoken::Algorithm::HS256)
                    .unwrap();
            format!("{message}.{sig}")
        }),
        ("alg none", {
            let header = with(key.header(), "alg", json!("none"));
            format!(
                "{}.{}.",
                b64_json(&header),
                b64_json(&DpopKey::claims(&s, path))
            )
        }),
        ("not a JWT", "garbage".to_owned()),
    ];
    for (what, proof) in &bad {
        let r = reissue_proved(&s, rt, Some(proof)).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        assert_dpop_refused(&r, 401);
    }
    // Two DPoP headers.
    let two = s
        .send(
            s.post(path)
                .bearer_auth(rt)
                .header("dpop", key.proof(&s, path))
                .header("dpop", key.proof(&s, path)),
        )
        .await;
    assert_dpop_refused(&two, 401);
    // None of them spent the token: the right proof rotates it.
    let next = reissue_proved(&s, rt, Some(&key.proof(&s, path)))
        .await
        .tokens();
    assert_eq!(payload_of(&next.refresh)["gen"], json!(2));
}

async fn dpop_replayed_proof_refused(t: Target) {
    let s = t.start(&[]);
    let key = DpopKey::p256();
    let (_, tokens) = bound_user(&s, &key).await;
    let proof = key.proof(&s, "/auth/reissue");
    let next = reissue_proved(&s, &tokens.refresh, Some(&proof))
        .await
        .tokens();
    // The same proof again, with the successor or with the spent token.
    assert_dpop_refused(&reissue_proved(&s, &next.refresh, Some(&proof)).await, 401);
    assert_dpop_refused(
        &reissue_proved(&s, &tokens.refresh, Some(&proof)).await,
        401,
    );
    // Racing copies of one fresh proof: exactly one is accepted.
    let racing = key.proof(&s, "/auth/reissue");
    let all = join_all((0..6).map(|_| reissue_proved(&s, &next.refresh, Some(&racing)))).await;
    let ok = all.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        all.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in all.iter().filter(|r| r.status != 200) {
        assert_dpop_refused(r, 401);
    }
    // A login's proof is accepted once too.
    let e = email();
    s.signup(&e, PASSWORD).await;
    let login_proof = key.proof(&s, "/auth/login");
    s.login_with(&e, PASSWORD, &[("dpop", &login_proof)])
        .await
        .tokens();
    assert_dpop_refused(
        &s.login_with(&e, PASSWORD, &[("dpop", &login_proof)]).await,
        400,
    );
}

async fn dpop_bad_proofs_at_login_are_400(t: Target) {
    let s = t.start(&[]);
    let key = DpopKey::p256();
    let e = email();
    s.signup(&e, PASSWORD).await;
    let path = "/auth/login";
    let mut private = key.header();
    private["jwk"]["d"] = json!("c2VjcmV0IHNjYWxhciBvZiB0aGUga2V5IGZvciB0ZXN0cw");
    let hs = {
        let secret = jsonwebtoken::EncodingKey::from_secret(b"a secret a thief and server share");
        let header = with(key.header(), "alg", json!("HS256"));
        let message = format!(
            "{}.{}",
            b64_json(&header),
            b64_json(&DpopKey::claims(&s, path))
        );
        let sig =
            jsonwebtoken::crypto::sign(message.as_bytes(), &secret, jsonwebtoken::Algorithm::HS256)
                .unwrap();
        format!("{message}.{sig}")
    };
    for (what, proof) in [
        (
            "private jwk",
            key.sign(&private, &DpopKey::claims(&s, path)),
        ),
        ("HS256", hs),
        ("stale", key.proof_with(&s, path, "iat", json!(now() - 300))),
        ("for reissue", key.proof(&s, "/auth/reissue")),
        ("garbage", "a.b.c".to_owned()),
    ] {
        let r = s.login_with(&e, PASSWORD, &[("dpop", &proof)]).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_dpop_refused(&r, 400);
    }
    // A refused proof creates no session and counts no failed attempt.
    let u = s.login(&e, PASSWORD).await;
    assert_eq!(s.sessions(&u.access).await.len(), 1);
}

async fn dpop_required_refuses_proofless_login(t: Target) {
    let s = t.start(&[("REISSUE_DPOP", "required")]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    assert_dpop_refused(&s.login_raw(&e, PASSWORD).await, 400);
    let key = DpopKey::ed25519();
    let proof = key.proof(&s, "/auth/login");
    let tokens = s
        .login_with(&e, PASSWORD, &[("dpop", &proof)])
        .await
        .tokens();
    assert_eq!(tokens.body["token_type"], json!("DPoP"));
    assert_eq!(
        s.sessions(&tokens.access).await.len(),
        1,
        "only the bound login made a session"
    );
}

async fn dpop_off_binds_nothing(t: Target) {
    let s = t.start(&[("REISSUE_DPOP", "off")]);
    let e = email();
    s.signup(&e, PASSWORD).await;
    // Even a broken proof is ignored.
    let tokens = s
        .login_with(&e, PASSWORD, &[("dpop", "garbage")])
        .await
        .tokens();
    assert_eq!(tokens.body["token_type"], json!("Bearer"));
    assert!(tokens.access_claims().get("cnf").is_none());
    s.reissue(&tokens.refresh).await.tokens();
}

async fn dpop_unbound_session_ignores_proofs(t: Target) {
    let s = t.start(&[]);
    let u = s.user().await;
    let r = s
        .reissue_with(&u.tokens.refresh, &[("dpop", "garbage")])
        .await;
    assert_eq!(r.tokens().body["token_type"], json!("Bearer"));
}

async fn dpop_logout_needs_the_proof(t: Target) {
    let s = t.start(&[]);
    let key = DpopKey::p256();
    let (_, tokens) = bound_user(&s, &key).await;
    // A thief with the access or refresh token cannot end the session.
    assert_dpop_refused(&s.post_auth("/auth/logout", &tokens.access).await, 401);
    let r = s
        .send(
            s.post("/auth/logout")
                .json(&json!({"refresh_token": tokens.refresh})),
        )
        .await;
    assert_dpop_refused(&r, 401);
    let r = s
        .send(
            s.post("/auth/logout")
                .bearer_auth(&tokens.access)
                .header("dpop", DpopKey::other_p256().proof(&s, "/auth/logout")),
        )
        .await;
    assert_dpop_refused(&r, 401);
    assert_dpop_refused(&s.post_auth("/auth/logout-all", &tokens.access).await, 401);
    s.me(&tokens.access).await.assert_status(200);
    // The session lives on; its key ends it.
    let next = reissue_proved(&s, &tokens.refresh, Some(&key.proof(&s, "/auth/reissue")))
        .await
        .tokens();
    let r = s
        .send(
            s.post("/auth/logout")
                .bearer_auth(&next.access)
                .header("dpop", key.proof(&s, "/auth/logout")),
        )
        .await;
    r.assert_no_content();
    reissue_proved(&s, &next.refresh, Some(&key.proof(&s, "/auth/reissue")))
        .await
        .assert_invalid_token();
    // Ending a session from the list is a logout too.
    let (_, listed) = bound_user(&s, &key).await;
    let path = format!("/auth/sessions/{}", listed.sid());
    let r = s.send(s.delete(&path).bearer_auth(&listed.access)).await;
    assert_dpop_refused(&r, 401);
    let post_proof = key.proof(&s, &path);
    let r = s
        .send(
            s.delete(&path)
                .bearer_auth(&listed.access)
                .header("dpop", post_proof),
        )
        .await;
    assert_dpop_refused(&r, 401);
    let delete_proof = key.proof_with(&s, &path, "htm", json!("DELETE"));
    let r = s
        .send(
            s.delete(&path)
                .bearer_auth(&listed.access)
                .header("dpop", delete_proof),
        )
        .await;
    r.assert_no_content();
    // logout-all with the key's proof
    let (_, other) = bound_user(&s, &key).await;
    let r = s
        .send(
            s.post("/auth/logout-all")
                .bearer_auth(&other.access)
                .header("dpop", key.proof(&s, "/auth/logout-all")),
        )
        .await;
    r.assert_no_content();
}

async fn dpop_reauthenticate_needs_the_proof(t: Target) {
    let s = t.start(&[]);
    let key = DpopKey::ed25519();
    let (e, tokens) = bound_user(&s, &key).await;
    let body = json!({"email": e, "password": PASSWORD});
    let r = s
        .send(
            s.post("/auth/reauthenticate")
                .bearer_auth(&tokens.access)
                .json(&body),
        )
        .await;
    assert_dpop_refused(&r, 401);
    let again = s
        .send(
            s.post("/auth/reauthenticate")
                .bearer_auth(&tokens.access)
                .header("dpop", key.proof(&s, "/auth/reauthenticate"))
                .json(&body),
        )
        .await
        .tokens();
    assert_eq!(again.body["token_type"], json!("DPoP"));
    assert_eq!(again.access_claims()["cnf"], json!({"jkt": key.jkt()}));
    assert_eq!(again.sid(), tokens.sid());
    // Its refresh token is bound too.
    assert_dpop_refused(&s.reissue(&again.refresh).await, 401);
    reissue_proved(&s, &again.refresh, Some(&key.proof(&s, "/auth/reissue")))
        .await
        .tokens();
}

async fn dpop_cookie_transport_binds_the_same(t: Target) {
    let s = t.start(&[]);
    let key = DpopKey::p256();
    let e = email();
    s.signup(&e, PASSWORD).await;
    let proof = key.proof(&s, "/auth/login");
    let r = s
        .login_with(
            &e,
            PASSWORD,
            &[TRANSPORT, ("origin", s.base()), ("dpop", &proof)],
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["token_type"], json!("DPoP"), "{}", r.text);
    let (cookie, _) = the_refresh_cookie(&r);
    // Without a proof: refused, the cookie kept, the session untouched.
    let r = s.send(by_cookie(&s, "/auth/reissue", &cookie)).await;
    assert_dpop_refused(&r, 401);
    assert_no_set_cookie(&r);
    let r = s
        .send(
            by_cookie(&s, "/auth/reissue", &cookie).header("dpop", key.proof(&s, "/auth/reissue")),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["token_type"], json!("DPoP"));
    let (next, _) = the_refresh_cookie(&r);
    assert_eq!(payload_of(&next)["gen"], json!(2));
}

async fn dpop_public_origin_variable(t: Target) {
    let s = t.start(&[("REISSUE_PUBLIC_ORIGIN", "https://app.example.com")]);
    let key = DpopKey::p256();
    let e = email();
    s.signup(&e, PASSWORD).await;
    // A proof naming the address the request reached is not the public origin.
    let r = s
        .login_with(&e, PASSWORD, &[("dpop", &key.proof(&s, "/auth/login"))])
        .await;
    assert_dpop_refused(&r, 400);
    let proof = key.proof_with(
        &s,
        "/auth/login",
        "htu",
        json!("https://app.example.com/auth/login?next=%2F"),
    );
    let tokens = s
        .login_with(&e, PASSWORD, &[("dpop", &proof)])
        .await
        .tokens();
    assert_eq!(tokens.body["token_type"], json!("DPoP"));
}
